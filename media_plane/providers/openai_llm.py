"""Pipecat's OpenAI-compatible LLM service with a stall timeout.

Pipecat builds its ``AsyncOpenAI`` client with the SDK's default timeout (10 minutes):
a self-hosted server that stops mid-reply would leave the caller in silence that long.
Here a stream that goes quiet for ``stall_secs`` fails the attempt, as Claude's does, so
the SDK retries and then the call's recovery (``llm_recovery.py``) speaks. A tenant's
own endpoint is reached through the client the factory gives, which connects only to
public addresses (``common/outbound.py``).
"""

import httpx
from pipecat.services.openai.llm import OpenAILLMService


class StallingOpenAILLMService(OpenAILLMService):
    def __init__(
        self,
        *,
        stall_secs: float,
        connect_secs: float,
        http_client: httpx.AsyncClient | None = None,
        **kwargs,
    ):
        # Set before the base class creates its client with create_client().
        self._timeout = httpx.Timeout(stall_secs, connect=connect_secs)
        self._http_client = http_client  # a tenant's server: common/outbound.py
        super().__init__(**kwargs)

    def create_client(self, *args, **kwargs):
        client = super().create_client(*args, **kwargs)
        if self._http_client is not None:
            return client.with_options(timeout=self._timeout, http_client=self._http_client)
        return client.with_options(timeout=self._timeout)
