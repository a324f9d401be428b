"""``/docs`` (Swagger UI) and ``/redoc`` served from fastapi-offline's files: API docs that work offline. Used by
the model service and the studio."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_STATIC_DIR = Path(str(resources.files("fastapi_offline") / "static"))
DOCS_STATIC = "/docs-static"


def install_offline_docs(app: FastAPI) -> None:
    """Mount the Swagger UI and ReDoc files at ``/docs-static`` and serve ``/docs`` and ``/redoc`` for ``app``'s
    OpenAPI schema (create the app with ``docs_url=None, redoc_url=None``)."""
    app.mount(DOCS_STATIC, StaticFiles(directory=DOCS_STATIC_DIR), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} — API docs",
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} — API reference",
            redoc_js_url=f"{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )
