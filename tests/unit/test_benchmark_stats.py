"""The load benchmark's own arithmetic: its percentiles are the usual interpolated ones."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "calls_benchmark", Path(__file__).resolve().parents[2] / "benchmarks" / "calls.py"
)
assert _spec and _spec.loader
calls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calls)


@pytest.mark.parametrize("p", [0, 10, 50, 95, 99, 100])
def test_percentiles_match_numpys_linear_interpolation(p):
    values = [float(v) for v in np.random.default_rng(7).exponential(40, size=257)]
    assert calls.percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


def test_percentiles_of_small_samples():
    assert calls.percentile([10.0], 99) == 10.0
    assert calls.percentile([10.0, 20.0], 50) == 15.0
    with pytest.raises(ValueError):
        calls.percentile([], 50)
