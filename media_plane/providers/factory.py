"""Agent config -> Pipecat services. Cloud providers plug in here, one branch per role."""

from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from media_plane.agent import AgentConfig
from media_plane.providers.benchmark import (
    BenchmarkLLMService,
    BenchmarkSTTService,
    BenchmarkTTSService,
)
from media_plane.providers.offline_engine import OfflineDialogueEngine
from media_plane.providers.offline_stt import OfflineSTTService
from media_plane.providers.offline_tts import OfflineTTSService


class UnknownProvider(ValueError):
    pass


def make_stt(agent: AgentConfig, key_terms: frozenset[str] = frozenset()) -> STTService:
    choice = agent.providers.get("stt", "offline")
    if choice == "offline":
        return OfflineSTTService(key_terms=key_terms)
    if choice == "benchmark":
        return BenchmarkSTTService()
    raise UnknownProvider(f"unknown STT provider {choice!r}")


def make_llm(agent: AgentConfig) -> LLMService:
    choice = agent.providers.get("llm", "offline")
    if choice == "offline":
        return OfflineDialogueEngine()
    if choice == "benchmark":
        return BenchmarkLLMService()
    raise UnknownProvider(f"unknown LLM provider {choice!r}")


def make_tts(agent: AgentConfig) -> TTSService:
    choice = agent.providers.get("tts", "offline")
    if choice == "offline":
        return OfflineTTSService(tenant_id=agent.tenant_id, voice_id=agent.voice)
    if choice == "benchmark":
        return BenchmarkTTSService()
    raise UnknownProvider(f"unknown TTS provider {choice!r}")
