"""The simulated caller's telephony providers: how Twilio and Exotel each place a call to
the platform and speak its media stream, exactly as their documentation describes.

The caller (``caller.py``) works in 20 ms frames of 8 kHz mu-law, what a phone line
carries; a ``Phone`` turns them into its provider's messages and back.

- Twilio: a signed form POST to the voice webhook answered with TwiML
  ``<Connect><Stream>``; a signed WebSocket upgrade; camelCase messages, one 20 ms mu-law
  frame per ``media``; after the stream, the ``<Connect action>`` asks what next.
- Exotel: the Voicebot applet's GET to its dynamic URL, answered with ``{"url": ...}``;
  HTTP Basic credentials (the applet URL's ``key:token``) on every request; snake_case
  messages, ``media`` as base64 16-bit PCM in 100 ms chunks; numbers in national form;
  after the stream, the Passthru applet (200: transfer) then the Connect applet's dynamic
  URL (whom to dial). Audio coming back is checked against Exotel's chunk rules.
"""

import base64
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

import httpx
from twilio.request_validator import RequestValidator

from media_plane.pcm import audioop
from switchboard.settings import DEV_EXOTEL_API_KEY, DEV_EXOTEL_API_TOKEN, DEV_TWILIO_AUTH_TOKEN

RATE = 8000
FRAME = 160  # 20 ms of 8 kHz mu-law


@dataclass
class Answer:
    """What the platform answered the call with: a stream to open, or words said instead."""

    stream_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    call_id: str | None = None
    spoken: str | None = None


def signed_by_twilio(
    auth_token: str, url: str, form: dict[str, str] | None = None
) -> dict[str, str]:
    """The ``X-Twilio-Signature`` header Twilio sends with a request to ``url``: its
    documented scheme, computed by its own SDK."""
    return {"X-Twilio-Signature": RequestValidator(auth_token).compute_signature(url, form or {})}


class TwilioPhone:
    frames_per_message = 1  # Twilio sends 20 ms per media message

    def __init__(self, base_url: str, auth_token: str = DEV_TWILIO_AUTH_TOKEN):
        self.base_url = base_url.rstrip("/")
        self.auth_token = auth_token
        self.call_sid = "CA" + secrets.token_hex(16)
        self.account_sid = "AC" + secrets.token_hex(16)
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.seq = 0
        self.action_url: str | None = None
        self.params: dict = {}
        self.protocol_errors: list[str] = []

    def _seq(self) -> str:
        self.seq += 1
        return str(self.seq)

    async def dial(self, http: httpx.AsyncClient, to: str, caller_id: str) -> Answer:
        webhook = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": caller_id,
            "To": to,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        url = self.base_url + "/twilio/voice"
        r = await http.post(
            url, data=webhook, headers=signed_by_twilio(self.auth_token, url, webhook)
        )
        r.raise_for_status()
        root = ET.fromstring(r.text)
        stream = root.find("./Connect/Stream")
        if stream is None:
            say = root.find("./Say")
            return Answer(spoken=say.text if say is not None else None)
        self.params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        action = root.find("./Connect")
        self.action_url = action.get("action") if action is not None else None
        stream_url = stream.get("url", "")
        return Answer(
            stream_url=stream_url,
            headers=signed_by_twilio(self.auth_token, stream_url),
            call_id=self.params.get("call_id"),
        )

    def opening(self) -> list[dict]:
        return [
            {"event": "connected", "protocol": "Call", "version": "1.0.0"},
            {
                "event": "start",
                "sequenceNumber": self._seq(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.params,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
                },
                "streamSid": self.stream_sid,
            },
        ]

    def media(self, ulaw: bytes, chunk: int, timestamp_ms: int) -> dict:
        return {
            "event": "media",
            "sequenceNumber": self._seq(),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(timestamp_ms),
                "payload": base64.b64encode(ulaw).decode(),
            },
            "streamSid": self.stream_sid,
        }

    def agent_audio(self, message: dict) -> bytes:
        """The mu-law in the platform's ``media`` message."""
        return base64.b64decode(message["media"]["payload"])

    def mark(self, name: str) -> dict:
        return {
            "event": "mark",
            "sequenceNumber": self._seq(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        }

    def key(self, digit: str) -> dict:
        """A key the caller pressed (Twilio's ``dtmf`` message)."""
        return {
            "event": "dtmf",
            "streamSid": self.stream_sid,
            "sequenceNumber": self._seq(),
            "dtmf": {"track": "inbound_track", "digit": digit},
        }

    def stop(self) -> dict:
        return {
            "event": "stop",
            "sequenceNumber": self._seq(),
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        }

    async def after_stream(self, http: httpx.AsyncClient) -> str | None:
        """Like Twilio: once the stream has ended, ask the ``<Connect>`` action what comes
        next. The number dialled, if the answer is a transfer."""
        if not self.action_url:
            return None
        ended = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "CallStatus": "in-progress",
        }
        r = await http.post(
            self.action_url,
            data=ended,
            headers=signed_by_twilio(self.auth_token, self.action_url, ended),
        )
        if r.status_code != 200:
            return None
        dial = ET.fromstring(r.text).find("./Dial")
        return dial.text if dial is not None else None


