"""Serving the app with uvicorn, and draining it: SIGTERM never cuts a call.

Uvicorn's own SIGTERM closes every connection at once, WebSockets included (1012), which
is a live call cut off. Here the first SIGTERM (or Ctrl-C) drains instead: readiness
(``/readyz``) turns false at once, new calls are refused with 503 (which the proxy retries
on another process), live calls run to their natural end (and their provider's follow-up
request is answered), then the server stops and the process exits 0.
``SWITCHBOARD_DRAIN_SECS`` caps the wait; a second signal stops at once.
"""

import asyncio
import signal
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI
from loguru import logger

DRAIN_POLL_SECS = 0.5
# After its last call, a process still answers that call's follow-up for this long: the
# provider asks what next (Twilio's <Connect action>, Exotel's Passthru) right after the
# stream closes.
FOLLOW_UP_SECS = 3.0


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_secs: float):
        super().__init__(config)
        self._app = app
        self._drain_secs = drain_secs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task | None = None

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)
        # Uvicorn raises the captured signal again once it is done, for a default handler
        # to end the process: drained, it ends by returning, with exit code 0.
        self._captured_signals.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        takes_calls = hasattr(self._app.state, "calls")  # a process running the media plane
        if self._drain is not None or not takes_calls or self._loop is None:
            # A second signal, or nothing to drain: uvicorn's own shutdown.
            if self._drain is not None:
                self.force_exit = True
            super().handle_exit(sig, frame)
            return
        self._loop.call_soon_threadsafe(self._start_drain, sig)

    def _start_drain(self, sig: int) -> None:
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_then_stop(sig), name="drain")

    async def _drain_then_stop(self, sig: int) -> None:
        app = self._app
        calls = app.state.calls
        calls.start_draining()
        logger.info("platform.draining", signal=signal.Signals(sig).name, live=calls.live_count)
        deadline = self._loop.time() + self._drain_secs if self._loop else 0.0
        while not await calls.drained():
            if self._loop is None or self._loop.time() >= deadline:
                logger.warning("platform.drain_ceiling", live=calls.live_count)
                break
            await asyncio.sleep(DRAIN_POLL_SECS)
        # The last call's follow-up request, if it ended moments ago.
        await asyncio.sleep(max(0.0, calls.last_finished + FOLLOW_UP_SECS - time.monotonic()))
        logger.info("platform.drained", live=calls.live_count)
        self.should_exit = True


def serve(app: FastAPI, host: str, port: int, drain_secs: float, **limits) -> None:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", **limits)
    DrainingServer(config, app, drain_secs).run()
