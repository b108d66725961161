"""Agent config -> Pipecat services. Cloud providers plug in here, one branch per role."""

import asyncio
import importlib
from collections.abc import Awaitable
from typing import cast

from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from common.outbound import tenant_client
from media_plane.agent import AgentConfig
from media_plane.providers.benchmark import (
    BenchmarkLLMService,
    BenchmarkSTTService,
    BenchmarkTTSService,
)
from media_plane.providers.credentials import Credentials
from media_plane.providers.offline_engine import OfflineDialogueEngine
from media_plane.providers.offline_stt import OfflineSTTService
from media_plane.providers.offline_tts import OfflineTTSService, synthesize_cached
from media_plane.providers.recogniser import RECOGNISER
from media_plane.voices import DEFAULT_VOICES, OFFLINE_VOICES

CALL_SAMPLE_RATE = 8000  # calls stay at the phone line's rate end to end (pipeline.py)
NO_CREDENTIALS = Credentials()
ANTHROPIC_MODEL = "claude-haiku-4-5"  # the fast model: a live turn waits on its first token
DEEPGRAM_LANGUAGES = {"hi-IN": "hi"}  # nova-3 names Hindi without a region
OPENAI_MODEL = "gpt-4.1-mini"  # fast, with tool use
LLM_CONNECT_SECS = 2.0
DEEPGRAM_ENDPOINTING_MS = 300
CARTESIA_MODEL = "sonic-3"
SARVAM_MODEL = "bulbul:v3"


class UnknownProvider(ValueError):
    pass


class MissingKey(LookupError):
    """The agent names a cloud provider that neither the tenant nor the platform has a
    key for."""

    def __init__(self, provider: str):
        super().__init__(f"no API key for {provider}")
        self.provider = provider


def _key(credentials: Credentials, provider: str) -> str:
    key = credentials.keys.get(provider)
    if key is None:
        raise MissingKey(provider)
    return key


def make_stt(agent: AgentConfig, credentials: Credentials = NO_CREDENTIALS) -> STTService:
    choice = agent.providers.get("stt", "offline")
    if choice == "offline":
        return OfflineSTTService(hints=agent.speech.get("keyterms", ()))
    if choice == "benchmark":
        return BenchmarkSTTService()
    if choice == "deepgram":
        return _deepgram(agent, credentials)
    raise UnknownProvider(f"unknown STT provider {choice!r}")


# The cloud providers' SDKs, imported where they are built so a process that never builds
# one never loads it; a media process imports them all at start (``import_cloud_sdks``),
# because an import is synchronous: the first Claude call of a process stalled every other
# call's audio ~1.5 s while ``anthropic`` loaded (benchmarks/attacks.py).
CLOUD_SDKS = (
    "anthropic",
    "pipecat.services.anthropic.llm",
    "pipecat.services.deepgram.stt",
    "pipecat.services.cartesia.tts",
    "pipecat.services.sarvam.tts",
    "media_plane.providers.openai_llm",
)


def import_cloud_sdks() -> None:
    """~1 s and ~60 MB, once per process, before it takes calls."""
    for module in CLOUD_SDKS:
        importlib.import_module(module)


def _deepgram(agent: AgentConfig, credentials: Credentials) -> STTService:
    from pipecat.services.deepgram.stt import DeepgramSTTService  # its SDK: only if used

    key = _key(credentials, "deepgram")
    speech = agent.speech
    language = DEEPGRAM_LANGUAGES.get(agent.language, agent.language)
    terms = speech.get("keyterms") or None
    return DeepgramSTTService(
        api_key=key,
        base_url=credentials.urls.get("deepgram", ""),
        encoding="linear16",
        sample_rate=CALL_SAMPLE_RATE,
        settings=DeepgramSTTService.Settings(
            model="nova-3",
            # "multi": nova-3 follows a caller who mixes English and Hindi mid-sentence.
            language="multi" if speech.get("code_switching") else language,
            endpointing=speech.get("endpointing_ms", DEEPGRAM_ENDPOINTING_MS),
            interim_results=True,  # interim words let a barge-in count before the final
            punctuate=True,
            smart_format=True,
            **({"keyterm": terms} if terms else {}),  # keyterm prompting: the agent's words
        ),
    )


def make_llm(agent: AgentConfig, credentials: Credentials = NO_CREDENTIALS) -> LLMService:
    choice = agent.providers.get("llm", "offline")
    if choice == "offline":
        return OfflineDialogueEngine()
    if choice == "benchmark":
        return BenchmarkLLMService()
    if choice == "anthropic":
        return _anthropic(agent, credentials)
    if choice == "openai":
        return _openai(agent, credentials)
    raise UnknownProvider(f"unknown LLM provider {choice!r}")


