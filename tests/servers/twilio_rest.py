"""Twilio's REST API for a live call, as Twilio documents it, for the ``twilio`` SDK:
``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` (form-encoded ``Twiml``
or ``Status=completed``), HTTP Basic authentication as ``AccountSid:AuthToken``.

- A request whose user is not the path's account, or whose token is not among
  ``auth_tokens``, gets 401 with Twilio's error body (code 20003).
- ``app.state.fail_with = (status, code)``: every update fails with it (e.g. ``(404,
  20404)``: the call has already ended), until set back to ``None``.
- Each accepted update is kept (``app.state.updates``: account, call, form) and answered
  200 with the call resource, its status ``in-progress`` or ``completed``.
"""

import base64
import binascii

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ERRORS = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20500: "Internal Server Error",
}


def twilio_error(status: int, code: int) -> JSONResponse:
    body = {
        "code": code,
        "message": ERRORS.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status)


def twilio_rest_app(auth_tokens: set[str]) -> FastAPI:
    app = FastAPI()
    app.state.updates = []
    app.state.fail_with = None

    @app.post("/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json")
    async def update_call(account_sid: str, call_sid: str, request: Request):
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, token = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, token = "", ""
        if scheme != "Basic" or user != account_sid or token not in auth_tokens:
            return twilio_error(401, 20003)
        if app.state.fail_with is not None:
            return twilio_error(*app.state.fail_with)
        form = dict(await request.form())
        app.state.updates.append({"account": account_sid, "call": call_sid, "form": form})
        status = "completed" if form.get("Status") == "completed" else "in-progress"
        return {
            "sid": call_sid,
            "account_sid": account_sid,
            "status": status,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json",
        }

    return app
