"""One domain error base, rendered as ``{"error": ..., "detail": ...}``."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path


class DomainError(Exception):
    status_code = 400
    error = "bad_request"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    status_code = 404
    error = "not_found"


class Conflict(DomainError):
    status_code = 409
    error = "conflict"


class Unprocessable(DomainError):
    status_code = 422
    error = "unprocessable"


class PayloadTooLarge(DomainError):
    status_code = 413
    error = "payload_too_large"


class Unauthorized(DomainError):
    status_code = 401
    error = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    error = "forbidden"


class TooManyRequests(DomainError):
    status_code = 429
    error = "too_many_requests"

    def __init__(self, detail: str, retry_after_secs: int):
        super().__init__(detail)
        self.retry_after_secs = retry_after_secs


class ServiceUnavailable(DomainError):
    status_code = 503
    error = "unavailable"


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI entries for the errors a route can return."""
    schema = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "detail": {}},
        "required": ["error", "detail"],
    }
    return {
        code: {"description": "Error", "content": {"application/json": {"schema": schema}}}
        for code in codes
    }


def document_body_limit(app: FastAPI) -> None:
    """Every request body passes the size limit (kit/body_limit.py) and the parser (a body
    that is not the JSON or form it claims is a 400): say so on each operation that takes
    one."""
    build = app.openapi

    def openapi() -> dict:
        first = app.openapi_schema is None
        spec = build()  # FastAPI builds once and caches it
        if first:
            for operations in spec["paths"].values():
                for operation in operations.values():
                    if "requestBody" in operation:
                        for code, response in error_responses(400, 413).items():
                            operation["responses"].setdefault(str(code), response)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


# The router's and the body parser's own refusals, by the names the API uses for them.
HTTP_ERRORS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def error_response(exc: DomainError) -> JSONResponse:
    retry = getattr(exc, "retry_after_secs", None)
    return JSONResponse(
        {"error": exc.error, "detail": exc.detail},
        status_code=exc.status_code,
        headers={"Retry-After": str(retry)} if retry is not None else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Both planes' error bodies. (The database's conflicts are the control plane's:
    ``kit.db.install_conflict_handler``; the media plane does not import SQLAlchemy.)"""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Each item as FastAPI's documented ValidationError has it (loc, msg, type).
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The router's own answers (no such path, a method the path does not take) in the
        # same shape as every other error.
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(sorted(_methods_at(request)))
        error = HTTP_ERRORS.get(exc.status_code, "http_error")
        body = {"error": error, "detail": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _methods_at(request: Request) -> set[str]:
    """Every method the API document gives this path (Starlette's 405 names only the
    first matching route's, and each method is its own route here)."""
    paths = request.app.openapi()["paths"]
    return {
        method.upper()
        for template, operations in paths.items()
        if compile_path(template)[0].match(request.url.path)
        for method in operations
    }
