"""Who may read the operations surfaces: in production the API's document and /metrics are
not public (metrics to the bearer of the metrics token only); in development they are."""

import pytest
from fastapi.testclient import TestClient

from switchboard.server import create_app
from switchboard.settings import Settings
from tests.unit.test_settings import STRONG


def app_in(tmp_path, environment: str, **more: object) -> TestClient:
    base = STRONG if environment == "production" else {}
    settings = Settings(
        _env_file=None, environment=environment, data_dir=tmp_path / "data", **(base | more)
    )
    return TestClient(create_app(settings, warm=False))


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/metrics"])
def test_production_serves_neither_the_api_document_nor_metrics_to_the_public(tmp_path, path):
    with app_in(tmp_path, "production") as c:
        assert c.get(path).status_code == 404
        assert c.get("/healthz").status_code == 200


def test_production_metrics_go_to_the_bearer_of_the_metrics_token_only(tmp_path):
    token = "m" + STRONG["admin_token"]
    with app_in(tmp_path, "production", metrics_token=token) as c:
        assert c.get("/metrics").status_code == 401
        wrong = c.get("/metrics", headers={"Authorization": f"Bearer {STRONG['admin_token']}"})
        assert wrong.status_code == 401
        r = c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "switchboard_" in r.text


def test_an_operator_may_publish_the_api_document_in_production(tmp_path):
    with app_in(tmp_path, "production", api_docs=True) as c:
        assert c.get("/openapi.json").status_code == 200


def test_development_serves_the_document_and_metrics(tmp_path):
    with app_in(tmp_path, "development") as c:
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/docs").status_code == 200
        assert c.get("/metrics").status_code == 200


def test_only_the_tenants_the_operator_names_get_metric_series_of_their_own():
    from media_plane import metrics

    metrics.label_tenants(["ten_watched"])
    try:
        assert metrics.tenant("ten_watched") == "ten_watched"
        assert metrics.tenant("ten_anyone_else") == "other"
        assert metrics.tenant(None) == "other"
    finally:
        metrics.label_tenants([])
