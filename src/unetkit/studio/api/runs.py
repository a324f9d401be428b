"""Runs and models: summaries, model cards, metrics, validation previews, auto reports, ONNX export, serving.

``{run}`` is the workspace-relative run folder and may contain ``/`` (``runs/vessels_unet``).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from unetkit.ports import free_port
from unetkit.studio import run_info
from unetkit.studio.context import Studio, get_studio
from unetkit.studio.errors import StudioError
from unetkit.studio.workspace import is_run_folder

router = APIRouter(tags=["runs"])


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opset: int | None = Field(None, ge=7, le=30, description="ONNX opset (default: export's own)")


class ServeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int | None = Field(None, ge=1, le=65535, description="port (default: a free one)")


def run_folder(studio: Studio, run: str) -> Path:
    """The run folder named ``run`` (404 ``not_a_run`` when the folder holds no run or checkpoint)."""
    folder = studio.workspace.resolve(run, kind="dir")
    if not is_run_folder(folder):
        raise StudioError(404, "not_a_run", f"{run!r} is not a training run or checkpoint folder")
    return folder


def summarize(studio: Studio, rel: str) -> dict:
    return run_info.summary(studio.workspace.resolve(rel), rel, studio.workspace.rel)


def run_summaries(studio: Studio) -> list[dict]:
    """A summary of every run of the workspace (also used by GET /workspace)."""
    return [summarize(studio, rel) for rel in studio.workspace.runs()]


def checkpoint_of(studio: Studio, run: str) -> Path:
    folder = run_folder(studio, run)
    checkpoint = run_info.best_checkpoint(folder)
    if checkpoint is None:
        raise StudioError(409, "no_checkpoint", f"{run!r} has no checkpoint yet")
    return checkpoint


@router.get("/runs", summary="every run and model of the workspace")
def list_runs(studio: Studio = Depends(get_studio)) -> list[dict]:
    return run_summaries(studio)


@router.get("/runs/{run:path}/metrics", summary="training and validation curves (≤ 500 points each)")
def run_metrics(run: str, fold: int | None = Query(None, ge=0), studio: Studio = Depends(get_studio)) -> dict:
    return run_info.metrics(run_info.training_folder(run_folder(studio, run), fold))


@router.get("/runs/{run:path}/previews/{iteration}.png", summary="a validation preview picture")
def run_preview(
    run: str, iteration: int, fold: int | None = Query(None, ge=0), studio: Studio = Depends(get_studio)
) -> FileResponse:
    folder = run_info.training_folder(run_folder(studio, run), fold)
    path = folder / run_info.PREVIEWS_DIR / f"{iteration:08d}.png"
    if iteration < 0 or not path.is_file():
        raise StudioError(404, "not_found", f"no preview at iteration {iteration}")
    return FileResponse(path, media_type="image/png")


@router.get("/runs/{run:path}/previews", summary="the validation previews: [{iteration, url}]")
def run_previews(
    run: str, fold: int | None = Query(None, ge=0), studio: Studio = Depends(get_studio)
) -> list:
    folder = run_info.training_folder(run_folder(studio, run), fold)
    query = "" if fold is None else f"?fold={fold}"
    base = f"/api/runs/{quote(run.strip('/'))}/previews"
    return [{"iteration": i, "url": f"{base}/{i}.png{query}"} for i in run_info.previews(folder)]


@router.get("/runs/{run:path}/report", summary="the HTML report of an auto run")
def run_report(run: str, studio: Studio = Depends(get_studio)) -> FileResponse:
    path = run_folder(studio, run) / run_info.REPORT_FILE
    if not path.is_file():
        raise StudioError(404, "not_found", f"{run!r} has no report (only finished auto runs have one)")
    return FileResponse(path, media_type="text/html")


@router.get("/runs/{run:path}/charts.png", summary="the training charts picture")
def run_charts(run: str, studio: Studio = Depends(get_studio)) -> FileResponse:
    path = run_info.training_folder(run_folder(studio, run)) / run_info.CHARTS_FILE
    if not path.is_file():
        raise StudioError(404, "not_found", f"{run!r} has no charts yet")
    return FileResponse(path, media_type="image/png")


@router.post("/runs/{run:path}/export", summary="export the run's best checkpoint to RUN/model.onnx (a task)")
def export_run(run: str, body: ExportBody | None = None, studio: Studio = Depends(get_studio)) -> dict:
    checkpoint_of(studio, run)
    rel = studio.workspace.rel(run_folder(studio, run))
    out = f"{rel}/{run_info.ONNX_FILE}"
    argv = ["export", "onnx", "--model", rel, "-o", out]
    if body is not None and body.opset is not None:
        argv += ["--opset", str(body.opset)]
    outputs = {"run": rel, "onnx": out}
    return studio.tasks.submit("export", argv, title=f"Export {rel} to ONNX", outputs=outputs, heavy=False)


@router.post("/runs/{run:path}/serve", summary="serve the run's best checkpoint over HTTP (a task)")
def serve_run(
    run: str, request: Request, body: ServeBody | None = None, studio: Studio = Depends(get_studio)
) -> dict:
    checkpoint_of(studio, run)
    rel = studio.workspace.rel(run_folder(studio, run))
    port = body.port if body is not None and body.port is not None else free_port(studio.host)
    seen_as = request.url.hostname or studio.host
    shown = studio.host if studio.host not in ("0.0.0.0", "::") else seen_as
    host = f"[{shown}]" if ":" in shown else shown
    argv = ["serve", "--model", rel, "--host", studio.host, "--port", str(port)]
    outputs = {"run": rel, "url": f"http://{host}:{port}/"}
    return studio.tasks.submit(
        "serve", argv, title=f"Serve {rel} on port {port}", outputs=outputs, heavy=False
    )


@router.get("/runs/{run:path}", summary="a run: summary, model card, inference settings, files")
def get_run(run: str, studio: Studio = Depends(get_studio)) -> dict:
    folder = run_folder(studio, run)
    rel = studio.workspace.rel(folder)
    out = {"summary": summarize(studio, rel), "card": None, "inference": None}
    out["files"] = run_info.files(folder, studio.workspace.rel)
    card = run_info.read_card(folder) if out["summary"]["error"] is None else None
    if card is not None:
        out["card"] = json.loads((card.path / run_info.CONFIG_FILE).read_text(encoding="utf-8"))
        out["inference"] = None if card.inference is None else card.inference.to_json()
    return out
