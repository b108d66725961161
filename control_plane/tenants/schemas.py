from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from common.json_schemas import BadSchema, check_schema
from control_plane.kit.json_types import JsonBool, JsonInt
from control_plane.kit.times import UtcDateTime
from control_plane.numbers.schemas import E164
from media_plane.voices import Language, voice_for

ToolName = Literal[
    "search_knowledge", "book_appointment", "transfer_to_human", "end_call", "send_digits"
]
# What a new agent has unless it says: pressing keys is for agents that call phone menus.
DEFAULT_TOOLS: list[ToolName] = [
    "search_knowledge",
    "book_appointment",
    "transfer_to_human",
    "end_call",
]
ALL_TOOLS: list[ToolName] = [*DEFAULT_TOOLS, "send_digits"]


class ProviderChoice(BaseModel):
    """Which engine serves each role. "offline" is the embedded default for all three;
    "benchmark" answers at once with fixed content, for load tests; the cloud providers
    are in docs/providers.md."""

    model_config = ConfigDict(extra="forbid")

    stt: Literal["offline", "benchmark", "deepgram"] = "offline"
    llm: Literal["offline", "benchmark", "anthropic", "openai"] = "offline"
    tts: Literal["offline", "benchmark", "cartesia", "sarvam"] = "offline"


class SpeechOptions(BaseModel):
    """How the agent listens: with Deepgram (docs/providers.md), the silence that ends a
    caller's phrase, mixed-language callers, and words to listen out for."""

    model_config = ConfigDict(extra="forbid")

    endpointing_ms: JsonInt = Field(default=300, ge=10, le=5000)
    # The caller may mix English with the agent's language mid-sentence (Hinglish).
    code_switching: JsonBool = False
    # Names and terms the recogniser should favour (products, places, the business's name).
    keyterms: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("keyterms")
    @classmethod
    def _short_terms(cls, terms: list[str]) -> list[str]:
        cleaned = [term.strip() for term in terms]
        if any(not term or len(term) > 50 for term in cleaned):
            raise ValueError("keyterms: each a word or short phrase of 1 to 50 characters")
        return cleaned


class HttpTool(BaseModel):
    """A tool the tenant serves from its own API: the agent calls it with a signed POST
    whose arguments follow ``parameters`` (JSON Schema), and the answer goes back to the
    LLM (docs/tools.md)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    description: str = Field(min_length=1, max_length=1000)  # what the LLM reads
    url: AnyHttpUrl
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    timeout_ms: JsonInt = Field(default=3000, ge=100, le=10_000)  # the caller is waiting

    @field_validator("name")
    @classmethod
    def _not_built_in(cls, name: str) -> str:
        if name in ALL_TOOLS:
            raise ValueError(f"{name!r} is a built-in tool; choose another name")
        return name

    @field_validator("parameters")
    @classmethod
    def _a_json_schema_for_an_object(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            check_schema(schema)
        except BadSchema as bad:
            raise ValueError(f"parameters: {bad}") from None
        if schema.get("type") != "object":
            raise ValueError('parameters must describe an object ("type": "object")')
        return schema


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    name: str = Field(min_length=1, max_length=200)
    persona: str = Field(default="You are a friendly, concise phone receptionist.", max_length=8000)
    greeting: str = Field(min_length=1, max_length=500)
    language: Language = "en-US"  # BCP-47; media_plane/voices.py
    # The TTS provider's voice id; unset, that provider's default voice.
    voice: str | None = Field(default=None, max_length=100)
    tools: list[ToolName] = Field(default_factory=lambda: list(DEFAULT_TOOLS))
    transfer_number: E164 | None = None
    providers: ProviderChoice = Field(default_factory=ProviderChoice)
    # The model, for an LLM provider with a choice of them (anthropic, openai); unset, the
    # provider's default (docs/providers.md).
    llm_model: str | None = Field(default=None, max_length=100, pattern=r"^[\w.:/@-]+$")
    # providers.llm = "openai" only: the tenant's own OpenAI-compatible endpoint (llama.cpp,
    # vLLM, Ollama), e.g. https://llm.example.com/v1; unset, the platform's.
    llm_url: AnyHttpUrl | None = None
    speech: SpeechOptions = Field(default_factory=SpeechOptions)
    # The tenant's own tools, called over HTTPS with a signed request (docs/tools.md).
    http_tools: list[HttpTool] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _speakable(self) -> "AgentIn":
        """The providers hear and speak the agent's language, in a voice they have."""
        self.voice = voice_for(self.language, self.providers.stt, self.providers.tts, self.voice)
        return self

    @model_validator(mode="after")
    def _speech_options(self) -> "AgentIn":
        # Deepgram's multilingual model mixes English with every language Deepgram hears
        # here (voices.py), so the language itself was checked with the recogniser.
        if self.speech.code_switching and self.providers.stt != "deepgram":
            raise ValueError("speech.code_switching needs providers.stt = 'deepgram'")
        return self

    @model_validator(mode="after")
    def _tool_names_unique(self) -> "AgentIn":
        names = [tool.name for tool in self.http_tools]
        if len(names) != len(set(names)):
            raise ValueError("http_tools: each tool needs its own name")
        return self

    @field_validator("llm_url")
    @classmethod
    def _a_base_url(cls, url: AnyHttpUrl | None) -> AnyHttpUrl | None:
        # The SDK appends its own path ("/chat/completions"): a query, a fragment or
        # credentials in the base would turn the request into another one.
        if url is not None and (url.query or url.fragment or url.username or url.password):
            raise ValueError("llm_url is a base URL: no query, fragment or credentials")
        return url

    @model_validator(mode="after")
    def _llm_options(self) -> "AgentIn":
        if self.llm_url is not None and self.providers.llm != "openai":
            raise ValueError("llm_url is for providers.llm = 'openai' (an OpenAI-compatible API)")
        if self.llm_model is not None and self.providers.llm not in ("anthropic", "openai"):
            raise ValueError(f"the {self.providers.llm} LLM has no choice of model")
        return self


class AgentOut(AgentIn):
    model_config = ConfigDict(from_attributes=True)

    id: str
    tenant_id: str
    version: int
    created_at: UtcDateTime
    updated_at: UtcDateTime


class AgentVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    agent_id: str
    version: int
    config: AgentIn
    created_at: UtcDateTime


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    agent: AgentIn | None = None


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    created_at: UtcDateTime
