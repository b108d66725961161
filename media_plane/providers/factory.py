"""Agent config -> Pipecat services. Cloud providers plug in here, one branch per role."""

import asyncio
from pathlib import Path

from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from media_plane.agent import AgentConfig
from media_plane.providers.benchmark import (
    BenchmarkLLMService,
    BenchmarkSTTService,
    BenchmarkTTSService,
)
from media_plane.providers.calibration import calibrate_recogniser
from media_plane.providers.credentials import Credentials
from media_plane.providers.offline_engine import OfflineDialogueEngine
from media_plane.providers.offline_stt import OfflineSTTService
from media_plane.providers.offline_tts import OfflineTTSService, synthesize_cached
from media_plane.providers.recogniser import RECOGNISER

CALL_SAMPLE_RATE = 8000  # calls stay at the phone line's rate end to end (pipeline.py)
NO_CREDENTIALS = Credentials()
ANTHROPIC_MODEL = "claude-haiku-4-5"  # the fast model: a live turn waits on its first token


class UnknownProvider(ValueError):
    pass


class MissingKey(LookupError):
    """The agent names a cloud provider that neither the tenant nor the platform has a
    key for."""

    def __init__(self, provider: str):
        super().__init__(f"no API key for {provider}")
        self.provider = provider


def make_stt(
    agent: AgentConfig,
    key_terms: frozenset[str] = frozenset(),
    credentials: Credentials = NO_CREDENTIALS,
) -> STTService:
    choice = agent.providers.get("stt", "offline")
    if choice == "offline":
        return OfflineSTTService(key_terms=key_terms)
    if choice == "benchmark":
        return BenchmarkSTTService()
    if choice == "deepgram":
        return _deepgram(agent, credentials)
    raise UnknownProvider(f"unknown STT provider {choice!r}")


def _deepgram(agent: AgentConfig, credentials: Credentials) -> STTService:
    from pipecat.services.deepgram.stt import DeepgramSTTService  # its SDK: only if used

    key = credentials.keys.get("deepgram")
    if key is None:
        raise MissingKey("deepgram")
    return DeepgramSTTService(
        api_key=key,
        base_url=credentials.urls.get("deepgram", ""),
        encoding="linear16",
        sample_rate=CALL_SAMPLE_RATE,
        settings=DeepgramSTTService.Settings(
            model="nova-3",
            language=agent.language,
            interim_results=True,  # interim words let a barge-in count before the final
            punctuate=True,
            smart_format=True,
        ),
    )


def make_llm(agent: AgentConfig, credentials: Credentials = NO_CREDENTIALS) -> LLMService:
    choice = agent.providers.get("llm", "offline")
    if choice == "offline":
        return OfflineDialogueEngine()
    if choice == "benchmark":
        return BenchmarkLLMService()
    if choice == "anthropic":
        return _anthropic(credentials)
    raise UnknownProvider(f"unknown LLM provider {choice!r}")


def _anthropic(credentials: Credentials) -> LLMService:
    from anthropic import AsyncAnthropic  # its SDK: only if used
    from pipecat.services.anthropic.llm import AnthropicLLMService

    key = credentials.keys.get("anthropic")
    if key is None:
        raise MissingKey("anthropic")
    return AnthropicLLMService(
        api_key=key,
        client=AsyncAnthropic(api_key=key, base_url=credentials.urls.get("anthropic")),
        settings=AnthropicLLMService.Settings(
            model=ANTHROPIC_MODEL,
            # The persona and tool definitions are the same every turn: cached, they
            # are neither paid for nor waited on again.
            enable_prompt_caching=True,
            max_tokens=1024,  # a phone reply is a few sentences
        ),
    )


def make_tts(agent: AgentConfig) -> TTSService:
    choice = agent.providers.get("tts", "offline")
    if choice == "offline":
        return OfflineTTSService(tenant_id=agent.tenant_id, voice_id=agent.voice)
    if choice == "benchmark":
        return BenchmarkTTSService()
    raise UnknownProvider(f"unknown TTS provider {choice!r}")


async def ready_agent(agent: AgentConfig, model_cache_dir: Path) -> None:
    """Load what the agent's providers need before its stream opens: the offline
    recogniser calibrated with a decoder free, and the greeting synthesised (once per
    tenant + voice + text, at the call's rate). Cloud providers need nothing ahead."""
    work = []
    if agent.providers.get("stt", "offline") == "offline":
        work.append(asyncio.to_thread(_ready_recogniser, model_cache_dir))
    if agent.providers.get("tts", "offline") == "offline":
        work.append(
            asyncio.to_thread(
                synthesize_cached, agent.tenant_id, agent.voice, agent.greeting, CALL_SAMPLE_RATE
            )
        )
    await asyncio.gather(*work)


def _ready_recogniser(model_cache_dir: Path) -> None:
    calibrate_recogniser(model_cache_dir)
    RECOGNISER.reserve(1)
