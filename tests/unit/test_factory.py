"""What the factory builds from an agent config, and which key goes where."""

import pytest

from media_plane.agent import AgentConfig
from media_plane.providers.credentials import Credentials, credentials_for
from media_plane.providers.factory import ANTHROPIC_MODEL, MissingKey, make_llm, make_stt
from switchboard.settings import Settings


def agent(**fields) -> AgentConfig:
    base = AgentConfig("t1", "a1", "n", "p", "g", "en-US", "en_US-joe-medium", ())
    return AgentConfig(**{f: getattr(base, f) for f in base.__slots__} | fields)


class Secrets:
    """The port's secret lookup, and nothing else the credentials need."""

    def __init__(self, secrets: dict[str, str]):
        self._secrets = secrets

    async def secret(self, tenant_id: str, name: str) -> str | None:
        return self._secrets.get(name)


def test_the_agents_own_model_is_used_else_the_providers_default():
    keys = Credentials({"anthropic": "k", "openai": "k"})
    assert make_llm(agent(providers={"llm": "anthropic"}), keys)._settings.model == ANTHROPIC_MODEL
    sonnet = agent(providers={"llm": "anthropic"}, llm_model="claude-sonnet-4-5")
    assert make_llm(sonnet, keys)._settings.model == "claude-sonnet-4-5"
    llama = agent(providers={"llm": "openai"}, llm_model="llama-3.1-8b-instruct")
    assert make_llm(llama, keys)._settings.model == "llama-3.1-8b-instruct"


def test_an_openai_agent_needs_a_key_or_an_endpoint():
    with pytest.raises(MissingKey):
        make_llm(agent(providers={"llm": "openai"}), Credentials())
    self_hosted = Credentials(urls={"openai": "http://10.0.0.5:8080/v1"})
    assert make_llm(agent(providers={"llm": "openai"}), self_hosted) is not None


async def test_the_platforms_key_never_goes_to_a_tenants_own_endpoint():
    settings = Settings(_env_file=None, openai_api_key="platform-key", openai_url="http://p/v1")
    on_platform = agent(providers={"llm": "openai"})
    own = agent(providers={"llm": "openai"}, llm_url="https://llm.tenant.example/v1")

    found = await credentials_for(on_platform, Secrets({}), settings)
    assert found.keys == {"openai": "platform-key"} and found.urls == {"openai": "http://p/v1"}
    assert found.owners == {"openai": "platform"}
    found = await credentials_for(own, Secrets({}), settings)
    assert found.keys == {} and found.urls == {"openai": "https://llm.tenant.example/v1"}
    assert found.owners == {"openai": "t1"}  # its own breaker
    found = await credentials_for(own, Secrets({"openai_api_key": "tenant-key"}), settings)
    assert found.keys == {"openai": "tenant-key"}
    assert "tenant-key" not in repr(found)  # keys never reach a log line


async def test_a_provider_with_no_key_has_no_breaker_to_count_on():
    cartesia = agent(providers={"tts": "cartesia"}, voice="71a7ad14-091c-4e8e-a314-022ece01c121")
    settings = Settings(_env_file=None)
    found = await credentials_for(cartesia, Secrets({}), settings)
    assert found.keys == {} and found.owners == {}  # the call falls back: no key
    found = await credentials_for(cartesia, Secrets({"cartesia_api_key": "k"}), settings)
    assert found.owners == {"cartesia": "t1"}


def test_both_llm_clients_give_up_on_a_stream_that_goes_quiet():
    keys = Credentials({"anthropic": "k", "openai": "k"}, llm_stall_secs=1.5)
    for provider in ("anthropic", "openai"):
        client = make_llm(agent(providers={"llm": provider}), keys)._client
        # Each SDK's own timeout type; read timeout = how long a stream may go quiet.
        assert (client.timeout.read, client.timeout.connect) == (1.5, 2.0), provider


def test_deepgram_listens_as_the_agent_says():
    keys = Credentials({"deepgram": "k"})
    default = make_stt(agent(providers={"stt": "deepgram"}), keys)._settings
    assert (default.language, default.endpointing, default.keyterm) == ("en-US", 300, None)
    hinglish = agent(
        providers={"stt": "deepgram"},
        language="hi-IN",
        speech={"endpointing_ms": 500, "code_switching": True, "keyterms": ["Sunrise Dental"]},
    )
    settings = make_stt(hinglish, keys)._settings
    assert (settings.language, settings.endpointing) == ("multi", 500)
    assert settings.keyterm == ["Sunrise Dental"]
    hindi = agent(providers={"stt": "deepgram"}, language="hi-IN")
    assert make_stt(hindi, keys)._settings.language == "hi"


def test_a_media_process_has_every_cloud_sdk_loaded_before_its_first_call():
    """An import runs on the event loop: a provider module first imported during a call
    stalls every call in the process (``anthropic``: ~1.5 s). Every module the factory
    imports where it builds a provider must be loaded by ``import_cloud_sdks``, checked in a
    fresh interpreter so nothing this test process imported earlier can hide one."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    from media_plane.providers import factory

    tree = ast.parse(Path(factory.__file__).read_text())
    lazy = sorted(
        {
            node.module
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.ImportFrom) and node.module
        }
    )
    assert "anthropic" in lazy  # the walk finds the factory's deferred imports
    check = (
        "import sys\n"
        "from media_plane.providers.factory import import_cloud_sdks\n"
        "import_cloud_sdks()\n"
        f"missing = [m for m in {lazy!r} if m not in sys.modules]\n"
        "assert not missing, missing\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
