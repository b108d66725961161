from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from control_plane.numbers.schemas import E164
from media_plane.voices import Language, voice_for

ToolName = Literal["search_knowledge", "book_appointment", "transfer_to_human", "end_call"]
ALL_TOOLS: list[ToolName] = [
    "search_knowledge",
    "book_appointment",
    "transfer_to_human",
    "end_call",
]


class ProviderChoice(BaseModel):
    """Which engine serves each role. "offline" is the embedded default for all three;
    "benchmark" answers at once with fixed content, for load tests; the cloud providers
    are in docs/providers.md."""

    model_config = ConfigDict(extra="forbid")

    stt: Literal["offline", "benchmark", "deepgram"] = "offline"
    llm: Literal["offline", "benchmark", "anthropic"] = "offline"
    tts: Literal["offline", "benchmark", "cartesia", "sarvam"] = "offline"


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    name: str = Field(min_length=1, max_length=200)
    persona: str = Field(default="You are a friendly, concise phone receptionist.", max_length=8000)
    greeting: str = Field(min_length=1, max_length=500)
    language: Language = "en-US"  # BCP-47; media_plane/voices.py
    # The TTS provider's voice id; unset, that provider's default voice.
    voice: str | None = Field(default=None, max_length=100)
    tools: list[ToolName] = Field(default_factory=lambda: list(ALL_TOOLS))
    transfer_number: E164 | None = None
    providers: ProviderChoice = Field(default_factory=ProviderChoice)

    @model_validator(mode="after")
    def _speakable(self) -> "AgentIn":
        """The providers hear and speak the agent's language, in a voice they have."""
        self.voice = voice_for(self.language, self.providers.stt, self.providers.tts, self.voice)
        return self


class AgentOut(AgentIn):
    model_config = ConfigDict(from_attributes=True)

    id: str
    tenant_id: str
    version: int
    created_at: datetime
    updated_at: datetime


class AgentVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    agent_id: str
    version: int
    config: AgentIn
    created_at: datetime


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    agent: AgentIn | None = None


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    created_at: datetime
