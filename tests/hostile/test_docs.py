"""/docs and /redoc are served from local files in versions that render FastAPI's OpenAPI 3.1."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from inference.helpers import make_checkpoint
from unetkit.serving.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with TestClient(create_app(make_checkpoint(tmp_path_factory.mktemp("ckpt") / "m"), device="cpu")) as c:
        yield c


def test_docs_pages_load_only_local_files(client):
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200
        urls = re.findall(r'(?:src|href)=["\']([^"\']+)', page.text) + re.findall(
            r"url: ?'([^']+)'", page.text
        )
        assert urls and all(u.startswith("/") for u in urls), urls  # nothing from a CDN or font service


def test_swagger_ui_5_and_redoc_2_are_served(client):
    js = client.get("/docs-static/swagger-ui-bundle.js").text
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.\d+"', js)
    assert version and int(version.group(1)) >= 5  # Swagger UI renders OpenAPI 3.1 from 5.0 on
    redoc = client.get("/docs-static/redoc.standalone.js")
    assert redoc.status_code == 200 and len(redoc.content) > 500_000
    assert client.get("/docs-static/swagger-ui.css").status_code == 200
    assert client.get("/docs-static/favicon.png").status_code == 200


def test_both_pages_list_the_operations_in_a_browser(tmp_path):
    """Headless Chromium (Debian's, see scripts/install_browser.sh) with the network cut off but localhost."""
    from browser import ARGS, CHROMIUM, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    from unetkit.serving.launch import serve_process

    ckpt = make_checkpoint(tmp_path / "m")
    flags = ("--device", "cpu", "--threads", "1", "--log-level", "warning")
    with serve_process(ckpt, *flags, env={"OMP_NUM_THREADS": "1"}) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context().new_page()
            outside = []
            page.route(
                re.compile(r"^(?!http://127\.0\.0\.1)"),
                lambda route: (outside.append(route.request.url), route.abort()),
            )
            page.goto(f"{url}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert {"/v1/predict", "/model/inference", "/healthz"} <= {p.strip() for p in paths}, paths
            assert "Unable to render" not in page.inner_text("body")
            page.goto(f"{url}/redoc")
            page.wait_for_selector("h2", timeout=30_000)
            text = page.inner_text("body")
            assert "/v1/predict" in text and "/model/inference" in text, text[:500]
            # everything the pages need is local; only ReDoc's "powered by" logo image points outside
            assert all(u.endswith("/redoc/logo-mini.svg") for u in outside), outside
        finally:
            browser.close()