def _openai(agent: AgentConfig, credentials: Credentials) -> LLMService:
    """Any OpenAI-compatible chat-completions API: OpenAI's, or a self-hosted llama.cpp,
    vLLM or Ollama (the tenant's ``llm_url`` or the platform's ``SWITCHBOARD_OPENAI_URL``),
    which may need no key at all."""
    from media_plane.providers.openai_llm import StallingOpenAILLMService  # only if used

    key = credentials.keys.get("openai")
    url = credentials.urls.get("openai")
    if key is None and url is None:
        raise MissingKey("openai")
    # The tenant's own endpoint is reached only at a public address (common/outbound.py);
    # the operator's (SWITCHBOARD_OPENAI_URL) may be anywhere, a GPU box on its network.
    tenants = agent.llm_url is not None and url == agent.llm_url
    service = StallingOpenAILLMService(
        stall_secs=credentials.llm_stall_secs,
        connect_secs=LLM_CONNECT_SECS,
        http_client=tenant_client(credentials.tenant_private_ok) if tenants else None,
        api_key=key or "none",  # a self-hosted server ignores it; the SDK wants one
        base_url=url,
        settings=StallingOpenAILLMService.Settings(
            model=agent.llm_model or OPENAI_MODEL,
            max_completion_tokens=1024,  # a phone reply is a few sentences
        ),
    )
    return cast(LLMService, service)  # Pipecat's generic base: its adapter type varies


def _anthropic(agent: AgentConfig, credentials: Credentials) -> LLMService:
    from anthropic import AsyncAnthropic, Timeout  # its SDK: only if used
    from pipecat.services.anthropic.llm import AnthropicLLMService

    key = _key(credentials, "anthropic")
    service = AnthropicLLMService(
        api_key=key,
        client=AsyncAnthropic(
            api_key=key,
            base_url=credentials.urls.get("anthropic"),
            # A live turn cannot wait out the SDK's 10-minute default: a stream that goes
            # quiet this long fails the attempt (the SDK retries twice; then llm_recovery).
            timeout=Timeout(credentials.llm_stall_secs, connect=LLM_CONNECT_SECS),
        ),
        settings=AnthropicLLMService.Settings(
            model=agent.llm_model or ANTHROPIC_MODEL,
            # The persona and tool definitions are the same every turn: cached, they
            # are neither paid for nor waited on again.
            enable_prompt_caching=True,
            max_tokens=1024,  # a phone reply is a few sentences
        ),
    )
    return cast(LLMService, service)


def make_tts(agent: AgentConfig, credentials: Credentials = NO_CREDENTIALS) -> TTSService:
    choice = agent.providers.get("tts", "offline")
    if choice == "offline":
        # The agent's own voice, or (standing in for a cloud voice) the offline default.
        voice = agent.voice if agent.voice in OFFLINE_VOICES else DEFAULT_VOICES["offline"]
        return OfflineTTSService(tenant_id=agent.tenant_id, voice_id=voice, language=agent.language)
    if choice == "benchmark":
        return BenchmarkTTSService()
    if choice == "cartesia":
        return _cartesia(agent, credentials)
    if choice == "sarvam":
        return _sarvam(agent, credentials)
    raise UnknownProvider(f"unknown TTS provider {choice!r}")


# Both cloud voices synthesise at the call's own 8 kHz, so no audio is resampled, and both
# are sent whole sentences, cut where the agent's language ends one (Pipecat's sentence
# aggregator, which knows । and ॥): the first sentence is spoken while the LLM writes on.


def _cartesia(agent: AgentConfig, credentials: Credentials) -> TTSService:
    from pipecat.services.cartesia.tts import CartesiaTTSService
    from pipecat.transcriptions.language import Language

    key = _key(credentials, "cartesia")
    base = credentials.urls.get("cartesia", "wss://api.cartesia.ai").rstrip("/")
    return CartesiaTTSService(
        api_key=key,
        url=f"{base}/tts/websocket",
        sample_rate=CALL_SAMPLE_RATE,
        encoding="pcm_s16le",
        settings=CartesiaTTSService.Settings(
            model=CARTESIA_MODEL, voice=agent.voice, language=Language(agent.language)
        ),
    )


def _sarvam(agent: AgentConfig, credentials: Credentials) -> TTSService:
    from pipecat.services.sarvam.tts import SarvamTTSService
    from pipecat.transcriptions.language import Language

    key = _key(credentials, "sarvam")
    base = credentials.urls.get("sarvam", "wss://api.sarvam.ai").rstrip("/")
    return SarvamTTSService(
        api_key=key,
        url=f"{base}/text-to-speech/ws",
        sample_rate=CALL_SAMPLE_RATE,
        settings=SarvamTTSService.Settings(
            model=SARVAM_MODEL,
            voice=agent.voice,
            language=Language(agent.language),
            # Sarvam holds text until this many characters have come (its minimum; the
            # default is 50), so a first sentence of 30 or more is spoken on its own.
            min_buffer_size=30,
        ),
    )


async def ready_agent(agent: AgentConfig) -> None:
    """Load what the agent's providers need before its stream opens: the offline
    recogniser's model, and the greeting synthesised (once per tenant + voice + text, at
    the call's rate). Cloud providers need nothing ahead."""
    work: list[Awaitable[object]] = []
    if agent.providers.get("stt", "offline") == "offline":
        RECOGNISER.load()
    if agent.providers.get("tts", "offline") == "offline":
        work.append(
            asyncio.to_thread(
                synthesize_cached, agent.tenant_id, agent.voice, agent.greeting, CALL_SAMPLE_RATE
            )
        )
    await asyncio.gather(*work)
