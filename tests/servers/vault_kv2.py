"""A HashiCorp Vault test server: the KV version 2 secrets engine's HTTP API, as Vault
documents it, for the calls hvac makes (token header, data and metadata endpoints, LIST),
keeping every version in memory."""

from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def vault_kv2_app(token: str, mount: str = "secret") -> FastAPI:
    app = FastAPI()
    secrets: dict[str, dict] = {}  # path -> {"versions": [{"data", "created_time"}], ...}

    def denied(request: Request) -> JSONResponse | None:
        if request.headers.get("X-Vault-Token") != token:
            return JSONResponse({"errors": ["permission denied"]}, status_code=403)
        return None

    def not_found() -> JSONResponse:
        return JSONResponse({"errors": []}, status_code=404)

    def metadata(entry: dict) -> dict:
        versions = entry["versions"]
        return {
            "created_time": versions[0]["created_time"],
            "updated_time": versions[-1]["created_time"],
            "current_version": len(versions),
            "oldest_version": 1,
            "max_versions": 0,
            "cas_required": False,
            "custom_metadata": None,
            "delete_version_after": "0s",
            "versions": {
                str(i + 1): {
                    "created_time": v["created_time"],
                    "deletion_time": "",
                    "destroyed": False,
                }
                for i, v in enumerate(versions)
            },
        }

    @app.post(f"/v1/{mount}/data/{{path:path}}")
    async def write(path: str, request: Request):
        if refusal := denied(request):
            return refusal
        body = await request.json()
        if not isinstance(body.get("data"), dict):
            return JSONResponse({"errors": ["no data provided"]}, status_code=400)
        entry = secrets.setdefault(path, {"versions": []})
        entry["versions"].append({"data": body["data"], "created_time": _now()})
        version = entry["versions"][-1]
        return {
            "data": {
                "created_time": version["created_time"],
                "custom_metadata": None,
                "deletion_time": "",
                "destroyed": False,
                "version": len(entry["versions"]),
            }
        }

    @app.get(f"/v1/{mount}/data/{{path:path}}")
    async def read(path: str, request: Request):
        if refusal := denied(request):
            return refusal
        entry = secrets.get(path)
        if entry is None:
            return not_found()
        latest = entry["versions"][-1]
        return {
            "data": {
                "data": latest["data"],
                "metadata": {
                    "created_time": latest["created_time"],
                    "deletion_time": "",
                    "destroyed": False,
                    "version": len(entry["versions"]),
                },
            }
        }

    @app.get(f"/v1/{mount}/metadata/{{path:path}}")
    async def read_metadata(path: str, request: Request):
        if refusal := denied(request):
            return refusal
        if request.query_params.get("list") == "true":
            return await list_keys(path, request)
        entry = secrets.get(path)
        return {"data": metadata(entry)} if entry else not_found()

    @app.api_route(f"/v1/{mount}/metadata/{{path:path}}", methods=["LIST"])
    async def list_keys(path: str, request: Request):
        if refusal := denied(request):
            return refusal
        prefix = path.rstrip("/") + "/"
        keys = sorted(
            {
                p[len(prefix) :].split("/")[0] + ("/" if "/" in p[len(prefix) :] else "")
                for p in secrets
                if p.startswith(prefix)
            }
        )
        return {"data": {"keys": keys}} if keys else not_found()

    @app.delete(f"/v1/{mount}/metadata/{{path:path}}")
    async def delete_all(path: str, request: Request):
        if refusal := denied(request):
            return refusal
        secrets.pop(path, None)
        return Response(status_code=204)

    return app
