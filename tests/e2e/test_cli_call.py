"""``switchboard call`` as a script drives it: a WAV at another rate, JSON out."""

import json
import wave

import httpx
import pytest

from media_plane.providers.offline_tts import load_voice, synthesize
from switchboard.cli import main
from tests.conftest import TOKEN, make_tenant, unique_number

pytestmark = pytest.mark.e2e


def test_call_from_a_wav_file_prints_one_json_object_per_turn(platform, tmp_path, capsys):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, "# Parking\n\nFree parking is on Mill Lane.")
    rate = load_voice("en_US-joe-medium").config.sample_rate  # 22050 Hz: not the phone's
    wav = tmp_path / "question.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(synthesize("en_US-joe-medium", "Where can I park?", rate, repeatable=True))

    code = main(
        [
            "call",
            "--url",
            platform,
            "--token",
            TOKEN,
            "--to",
            tenant["number"],
            "--tenant",
            tenant["id"],
            "--audio",
            str(wav),
            "--json",
        ]
    )
    assert code == 0
    turns = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [t["index"] for t in turns] == [0, 1]
    assert turns[1]["caller"] == str(wav)
    assert turns[1]["tools"] == ["search_knowledge"]
    assert turns[1]["latency_ms"] > 0 and turns[1]["agent_heard_secs"] > 1


def test_binding_a_number_to_exotel_and_calling_it_in_exotels_protocol(platform, capsys):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, "# Parking\n\nFree parking is on Mill Lane.")
    common = ["--url", platform, "--token", TOKEN]
    number = unique_number("91804")
    bind = ["number", "bind", *common, "--tenant", tenant["id"], "--agent", tenant["agent_id"]]
    assert main([*bind, "--number", number, "--provider", "exotel"]) == 0
    assert "(exotel)" in capsys.readouterr().out

    args = ["call", *common, "--to", number, "--tenant", tenant["id"], "--provider", "exotel"]
    assert main([*args, "--say", "Where can I park?", "--json"]) == 0
    turns = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [t["index"] for t in turns] == [0, 1]
    assert turns[1]["tools"] == ["search_knowledge"] and turns[1]["agent_heard_secs"] > 1
