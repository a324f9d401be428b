"""The studio application: the JSON API under /api, offline API docs, the token and body-size guards, the UI."""

from __future__ import annotations

import contextlib
import importlib
import logging

from fastapi import APIRouter, Depends, FastAPI, Request

from unetkit import __version__
from unetkit.serving.middleware import BodyLimitMiddleware
from unetkit.serving.offline_docs import install_offline_docs
from unetkit.studio.auth import TokenMiddleware
from unetkit.studio.context import Studio, get_studio
from unetkit.studio.errors import StudioError, install_error_handlers
from unetkit.studio.tasks import TaskQueue
from unetkit.studio.workspace import Workspace

log = logging.getLogger("unetkit.studio")
API_MODULES = ("tasks", "runs", "projects", "dtl", "training", "testing")  # unetkit.studio.api.<name>


def create_app(
    workspace_root, *, token: str | None = None, host: str = "127.0.0.1", max_upload_mb: float = 20.0,
    ui: bool = True, tasks: TaskQueue | None = None,
) -> FastAPI:  # fmt: skip
    """The studio for the workspace folder ``workspace_root`` (created if missing).

    ``token``: every request must carry it (see :mod:`unetkit.studio.auth`); ``host``: the address the studio
    binds (``serve`` tasks bind it too); ``tasks``: a queue to use instead of the workspace's own (tests)."""
    workspace = Workspace(workspace_root)
    queue = tasks if tasks is not None else TaskQueue(workspace.state_dir / "tasks", cwd=workspace.root)
    studio = Studio(workspace, queue, token=token or None, max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                    host=host)  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        try:
            yield
        finally:
            queue.close()

    app = FastAPI(
        title="unetkit studio",
        version=__version__,
        description="The studio's JSON API: projects, DTL, training, tasks, testing, evaluation and models.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are served from local files (they work offline)
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.studio = studio
    install_error_handlers(app)
    api = APIRouter(prefix="/api")
    api.add_api_route("/workspace", workspace_summary, methods=["GET"], tags=["workspace"],
                      summary="the workspace: its projects, runs and how many tasks run")  # fmt: skip
    for name in API_MODULES:
        api.include_router(importlib.import_module(f"unetkit.studio.api.{name}").router)
    # last: an unknown /api path is a JSON 404, not the page NiceGUI serves for unknown paths
    api.add_api_route("/{path:path}", no_such_endpoint, include_in_schema=False,
                      methods=["GET", "POST", "PUT", "PATCH", "DELETE"])  # fmt: skip
    app.include_router(api)
    install_offline_docs(app)
    if ui:
        _install_ui(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=studio.max_upload_bytes)
    if studio.token:
        app.add_middleware(TokenMiddleware, token=studio.token)  # outermost: nothing runs before it
    return app


def workspace_summary(studio: Studio = Depends(get_studio)) -> dict:
    """``{root, projects, runs, tasks_running}``."""
    from unetkit.studio.api.projects import project_summary
    from unetkit.studio.api.runs import run_summaries

    projects = [project_summary(studio.workspace, n) for n in studio.workspace.projects()]
    return {"root": str(studio.workspace.root), "projects": projects, "runs": run_summaries(studio),
            "tasks_running": studio.tasks.running_count()}  # fmt: skip


def no_such_endpoint(request: Request, path: str) -> None:
    raise StudioError(404, "not_found", f"no API endpoint {request.method} /api/{path}")


def _install_ui(app: FastAPI) -> None:
    from unetkit.studio import ui

    ui.install(app)
