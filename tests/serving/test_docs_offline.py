"""OpenAPI docs at /docs are served from local Swagger UI files (no CDN), so they work offline."""

from __future__ import annotations

from fastapi.testclient import TestClient

from unetkit.serving.app import create_app


def test_docs_page_and_assets_are_local(tiny_checkpoint):
    with TestClient(create_app(tiny_checkpoint)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        assert "/docs-static/swagger-ui-bundle.js" in page.text
        js = client.get("/docs-static/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert client.get("/docs-static/swagger-ui.css").status_code == 200
        assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
