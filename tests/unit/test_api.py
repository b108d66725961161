import base64
import hashlib
from datetime import datetime, timedelta

import httpx
import pytest

from switchboard.control import CONTROL_BODY_LIMITS
from tests import formats
from tests.conftest import AUTH, make_tenant


def test_every_api_route_requires_a_valid_token(client):
    paths = client.app.openapi()["paths"]
    operations = [(p, m.upper()) for p, ops in paths.items() if p.startswith("/v1/") for m in ops]
    assert len(operations) >= 16  # the walk really covers the API
    for path, method in operations:
        url = path.format(
            tenant_id="ten_x",
            call_id="c",
            document_id="d",
            agent_id="a",
            key_id="k",
            name="n",
            e164="+15550100",
            user_id="u",
        )
        r = client.request(method, url)
        assert r.status_code == 401, (method, path)
        r = client.request(method, url, headers={"Authorization": "Bearer wrong"})
        # No server listens for this in-process app, so its realm keys cannot be fetched:
        # an outage (503), never a pass. Bad tokens against a live realm: test_identity.py.
        assert r.status_code in (401, 503), (method, path)


def test_tenant_with_agent_number_and_document(client):
    t = make_tenant(client, "# Hours\n\nWe open at nine.")
    listed = client.get(f"/v1/tenants/{t['id']}/numbers", headers=AUTH).json()
    assert [n["e164"] for n in listed["items"]] == [t["number"]]
    docs = client.get(f"/v1/tenants/{t['id']}/documents", headers=AUTH).json()
    assert docs["total"] == 1 and docs["items"][0]["status"] == "ready"
    hits = client.get(
        f"/v1/tenants/{t['id']}/knowledge/search", params={"q": "when do you open"}, headers=AUTH
    ).json()
    assert hits[0]["text"] == "We open at nine." and hits[0]["section"] == "Hours"


def test_lists_paginate(client):
    for _ in range(3):
        make_tenant(client)
    page = client.get("/v1/tenants", params={"limit": 2, "offset": 1}, headers=AUTH).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["offset"] == 1
    assert client.get("/v1/tenants", params={"limit": 0}, headers=AUTH).status_code == 422
    # An offset no database can take is a 422, not a 500 (found by fuzzing the API).
    huge = client.get("/v1/tenants", params={"offset": 10**22}, headers=AUTH)
    assert huge.status_code == 422 and "offset" in str(huge.json()["detail"])
    far = client.get("/v1/tenants", params={"offset": 2**31 - 1}, headers=AUTH).json()
    assert far["items"] == [] and far["total"] == 3


def test_unknown_resources_are_404(client):
    assert client.get("/v1/tenants/ten_nope", headers=AUTH).status_code == 404
    r = client.post(
        "/v1/tenants/ten_nope/numbers", json={"e164": "+15550100200", "agent_id": "a"}, headers=AUTH
    )
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_a_number_belongs_to_one_agent_platform_wide(client):
    a, b = make_tenant(client), make_tenant(client)
    r = client.post(
        f"/v1/tenants/{b['id']}/numbers",
        json={"e164": a["number"], "agent_id": b["agent_id"]},
        headers=AUTH,
    )
    assert r.status_code == 409
    # Nor can a tenant bind a number to another tenant's agent.
    r = client.post(
        f"/v1/tenants/{b['id']}/numbers",
        json={"e164": "+15550100777", "agent_id": a["agent_id"]},
        headers=AUTH,
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("empty.md", b"   \n", 422),
        ("slides.pptx", b"PK\x03\x04", 422),
        ("scan.pdf", formats.image_only_pdf(), 422),
        ("locked.pdf", formats.encrypted_pdf("Parking", "On Mill Lane."), 422),
        ("latin1.txt", "caf\xe9".encode("latin-1"), 422),
        ("huge.txt", b"a" * (5 * 1024 * 1024 + 1), 413),
    ],
)
def test_bad_documents_are_refused_and_nothing_is_indexed(client, name, body, status):
    t = make_tenant(client)
    r = client.post(f"/v1/tenants/{t['id']}/documents", files={"file": (name, body)}, headers=AUTH)
    assert r.status_code == status, r.text
    assert r.json()["detail"]
    assert client.get(f"/v1/tenants/{t['id']}/documents", headers=AUTH).json()["total"] == 0
    assert stored_objects(client, t["id"]) == []  # no original kept either


