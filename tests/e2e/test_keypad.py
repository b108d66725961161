"""The keypad, for real: keys the caller presses reach the agent as a turn (and its model's
conversation), and keys the agent presses reach the line as tones a phone menu decodes."""

import asyncio
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import websockets

from media_plane.keypad import PREFIX, keys_pressed
from media_plane.pcm import audioop
from media_plane.providers.offline_engine import Reply
from media_plane.providers.offline_engine import decide as offline_decide
from switchboard.caller import Utterance, place_call
from switchboard.demo.run import free_port
from switchboard.phones import TwilioPhone
from tests.conftest import TOKEN, PlatformProcess, make_tenant
from tests.e2e.test_call import wait_for_end
from tests.servers import LiveServer
from tests.servers.openai import openai_app

pytestmark = pytest.mark.e2e

RATE = 8000
ROWS, COLUMNS = (697, 770, 852, 941), (1209, 1336, 1477)
KEYS = ("123", "456", "789", "*0#")


def tones(ulaw: bytes) -> str:
    """The keys in ``ulaw`` audio: each 40 ms block's strongest row and column tone (the
    Goertzel power at the eight keypad frequencies), a key where both stand out, once per
    run of blocks."""
    pcm = np.frombuffer(audioop.ulaw2lin(ulaw, 2), np.int16).astype(np.float64)
    block, heard, last = 320, [], None
    for start in range(0, len(pcm) - block + 1, block):
        x = pcm[start : start + block]
        power = {f: _goertzel(x, f) for f in ROWS + COLUMNS}
        row = max(ROWS, key=power.__getitem__)
        column = max(COLUMNS, key=power.__getitem__)
        total = float((x**2).sum()) * block / 2 + 1e-9
        key = None
        if (power[row] + power[column]) / total > 0.6:  # two tones are nearly all of it
            key = KEYS[ROWS.index(row)][COLUMNS.index(column)]
        if key and key != last:
            heard.append(key)
        last = key
    return "".join(heard)


def _goertzel(x: np.ndarray, freq: float) -> float:
    coeff = 2 * np.cos(2 * np.pi * freq / RATE)
    s1 = s2 = 0.0
    for sample in x:
        s1, s2 = sample + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def test_the_tone_reader_reads_pipecats_own_tones():
    from pipecat.audio.dtmf.types import KeypadEntry
    from pipecat.audio.dtmf.utils import load_dtmf_audio

    audio = b"".join(asyncio.run(load_dtmf_audio(KeypadEntry(k), sample_rate=RATE)) for k in "90#")
    assert tones(audioop.lin2ulaw(audio, 2)) == "90#"


def choose(messages, tools) -> Reply:
    """The model, as far as these tests need one: a keypad entry of "0" asks for the
    operator, which this menu reaches by pressing 1 2 3."""
    last = messages[-1] if messages else {}
    if last.get("role") == "user" and keys_pressed(str(last.get("content"))) == "0#":
        return Reply(calls=[("send_digits", {"digits": "123"})])
    if last.get("role") == "tool":
        return Reply()
    return offline_decide(messages, tools)


@pytest.fixture(scope="module")
def model() -> Iterator[LiveServer]:
    with LiveServer(openai_app(decide=choose), free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def platform(model: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("keypad-platform")
    with PlatformProcess(data, openai_api_key="k", openai_url=f"{model.url}/v1") as process:
        yield process.url


@pytest.mark.parametrize("provider", ["twilio", "exotel"])
async def test_the_callers_keys_are_a_turn_the_agent_answers(platform, model, provider):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, telephony=provider, providers={"llm": "openai"})
    report = await place_call(
        platform, tenant["number"], [Utterance(keys="42#")], token=TOKEN,
        tenant_id=tenant["id"], provider=provider,
    )  # fmt: skip
    assert report.turns[1].latency_ms is not None  # answered
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    said = [(e["kind"], e["data"].get("text")) for e in events if e["kind"].startswith("turn.")]
    assert ("turn.user", f"{PREFIX}42#") in said
    assert ("turn.agent", "You entered 4 2.") in said
    # The model read the entry in the conversation, as the caller's words.
    conversation = model.app.state.requests[-1]["body"]["messages"]
    assert {"role": "user", "content": f"{PREFIX}42#"} in conversation


async def test_the_agent_presses_keys_the_line_hears_as_tones(platform):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, providers={"llm": "openai"}, tools=["send_digits"])
    phone = TwilioPhone(platform)
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await phone.dial(http, tenant["number"], "+15550100999")
        async with websockets.connect(answer.stream_url, additional_headers=answer.headers) as ws:
            for message in phone.opening():
                await ws.send(json.dumps(message))
            await _agent_audio(ws, phone, quiet_secs=1.0)  # the greeting, played out
            for digit in "0#":
                await ws.send(json.dumps(phone.key(digit)))
            heard = await _agent_audio(ws, phone, quiet_secs=1.5)
            await ws.send(json.dumps(phone.stop()))
    assert tones(heard) == "123"


async def _agent_audio(ws, phone: TwilioPhone, quiet_secs: float) -> bytes:
    """The agent's audio until it has sent none for ``quiet_secs`` (after some came)."""
    audio = bytearray()
    while True:
        try:
            raw = await asyncio.wait_for(ws.recv(), quiet_secs if audio else 15)
        except TimeoutError:
            return bytes(audio)
        message = json.loads(raw)
        if message.get("event") == "media":
            audio += phone.agent_audio(message)
