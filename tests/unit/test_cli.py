import json

import httpx
import pytest

from switchboard.cli import main
from switchboard.demo.run import free_port
from switchboard.settings import Settings
from tests import formats
from tests.conftest import TOKEN, LivePlatform, make_tenant


def test_unreachable_platform_is_a_clear_error(capsys):
    code = main(["tenant", "list", "--url", "http://127.0.0.1:9"])
    assert code == 2
    assert "cannot reach the platform" in capsys.readouterr().err


def test_missing_files_are_reported_before_calling(capsys):
    code = main(
        ["knowledge", "add", "/nonexistent.md", "--tenant", "t", "--url", "http://127.0.0.1:9"]
    )
    assert code == 2 and "no such file" in capsys.readouterr().err
    code = main(["call", "--to", "+15550100200", "--audio", "/nonexistent.wav"])
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_barge_in_must_name_an_utterance(capsys):
    code = main(["call", "--to", "+15550100200", "--say", "hi", "--barge-in", "3"])
    assert code == 2 and "--barge-in 3" in capsys.readouterr().err


@pytest.fixture
def platform_with_worker(tmp_path):
    """Every document here is larger than the inline limit: the worker takes them all."""
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "data",
        port=free_port(),
        admin_token=TOKEN,
        knowledge_inline_bytes=10,
    )
    live = LivePlatform(settings).start()
    yield live
    live.stop()


def test_knowledge_add_follows_the_document_until_it_is_ready(
    platform_with_worker, tmp_path, capsys
):
    with httpx.Client(base_url=platform_with_worker.url) as api:
        tenant = make_tenant(api)
    doc = tmp_path / "parking.md"
    doc.write_text("# Parking\n\nFree parking is on Mill Lane.")
    args = ["knowledge", "add", str(doc), "--tenant", tenant["id"]]
    args += ["--url", platform_with_worker.url, "--token", TOKEN]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "ready" in out and "parking.md" in err and "ready" in err  # the bar's last state
    assert main([*args, "--json"]) == 0  # the same content again: the same document
    assert json.loads(capsys.readouterr().out)["status"] == "ready"


def test_knowledge_add_exits_non_zero_with_the_reason(platform_with_worker, tmp_path, capsys):
    with httpx.Client(base_url=platform_with_worker.url) as api:
        tenant = make_tenant(api)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(formats.image_only_pdf())
    args = ["knowledge", "add", str(scan), "--tenant", tenant["id"]]
    code = main([*args, "--url", platform_with_worker.url, "--token", TOKEN])
    assert code == 2
    assert "scan.pdf could not be ingested" in capsys.readouterr().err


def test_a_logged_traceback_never_carries_the_values_its_frames_hold():
    import io

    from loguru import logger

    from media_plane.telephony.twilio_rest import TwilioAccount
    from switchboard.cli import configure_logging

    secret = "tw-token-2f9c1e7a0b-do-not-log"

    def update_call(account: TwilioAccount) -> None:
        raise ValueError(f"unexpected answer for {account.account_sid}")

    out = io.StringIO()
    configure_logging("INFO", sink=out)
    try:
        try:
            update_call(TwilioAccount("AC" + "1" * 32, secret))
        except ValueError:
            logger.exception("twilio.update_crashed")
    finally:
        configure_logging("INFO")
    log = out.getvalue()
    assert "twilio.update_crashed" in log and "in update_call" in log  # the traceback is there
    assert secret not in log
