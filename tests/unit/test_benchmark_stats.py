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


def test_histogram_percentiles_interpolate_within_the_bucket_like_prometheus():
    # 100 observations: 50 at or under 1 ms, 40 in (1, 2], 10 in (2, 5], none beyond.
    buckets = [(1.0, 50.0), (2.0, 90.0), (5.0, 100.0), (float("inf"), 100.0)]
    assert calls.histogram_percentile(buckets, 50) == pytest.approx(1.0)
    assert calls.histogram_percentile(buckets, 25) == pytest.approx(0.5)
    assert calls.histogram_percentile(buckets, 70) == pytest.approx(1.5)
    assert calls.histogram_percentile(buckets, 99) == pytest.approx(2 + 3 * 9 / 10)


def test_a_percentile_beyond_the_last_bound_is_that_bound():
    buckets = [(1.0, 10.0), (20.0, 10.0), (float("inf"), 20.0)]
    assert calls.histogram_percentile(buckets, 99) == 20.0  # at least 20: over the limit
    with pytest.raises(ValueError):
        calls.histogram_percentile([(1.0, 0.0), (float("inf"), 0.0)], 50)
