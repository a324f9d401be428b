"""DTL: graph templates, check + drawing, and ``unetkit dtl run`` as a task."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from unetkit import atomic
from unetkit.errors import GraphError
from unetkit.studio import dtl_views
from unetkit.studio.context import Studio, get_studio
from unetkit.studio.errors import StudioError
from unetkit.studio.workspace import STATE_DIR

router = APIRouter(tags=["dtl"])
GRAPHS_DIR = f"{STATE_DIR}/graphs"


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graph: Any = Field(description="the graph: JSON text or the JSON array itself")


class RunBody(CheckBody):
    out: str = Field(description="the new project folder")
    seed: int | None = Field(None, ge=0, description="makes the run reproducible")
    workers: int | None = Field(
        None, ge=1, le=64, description="worker processes (same output for any number)"
    )


@router.get("/dtl/templates", summary="graph templates: [{name, title, graph}], the tutorial's first")
def templates() -> list[dict]:
    return dtl_views.templates()


@router.post("/dtl/check", summary="validate and draw a graph: {ok, errors: [{path, message}], svg, outputs}")
def check(body: CheckBody, studio: Studio = Depends(get_studio)) -> dict:
    return dtl_views.check(body.graph, studio.workspace)


@router.post("/dtl/run", summary="run a graph into a new project (a task; outputs.project)")
def run(body: RunBody, studio: Studio = Depends(get_studio)) -> dict:
    ws = studio.workspace
    try:
        graph = dtl_views.build(body.graph)
    except GraphError as exc:
        raise StudioError(400, "invalid_graph", _detail(exc)) from None
    found, errors = dtl_views.input_projects(graph, ws)
    if errors:
        raise StudioError(400, "invalid_graph", _detail(errors[0]))
    try:
        dtl_views.output_meta(graph, found, ws)
    except GraphError as exc:
        raise StudioError(400, "invalid_graph", _detail(exc)) from None
    out = ws.rel(ws.new_output(body.out))
    graph_file = f"{GRAPHS_DIR}/{out.replace('/', '__')}.json"
    atomic.write_json(ws.root / graph_file, graph.source, indent=2)
    argv = ["dtl", "run", graph_file, "--input", *found.values(), "-o", out]
    if body.seed is not None:
        argv += ["--seed", str(body.seed)]
    if body.workers is not None:
        argv += ["--workers", str(body.workers)]
    return studio.tasks.submit(
        "dtl", argv, title=f"DTL → {out}", outputs={"project": out, "graph": graph_file}
    )


def _detail(exc: GraphError) -> str:
    where = exc.json_path or "$"
    return f"{where}: {exc}"