def stored_objects(client, tenant_id: str) -> list[str]:
    return [o.name for o in client.portal.call(client.app.state.objects.list, tenant_id)]


def test_the_original_is_kept_and_deleting_removes_it_and_every_chunk(client):
    t = make_tenant(client, "Parking is on Mill Lane.")
    doc = client.get(f"/v1/tenants/{t['id']}/documents", headers=AUTH).json()["items"][0]
    link = client.get(f"/v1/tenants/{t['id']}/documents/{doc['id']}/original", headers=AUTH)
    assert link.status_code == 200, link.text
    assert link.json()["filename"] == "facts.md"
    original = client.get(link.json()["url"].removeprefix(client.app.state.settings.base_url))
    assert original.content == b"Parking is on Mill Lane."
    assert stored_objects(client, t["id"]) == [f"documents/{doc['id']}.md"]

    assert (
        client.delete(f"/v1/tenants/{t['id']}/documents/{doc['id']}", headers=AUTH).status_code
        == 204
    )
    hits = client.get(
        f"/v1/tenants/{t['id']}/knowledge/search", params={"q": "parking"}, headers=AUTH
    ).json()
    assert hits == []
    assert stored_objects(client, t["id"]) == []
    gone = client.get(f"/v1/tenants/{t['id']}/documents/{doc['id']}/original", headers=AUTH)
    assert gone.status_code == 404


def test_invalid_agent_config_is_422_with_the_field(client):
    r = client.post(
        "/v1/tenants",
        json={"name": "x", "agent": {"name": "a", "greeting": "hi", "tools": ["launch_rockets"]}},
        headers=AUTH,
    )
    assert r.status_code == 422 and "tools" in str(r.json()["detail"])
    r = client.post(
        "/v1/tenants",
        json={"name": "x", "agent": {"name": "a", "greeting": "hi", "transfer_number": "555"}},
        headers=AUTH,
    )
    assert r.status_code == 422
    # A misspelt field is named, not silently dropped.
    r = client.post(
        "/v1/tenants",
        json={"name": "x", "agent": {"name": "a", "greeting": "hi", "transfer_numbr": "+15550100"}},
        headers=AUTH,
    )
    assert r.status_code == 422 and "transfer_numbr" in str(r.json()["detail"])
    assert client.get("/v1/tenants", headers=AUTH).json()["total"] == 0  # nothing half-made


def test_an_agents_language_and_voice_must_suit_its_providers(client):
    def agent(**fields):
        body = {"name": "x", "agent": {"name": "a", "greeting": "hi"} | fields}
        return client.post("/v1/tenants", json=body, headers=AUTH)

    # Unset, the voice is the TTS provider's default.
    assert agent().json()["agent"]["voice"] == "en_US-joe-medium"
    SARVAM = {"stt": "deepgram", "tts": "sarvam"}
    hindi = agent(language="hi-IN", providers=SARVAM)
    assert hindi.status_code == 201 and hindi.json()["agent"]["voice"] == "shubh"
    for fields, said in [
        # The offline recogniser hears English only: a Hindi agent is told what would work.
        ({"language": "hi-IN"}, "use deepgram for hi-IN"),
        ({"language": "ta-IN", "providers": {"tts": "cartesia"}}, "does not hear ta-IN"),
        ({"language": "en-US", "providers": {"tts": "sarvam"}}, "does not speak en-US"),
        ({"voice": "shubh"}, "not a voice offline has"),
        ({"voice": "Barbershop Man", "providers": {"tts": "cartesia"}}, "a UUID"),
        ({"language": "hi-IN", "voice": "joe", "providers": SARVAM}, "priya"),
        ({"language": "xx-YY"}, "language"),
    ]:  # fmt: skip
        r = agent(**fields)
        assert r.status_code == 422 and said in str(r.json()["detail"]), (fields, r.text)
    assert client.get("/v1/tenants", headers=AUTH).json()["total"] == 2


