"""An S3 test server (what MinIO speaks): path-style buckets and objects in memory, for the
calls the ``minio`` client makes — HEAD/PUT bucket, PUT/GET/HEAD/DELETE object,
ListObjectsV2 — with AWS Signature Version 4 checked on every request, in the
Authorization header or in a presigned URL's query, as AWS documents it. A request with a
wrong key, a changed URL or an expired presigned URL gets S3's 403."""

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request
from fastapi.responses import Response

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,]+),\s*"
    r"SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]+)"
)
_SPACES = re.compile(r" +")


def _hmac(key: bytes, data: str) -> bytes:
    return hmac.new(key, data.encode(), hashlib.sha256).digest()


def _signature(secret: str, scope: str, amz_date: str, canonical_request: str) -> str:
    date, region, service, terminator = scope.split("/")
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _canonical_query(raw_query: str, drop: str | None = None) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        name, _, value = item.partition("=")
        if name != drop:
            # Re-encoded from the decoded form, as the spec defines it.
            pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_request(request: Request, signed: str, query: str, payload_hash: str) -> str:
    headers = "".join(
        f"{name}:{_SPACES.sub(' ', request.headers.get(name, '')).strip()}\n"
        for name in signed.split(";")
    )
    path = request.scope["raw_path"].decode() or "/"
    return "\n".join([request.method, path, query, headers, signed, payload_hash])


def _error(status: int, code: str, message: str, resource: str = "") -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>test</RequestId></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def s3_app(access_key: str, secret_key: str) -> FastAPI:
    app = FastAPI()
    buckets: dict[str, dict[str, dict]] = {}

    def _iso(when: datetime) -> str:
        return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    async def refusal(request: Request, body: bytes) -> Response | None:
        """None when the request is signed with our key and intact; else S3's 403."""
        raw_query = request.scope["query_string"].decode()
        params = request.query_params
        if "X-Amz-Signature" in params:  # a presigned URL
            credential = params.get("X-Amz-Credential", "")
            signed = params.get("X-Amz-SignedHeaders", "")
            signature = params["X-Amz-Signature"]
            amz_date = params.get("X-Amz-Date", "")
            try:
                issued = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                expires = int(params.get("X-Amz-Expires", ""))
            except ValueError:
                return _error(403, "AuthorizationQueryParametersError", "bad presign query")
            if datetime.now(UTC) > issued + timedelta(seconds=expires):
                return _error(403, "AccessDenied", "Request has expired")
            query = _canonical_query(raw_query, drop="X-Amz-Signature")
            payload_hash = "UNSIGNED-PAYLOAD"
        else:
            match = _AUTH.fullmatch(request.headers.get("authorization", ""))
            if match is None:
                return _error(403, "AccessDenied", "Access Denied")
            credential, signed, signature = match["credential"], match["signed"], match["signature"]
            amz_date = request.headers.get("x-amz-date", "")
            payload_hash = request.headers.get("x-amz-content-sha256", "")
            if payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != (
                hashlib.sha256(body).hexdigest()
            ):
                return _error(400, "XAmzContentSHA256Mismatch", "payload hash mismatch")
            query = _canonical_query(raw_query)
        key_id, _, scope = credential.partition("/")
        if key_id != access_key:
            return _error(403, "InvalidAccessKeyId", "The access key does not exist")
        canonical = _canonical_request(request, signed, query, payload_hash)
        expected = _signature(secret_key, scope, amz_date, canonical)
        if not hmac.compare_digest(expected, signature):
            return _error(403, "SignatureDoesNotMatch", "The signature does not match")
        return None

    def list_v2(bucket: str, request: Request) -> Response:
        prefix = request.query_params.get("prefix", "")
        url_encode = request.query_params.get("encoding-type") == "url"
        contents = "".join(
            f"<Contents><Key>{quote(key) if url_encode else escape(key)}</Key>"
            f"<LastModified>{_iso(obj['modified'])}</LastModified>"
            f'<ETag>"{obj["etag"]}"</ETag><Size>{len(obj["data"])}</Size>'
            "<StorageClass>STANDARD</StorageClass></Contents>"
            for key, obj in sorted(buckets[bucket].items())
            if key.startswith(prefix)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{bucket}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{contents.count('<Contents>')}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"{'<EncodingType>url</EncodingType>' if url_encode else ''}"
            f"<IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
        )
        return Response(body, media_type="application/xml")

    def object_headers(obj: dict) -> dict[str, str]:
        return {
            "ETag": f'"{obj["etag"]}"',
            "Last-Modified": obj["modified"].strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "Content-Type": obj["content_type"],
            "Content-Length": str(len(obj["data"])),
        }

    @app.api_route("/{path:path}", methods=["GET", "PUT", "HEAD", "DELETE"])
    async def s3(path: str, request: Request) -> Response:
        body = await request.body()
        if denied := await refusal(request, body):
            return denied
        bucket, _, key = unquote(path).partition("/")
        if not key:
            if request.method == "PUT":
                if bucket in buckets:
                    return _error(409, "BucketAlreadyOwnedByYou", "bucket exists", bucket)
                buckets[bucket] = {}
                return Response(headers={"Location": f"/{bucket}"})
            if bucket not in buckets:
                return _error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)
            if request.method == "HEAD":
                return Response()
            if request.method == "GET" and request.query_params.get("list-type") == "2":
                return list_v2(bucket, request)
            return _error(501, "NotImplemented", "not implemented by the test server")
        if bucket not in buckets:
            return _error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)
        objects = buckets[bucket]
        if request.method == "PUT":
            objects[key] = {
                "data": body,
                "etag": hashlib.md5(body).hexdigest(),
                "modified": datetime.now(UTC).replace(microsecond=0),
                "content_type": request.headers.get("content-type", "application/octet-stream"),
            }
            return Response(headers={"ETag": f'"{objects[key]["etag"]}"'})
        if request.method == "DELETE":
            objects.pop(key, None)
            return Response(status_code=204)
        obj = objects.get(key)
        if obj is None:
            if request.method == "HEAD":
                return Response(status_code=404)
            return _error(404, "NoSuchKey", "The specified key does not exist.", key)
        if request.method == "HEAD":
            return Response(headers=object_headers(obj))
        return Response(obj["data"], headers=object_headers(obj))

    app.state.buckets = buckets  # tests age objects to exercise retention
    return app
