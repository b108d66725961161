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