def test_an_agents_own_llm_model_and_endpoint(client):
    def agent(**fields):
        body = {"name": "x", "agent": {"name": "a", "greeting": "hi"} | fields}
        return client.post("/v1/tenants", json=body, headers=AUTH)

    own = agent(providers={"llm": "openai"}, llm_model="qwen2.5:7b", llm_url="http://10.0.0.5/v1")
    assert own.status_code == 201, own.text
    assert own.json()["agent"]["llm_url"] == "http://10.0.0.5/v1"
    assert own.json()["agent"]["llm_model"] == "qwen2.5:7b"
    for fields, said in [
        ({"llm_url": "http://10.0.0.5/v1"}, "llm_url is for"),  # the offline engine
        ({"providers": {"llm": "anthropic"}, "llm_url": "http://x/v1"}, "llm_url is for"),
        ({"providers": {"llm": "openai"}, "llm_url": "not a url"}, "llm_url"),
        (
            {"providers": {"llm": "openai"}, "llm_url": "http://h/admin/delete/?id=42&rest="},
            "no query",
        ),
        ({"providers": {"llm": "openai"}, "llm_url": "http://u:p@h/v1"}, "credentials"),
        ({"llm_model": "gpt-4.1"}, "no choice of model"),
        ({"providers": {"llm": "openai"}, "llm_model": "a model; DROP"}, "llm_model"),
    ]:
        r = agent(**fields)
        assert r.status_code == 422 and said in str(r.json()["detail"]), (fields, r.text)


def test_an_agent_says_how_it_listens(client):
    def agent(**fields):
        body = {"name": "x", "agent": {"name": "a", "greeting": "hi"} | fields}
        return client.post("/v1/tenants", json=body, headers=AUTH)

    plain = agent()
    assert plain.json()["agent"]["speech"] == {
        "endpointing_ms": 300,
        "code_switching": False,
        "keyterms": [],
    }
    speech = {"endpointing_ms": 450, "code_switching": True, "keyterms": [" Sunrise Dental "]}
    hinglish = agent(language="hi-IN", providers={"stt": "deepgram"}, speech=speech)
    assert hinglish.status_code == 201, hinglish.text
    assert hinglish.json()["agent"]["speech"]["keyterms"] == ["Sunrise Dental"]
    for fields, said in [
        ({"speech": {"code_switching": True}}, "needs providers.stt = 'deepgram'"),
        ({"speech": {"endpointing_ms": 0}}, "endpointing_ms"),
        ({"speech": {"keyterms": ["x" * 51]}}, "keyterms"),
        ({"speech": {"keyterms": [""]}}, "keyterms"),
        ({"speech": {"vad": 1}}, "vad"),
    ]:
        r = agent(**fields)
        assert r.status_code == 422 and said in str(r.json()["detail"]), (fields, r.text)


ORDER_TOOL = {
    "name": "order_status",
    "description": "An order's delivery status.",
    "url": "https://api.example.com/orders/status",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}


def nested(levels: int) -> dict:
    schema: dict = {"type": "object"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def with_pattern(pattern: str) -> dict:
    return {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}}


