"""Presigned downloads from the local object store (the embedded default).

With MinIO, presigned URLs point at MinIO itself and this route is never used.
"""

import mimetypes

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from control_plane.kit.errors import error_responses
from control_plane.objects.store import LocalObjectStore

router = APIRouter(tags=["objects"])

_DENIED = {"error": "forbidden", "detail": "this link is invalid or has expired"}


@router.get(
    "/objects/{key:path}",
    response_class=FileResponse,
    responses={
        200: {"description": "The object's bytes.", "content": {"application/octet-stream": {}}},
        **error_responses(403, 404),
    },
    summary="Download an object through a presigned link",
)
async def presigned_download(
    key: str,
    request: Request,
    expires: int = Query(description="Unix time the link stops working"),
    signature: str = Query(max_length=128),
) -> Response:
    store = request.app.state.objects
    if not isinstance(store, LocalObjectStore) or not store.verify(key, expires, signature):
        return JSONResponse(_DENIED, status_code=403)
    path = store.path_for(key)
    if not path.is_file():
        detail = "the object no longer exists (deleted, or past its retention)"
        return JSONResponse({"error": "not_found", "detail": detail}, status_code=404)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type)
