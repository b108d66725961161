from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "control-plane.md"


def test_every_route_is_documented_with_its_method(client):
    doc = DOC.read_text()
    rows = {
        (line.split("|")[1].strip(), line.split("|")[2].strip().strip("`"))
        for line in doc.splitlines()
        if line.startswith("| ") and line.count("|") >= 4
    }
    missing = [
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()
        for method in operations
        if (method.upper(), path) not in rows
    ]
    assert missing == [], f"document these in {DOC.name}: {missing}"


def test_openapi_documents_the_errors_every_operation_can_answer(client):
    """What each kind of route can answer, from how the platform is built: the body limit
    and validation on every body, authentication and identity outages on every bearer
    route, tenant scope on every tenant route."""
    missing = []
    for path, operations in client.app.openapi()["paths"].items():
        for method, op in operations.items():
            expected = set()
            if "requestBody" in op:
                expected |= {"400", "413", "422"}
            if path.startswith(("/twilio/", "/exotel/")):
                expected |= {"400", "403"}
            if path.startswith("/v1/"):
                expected |= {"401", "403", "422", "503"}
            if path.startswith("/v1/tenants/{tenant_id}"):
                expected |= {"404"}
            if path.startswith("/internal/"):
                expected |= {"401", "422"}
            if path.startswith("/realms/"):
                expected |= {"404"}
            if path.endswith("/openid-connect/token"):
                expected |= {"400", "401", "429"}  # 429: failed sign-ins backed off
            documented = op.get("responses", {})
            missing += [f"{method.upper()} {path}: {c}" for c in expected - documented.keys()]
            for code, response in documented.items():
                if code >= "400" and "application/json" not in response.get("content", {}):
                    missing.append(f"{method.upper()} {path}: {code} has no JSON schema")
    assert missing == []