def test_an_agent_declares_its_tenants_own_http_tools(client):
    def agent(*tools: dict):
        body = {"name": "x", "agent": {"name": "a", "greeting": "hi", "http_tools": list(tools)}}
        return client.post("/v1/tenants", json=body, headers=AUTH)

    r = agent(ORDER_TOOL)
    assert r.status_code == 201, r.text
    (stored,) = r.json()["agent"]["http_tools"]
    assert stored == ORDER_TOOL | {"timeout_ms": 3000}
    # The media plane's view of the agent carries it, for the LLM and the call.
    tenant = r.json()
    number = "+15550123987"
    bound = client.post(
        f"/v1/tenants/{tenant['id']}/numbers",
        json={"e164": number, "agent_id": tenant["agent"]["id"]},
        headers=AUTH,
    )
    assert bound.status_code == 201
    config = client.portal.call(client.app.state.port.agent_for_number, number)
    assert config.http_tools == (stored,)

    for tools, said in [
        ([ORDER_TOOL | {"name": "end_call"}], "built-in tool"),
        ([ORDER_TOOL, ORDER_TOOL], "its own name"),
        ([ORDER_TOOL | {"name": "Order Status!"}], "name"),
        ([ORDER_TOOL | {"url": "not a url"}], "url"),
        ([ORDER_TOOL | {"parameters": {"type": "string"}}], "must describe an object"),
        ([ORDER_TOOL | {"parameters": {"type": "object", "required": 5}}], "not a valid JSON"),
        ([ORDER_TOOL | {"timeout_ms": 60_000}], "timeout_ms"),
        ([ORDER_TOOL | {"headers": {"x": "y"}}], "headers"),  # a misspelt or unknown field
        ([ORDER_TOOL | {"parameters": nested(300)}], "nested more than 32"),
        ([ORDER_TOOL | {"parameters": with_pattern(r"^(a)\1$")}], "RE2"),
        ([ORDER_TOOL | {"parameters": with_pattern("(?=a)a")}], "lookaround"),
    ]:
        r = agent(*tools)
        assert r.status_code == 422 and said in str(r.json()["detail"]), (tools, r.text)