class ExotelPhone:
    frames_per_message = 5  # Exotel streams the caller in ~100 ms chunks
    MIN_CHUNK, MAX_CHUNK, CHUNK_MULTIPLE = 3200, 100_000, 320  # its rules for what comes back

    def __init__(
        self,
        base_url: str,
        api_key: str = DEV_EXOTEL_API_KEY,
        api_token: str = DEV_EXOTEL_API_TOKEN,
    ):
        self.base_url = base_url.rstrip("/")
        credentials = base64.b64encode(f"{api_key}:{api_token}".encode()).decode()
        self.auth = {"Authorization": f"Basic {credentials}"}
        self.call_sid = secrets.token_hex(16)
        self.account_sid = "switchboard" + secrets.token_hex(4)
        self.stream_sid = secrets.token_hex(16)
        self.caller_id = ""
        self.to = ""
        self.seq = 0
        self.protocol_errors: list[str] = []

    def _seq(self) -> int:
        self.seq += 1
        return self.seq

    @staticmethod
    def national(number: str) -> str:
        """How Exotel writes an Indian number: ``+918047491899`` is ``08047491899``."""
        return "0" + number[3:] if number.startswith("+91") else number

    async def dial(self, http: httpx.AsyncClient, to: str, caller_id: str) -> Answer:
        self.caller_id, self.to = self.national(caller_id), self.national(to)
        r = await http.get(
            self.base_url + "/exotel/voicebot",
            params={
                "CallSid": self.call_sid,
                "CallFrom": self.caller_id,
                "CallTo": self.to,
                "Direction": "incoming",
            },
            headers=self.auth,
        )
        r.raise_for_status()
        stream_url = r.json()["url"]
        call_id = parse_qs(urlparse(stream_url).query).get("call_id", [None])[0]
        return Answer(stream_url=stream_url, headers=self.auth, call_id=call_id)

    def opening(self) -> list[dict]:
        return [
            {"event": "connected"},
            {
                "event": "start",
                "sequence_number": self._seq(),
                "stream_sid": self.stream_sid,
                "start": {
                    "stream_sid": self.stream_sid,
                    "call_sid": self.call_sid,
                    "account_sid": self.account_sid,
                    "from": self.caller_id,
                    "to": self.to,
                    "custom_parameters": {},
                    "media_format": {
                        "encoding": "base64",
                        "sample_rate": "8000",
                        "bit_rate": "128kbps",
                    },
                },
            },
        ]

    def media(self, ulaw: bytes, chunk: int, timestamp_ms: int) -> dict:
        return {
            "event": "media",
            "sequence_number": self._seq(),
            "stream_sid": self.stream_sid,
            "media": {
                "chunk": chunk,
                "timestamp": str(timestamp_ms),
                "payload": base64.b64encode(audioop.ulaw2lin(ulaw, 2)).decode(),
            },
        }

    def agent_audio(self, message: dict) -> bytes:
        pcm = base64.b64decode(message["media"]["payload"])
        size = len(pcm)
        if size < self.MIN_CHUNK or size > self.MAX_CHUNK or size % self.CHUNK_MULTIPLE:
            self.protocol_errors.append(f"media chunk of {size} bytes")
        return audioop.lin2ulaw(pcm[: size - size % 2], 2)

    def mark(self, name: str) -> dict:
        return {
            "event": "mark",
            "sequence_number": self._seq(),
            "stream_sid": self.stream_sid,
            "mark": {"name": name},
        }

    def key(self, digit: str) -> dict:
        """A key the caller pressed (Exotel's ``dtmf`` message)."""
        return {
            "event": "dtmf",
            "sequence_number": self._seq(),
            "stream_sid": self.stream_sid,
            "dtmf": {"duration": "200", "digit": digit},
        }

    def stop(self) -> dict:
        return {
            "event": "stop",
            "sequence_number": self._seq(),
            "stream_sid": self.stream_sid,
            "stop": {
                "call_sid": self.call_sid,
                "account_sid": self.account_sid,
                "reason": "callended",
            },
        }

    async def after_stream(self, http: httpx.AsyncClient) -> str | None:
        """Like Exotel's flow: the Passthru applet (200 goes on to Connect), then the
        Connect applet's dynamic URL, whose first number is dialled."""
        query = {"CallSid": self.call_sid, "CallFrom": self.caller_id, "CallTo": self.to}
        r = await http.get(self.base_url + "/exotel/stream-ended", params=query, headers=self.auth)
        if r.status_code != 200:
            return None
        r = await http.get(self.base_url + "/exotel/transfer", params=query, headers=self.auth)
        r.raise_for_status()
        return r.json()["destination"]["numbers"][0]


Phone = TwilioPhone | ExotelPhone
