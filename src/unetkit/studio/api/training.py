"""Training: the registered models, a default config, the config check, ``train`` and ``auto`` as tasks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from unetkit import atomic
from unetkit.errors import ConfigError
from unetkit.studio import train_views
from unetkit.studio.api.projects import open_project
from unetkit.studio.context import Studio, get_studio
from unetkit.studio.errors import StudioError
from unetkit.studio.workspace import RUNS_DIR, STATE_DIR

router = APIRouter(tags=["training"])
CONFIGS_DIR = f"{STATE_DIR}/configs"


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: Any = Field(description="the training config (a JSON object)")
    model: str | None = Field(None, description="a registered model overriding config unetkit.model")


class TrainBody(CheckBody):
    project: str = Field(description="the training project")
    run: str = Field(description="run name: the run folder is runs/<run>")


class AutoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str
    run: str = Field(description="run name: the run folder is runs/<run>")
    budget: str | float = Field("60m", description="wall-clock budget: 15m, 1.5h, 900 (seconds)")


def run_name(studio: Studio, run: str) -> str:
    """The new run folder ``runs/<run>`` (``run`` may already start with ``runs/``); 409 when it exists."""
    rel = run if run.startswith(f"{RUNS_DIR}/") else f"{RUNS_DIR}/{run}"
    if not run.strip("/") or rel == f"{RUNS_DIR}/":
        raise StudioError(400, "invalid_input", "run: give a run name")
    ws = studio.workspace
    return ws.rel(ws.new_output(rel))


@router.get("/train/models", summary="registered architectures: [{name, description}]")
def models() -> list[dict]:
    return train_views.models()


@router.get("/train/defaults", summary="a default training config (for a project: its classes and tags)")
def defaults(
    project: str | None = Query(None), model: str | None = Query(None, description="another architecture"),
    studio: Studio = Depends(get_studio),
) -> dict:  # fmt: skip
    return train_views.defaults(open_project(studio, project) if project else None, model)


@router.post("/train/check", summary="check a training config as train does: {ok, errors: [{path, message}]}")
def check(body: CheckBody) -> dict:
    errors = train_views.check(body.config, body.model)
    return {"ok": not errors, "errors": errors}


@router.post("/train", summary="train a model on a project (a task; outputs.run; resume = train --resume)")
def train(body: TrainBody, studio: Studio = Depends(get_studio)) -> dict:
    ws = studio.workspace
    project = ws.rel(open_project(studio, body.project).path)
    try:
        cfg = train_views.validated(body.config, body.model)
    except ConfigError as exc:
        raise StudioError(400, "invalid_config", f"{exc.json_path or '$'}: {exc.message}") from None
    run = run_name(studio, body.run)
    config_file = f"{CONFIGS_DIR}/{run.removeprefix(RUNS_DIR + '/').replace('/', '__')}.json"
    atomic.write_json(ws.root / config_file, body.config, indent=2)
    argv = ["train", "--project", project, "--config", config_file, "-o", run]
    if body.model:
        argv += ["--model", body.model]
    title = f"Train {cfg.unetkit.model} on {project}"
    return studio.tasks.submit("train", argv, title=title, outputs={"run": run, "project": project,
                               "config": config_file}, resume_argv=[*argv, "--resume"])  # fmt: skip


@router.post(
    "/auto", summary="plan, train, choose and report within a budget (a task; resume = auto --resume)"
)
def auto(body: AutoBody, studio: Studio = Depends(get_studio)) -> dict:
    from unetkit.auto.planner import parse_budget

    project = studio.workspace.rel(open_project(studio, body.project).path)
    try:
        parse_budget(body.budget)
    except ConfigError as exc:
        raise StudioError(400, "invalid_input", f"budget: {exc.message}") from None
    run = run_name(studio, body.run)
    argv = ["auto", project, "-o", run, "--budget", str(body.budget)]
    return studio.tasks.submit("auto", argv, title=f"Auto on {project} ({body.budget})",
                               outputs={"run": run, "project": project}, resume_argv=[*argv, "--resume"])  # fmt: skip