def test_a_released_number_stops_reaching_the_agent(client):
    t = make_tenant(client)
    port = client.app.state.port
    assert client.portal.call(port.agent_for_number, t["number"]) is not None
    path = f"/v1/tenants/{t['id']}/numbers/{t['number']}"
    assert client.delete(path, headers=AUTH).status_code == 204
    assert client.portal.call(port.agent_for_number, t["number"]) is None
    assert client.delete(path, headers=AUTH).status_code == 404
    # Free again: another tenant can bind it.
    other = make_tenant(client)
    r = client.post(
        f"/v1/tenants/{other['id']}/numbers",
        json={"e164": t["number"], "agent_id": other["agent_id"]},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text


def test_changing_an_agent_makes_a_new_version_and_keeps_the_old(client):
    t = make_tenant(client)
    url = f"/v1/tenants/{t['id']}/agents/{t['agent_id']}"
    assert client.get(url, headers=AUTH).json()["version"] == 1
    new = {"name": "Reception", "greeting": "Good morning!", "tools": ["end_call"]}
    r = client.put(url, json=new, headers=AUTH)
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.json()["greeting"] == "Good morning!"
    versions = client.get(f"{url}/versions", headers=AUTH).json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
    assert versions["items"][1]["config"]["greeting"] == "Hello, you have reached the test clinic."
    assert versions["items"][0]["config"]["tools"] == ["end_call"]


def test_agents_of_another_tenant_cannot_be_read_or_changed(client):
    a, b = make_tenant(client), make_tenant(client)
    url = f"/v1/tenants/{b['id']}/agents/{a['agent_id']}"
    assert client.get(url, headers=AUTH).status_code == 404
    r = client.put(url, json={"name": "x", "greeting": "hijacked"}, headers=AUTH)
    assert r.status_code == 404
    assert client.get(f"{url}/versions", headers=AUTH).status_code == 404
    own = client.get(f"/v1/tenants/{a['id']}/agents/{a['agent_id']}", headers=AUTH).json()
    assert own["version"] == 1 and own["greeting"] != "hijacked"


def test_oversize_bodies_are_refused_before_anything_reads_them(client):
    limit = CONTROL_BODY_LIMITS["/v1/"]  # an API call's JSON, well below a document's
    huge = b'{"name": "' + b"x" * limit + b'"}'
    json_auth = AUTH | {"Content-Type": "application/json"}
    r = client.post("/v1/tenants", content=huge, headers=json_auth)
    assert r.status_code == 413 and str(limit) in r.json()["detail"]

    def chunked():  # no Content-Length: counted as it arrives
        yield b'{"name": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = client.post("/v1/tenants", content=chunked(), headers=json_auth)
    assert r.status_code == 413
    assert client.get("/v1/tenants", headers=AUTH).json()["total"] == 0
    # A document upload takes the process's ceiling, SWITCHBOARD_MAX_REQUEST_BYTES.
    t = make_tenant(client)
    big = b"x" * (client.app.state.settings.max_request_bytes + 1)
    r = client.post(
        f"/v1/tenants/{t['id']}/documents", files={"file": ("a.txt", big)}, headers=AUTH
    )
    assert r.status_code == 413
    # One well past an API call's limit, under the ceiling, is taken (for the worker).
    manual = b"# Manual\n\n" + b"Turn the dial. " * 70_000  # 1 MB
    r = client.post(
        f"/v1/tenants/{t['id']}/documents", files={"file": ("manual.md", manual)}, headers=AUTH
    )
    assert r.status_code == 202, r.text


def test_absurd_tokens_are_refused_with_401_not_a_500(live_platform):
    # Against a live server: validating a token fetches the realm's keys over HTTP.
    nested = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode().rstrip("=")
    for token in (f"{nested}.e30.sig", "a.b." + "c" * 20_000, "e30.e30.e30"):
        r = httpx.get(
            f"{live_platform.url}/v1/tenants", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 401, r.text


def test_odd_bytes_in_a_token_or_link_are_refused_not_a_500(client):
    odd = {"Authorization": "Bearer caf\xe9".encode("latin-1")}
    assert client.get("/v1/tenants", headers=odd).status_code in (401, 503)
    link = "/objects/tenants/t/recordings/c.wav?expires=9999999999&signature=caf%C3%A9"
    assert client.get(link).status_code == 403


FORMATS = {
    "facts.pdf": lambda: formats.pdf("Parking", "Free parking is on Mill Lane."),
    "facts.docx": lambda: formats.docx_file("Parking", "Free parking is on Mill Lane."),
    "facts.html": lambda: formats.html("Parking", "Free parking is on Mill Lane."),
    "facts.csv": lambda: formats.qa_csv([("Where can I park?", "Free parking is on Mill Lane.")]),
    "facts.md": lambda: b"# Parking\n\nFree parking is on Mill Lane.",
    "facts.txt": lambda: b"Free parking is on Mill Lane.",
}


@pytest.mark.parametrize("filename", FORMATS)
def test_every_format_uploads_ready_and_searchable(client, filename):
    t = make_tenant(client)
    data = FORMATS[filename]()
    r = client.post(
        f"/v1/tenants/{t['id']}/documents", files={"file": (filename, data)}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "ready" and r.json()["chunks"] >= 1
    hits = client.get(
        f"/v1/tenants/{t['id']}/knowledge/search", params={"q": "parking"}, headers=AUTH
    ).json()
    assert "Mill Lane" in hits[0]["text"]


def upload(client, tenant_id: str, filename: str, data: bytes):
    return client.post(
        f"/v1/tenants/{tenant_id}/documents", files={"file": (filename, data)}, headers=AUTH
    )


def search(client, tenant_id: str, q: str) -> list[str]:
    r = client.get(f"/v1/tenants/{tenant_id}/knowledge/search", params={"q": q}, headers=AUTH)
    return [h["text"] for h in r.json()]


def test_the_same_content_twice_is_one_document(client):
    t = make_tenant(client)
    first = upload(client, t["id"], "parking.md", b"Parking is on Mill Lane.")
    again = upload(client, t["id"], "copy-of-parking.md", b"Parking is on Mill Lane.")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert client.get(f"/v1/tenants/{t['id']}/documents", headers=AUTH).json()["total"] == 1
    assert search(client, t["id"], "parking") == ["Parking is on Mill Lane."]  # not twice


def test_uploading_a_name_again_replaces_that_document(client):
    t = make_tenant(client)
    first = upload(client, t["id"], "parking.md", b"Parking is on Mill Lane.")
    second = upload(client, t["id"], "parking.md", b"Parking has moved to Station Road.")
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    assert second.json()["sha256"] != first.json()["sha256"]
    assert search(client, t["id"], "parking") == ["Parking has moved to Station Road."]
    link = client.get(
        f"/v1/tenants/{t['id']}/documents/{first.json()['id']}/original", headers=AUTH
    ).json()["url"]
    served = client.get(link.removeprefix(client.app.state.settings.base_url))
    assert served.content == b"Parking has moved to Station Road."


def test_a_replacement_that_fails_to_index_leaves_the_previous_version_whole(client):
    from control_plane.kit.db import session_scope
    from control_plane.knowledge import service

    t = make_tenant(client)
    upload(client, t["id"], "parking.md", b"Parking is on Mill Lane.")
    state = client.app.state

    class IndexFailsOnce:
        """The real store, whose next upsert fails part-way (after clearing the old)."""

        def __init__(self, store):
            self.store, self.failed = store, False

        def upsert(self, tenant_id, document_id, chunks):
            if not self.failed:
                self.failed = True
                self.store.delete_document(tenant_id, document_id)
                raise RuntimeError("index unavailable")
            self.store.upsert(tenant_id, document_id, chunks)

        def __getattr__(self, name):
            return getattr(self.store, name)

    async def replace() -> None:
        async with session_scope(state.sessions) as session:
            await service.add_document(
                session,
                IndexFailsOnce(state.knowledge),
                state.objects,
                state.sandbox.chunks,
                t["id"],
                "parking.md",
                b"Parking has moved to Station Road.",
            )

    with pytest.raises(RuntimeError, match="index unavailable"):
        client.portal.call(replace)
    assert search(client, t["id"], "parking") == ["Parking is on Mill Lane."]
    (doc,) = client.get(f"/v1/tenants/{t['id']}/documents", headers=AUTH).json()["items"]
    assert doc["sha256"] == hashlib.sha256(b"Parking is on Mill Lane.").hexdigest()


def test_the_api_answers_as_its_openapi_document_says(client):
    # Date-times carry their zone, whatever the database hands back.
    make_tenant(client)
    (tenant,) = client.get("/v1/tenants", headers=AUTH).json()["items"]
    assert datetime.fromisoformat(tenant["created_at"]).utcoffset() == timedelta(0)
    # A validation error's items are FastAPI's documented ValidationError (loc, msg, type).
    bad = client.post("/v1/tenants", json={"name": ""}, headers=AUTH)
    assert bad.status_code == 422
    assert all({"loc", "msg", "type"} <= item.keys() for item in bad.json()["detail"])
    # A method the path does not take: 405, every method it does take, the usual body.
    r = client.patch("/v1/tenants", headers=AUTH)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    assert r.json()["error"] == "method_not_allowed"
    assert client.get("/v1/nothing-here", headers=AUTH).json()["error"] == "not_found"
    # A body that is not the JSON it claims: 400, documented on every operation with one.
    r = client.post(
        "/v1/tenants", content=b"{not json", headers=AUTH | {"Content-Type": "application/json"}
    )
    assert r.status_code in (400, 422), r.text
    spec = client.app.openapi()
    assert "400" in spec["paths"]["/v1/tenants"]["post"]["responses"]
