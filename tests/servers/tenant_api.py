"""A tenant's own API serving a tool its agent calls, built the way docs/tools.md tells a
tenant to build one: it checks each request's ``X-Switchboard-Signature`` (HMAC-SHA256 of
``"<timestamp>.<body>"`` with the shared ``tool_signing_secret``) and that its
``X-Switchboard-Timestamp`` is within five minutes, and refuses anything else with 401.

``POST /orders/status`` answers ``{"order_id", "status", "arrives"}`` for the arguments'
``order_id``; ``app.state.mode`` makes it misbehave instead: ``slow`` (answers after 5 s),
``huge`` (20 KB), ``error`` (500), ``not_json``, ``redirect`` (302 elsewhere). Every request
is kept (``app.state.requests``: its body and whether its signature held).
"""

import asyncio
import hashlib
import hmac
import json
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse

FRESH_SECS = 300


def tenant_api_app(secret: str) -> FastAPI:
    app = FastAPI()
    app.state.requests = []
    app.state.mode = "ok"

    @app.post("/orders/status")
    async def order_status(request: Request):
        body = await request.body()
        timestamp = request.headers.get("x-switchboard-timestamp", "")
        given = request.headers.get("x-switchboard-signature", "")
        mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < FRESH_SECS
        signed = fresh and hmac.compare_digest(given, "v1=" + mac.hexdigest())
        app.state.requests.append({"body": json.loads(body), "signed": signed})
        if not signed:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        mode = app.state.mode
        if mode == "slow":
            await asyncio.sleep(5)
        if mode == "huge":
            return {"padding": "x" * 20_000}
        if mode == "error":
            return JSONResponse({"error": "database down"}, status_code=500)
        if mode == "not_json":
            return PlainTextResponse("shipped, probably")
        if mode == "redirect":
            return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)
        order_id = json.loads(body)["arguments"]["order_id"]
        return {"order_id": order_id, "status": "shipped", "arrives": "Tuesday"}

    return app
