"""The API answers as its OpenAPI document says: schemathesis generates requests for every
operation from the document and checks every answer (no 5xx, only declared status codes,
bodies and headers that match their schemas, invalid input refused, ...), against the app
under a real server. Bounded and repeatable: a few examples an operation, derandomized.

One check is left out, ``positive_data_acceptance`` (a request the schema allows must not
be refused): the document cannot yet say everything the validation does (a tool's
parameters must be an object schema; a document needs a known extension; a called number
must be one), so it flags refusals that are right. The list is in docs/security.md."""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from switchboard.demo.run import free_port
from switchboard.server import create_app
from switchboard.settings import Settings
from tests.conftest import AUTH, TESTS_REFUSE_FREELY, TOKEN, LivePlatform


def platform_settings(data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        data_dir=data_dir,
        port=free_port(),
        admin_token=TOKEN,
        warm_offline_models=False,
        telephony_refusals_free=TESTS_REFUSE_FREELY,
    )


@schemathesis.serializer("audio/wav")
def _wav(ctx, value) -> bytes:
    """A recording's body: generated values sent as bytes (the route takes any bytes)."""
    return value if isinstance(value, bytes) else repr(value).encode()


# The document as the app builds it (no server needed to read it).
with tempfile.TemporaryDirectory() as scratch:
    schema = schemathesis.openapi.from_dict(
        create_app(platform_settings(Path(scratch)), warm=False).openapi()
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    platform = LivePlatform(platform_settings(tmp_path_factory.mktemp("contract"))).start()
    yield platform
    platform.stop()


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, live):
    case.call_and_validate(
        base_url=live.url, headers=AUTH, excluded_checks=[positive_data_acceptance]
    )
