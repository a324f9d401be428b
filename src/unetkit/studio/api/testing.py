"""Testing: a model's inference settings, ``infer`` then ``evaluate --json`` as tasks, and the evaluations
(pooled and per-image metrics, FP/FN overlays, re-thresholding with saved probabilities)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from unetkit import atomic
from unetkit.errors import ConfigError
from unetkit.studio import evaluation_views as ev
from unetkit.studio import project_views
from unetkit.studio.api.projects import open_project
from unetkit.studio.api.runs import checkpoint_of, run_folder
from unetkit.studio.context import Studio, get_studio
from unetkit.studio.errors import StudioError
from unetkit.studio.workspace import STATE_DIR

router = APIRouter(tags=["testing"])
CONFIGS_DIR = f"{STATE_DIR}/configs"


class TestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str = Field(description="a run or checkpoint folder (its best checkpoint is used)")
    project: str = Field(description="the project to apply it to (its objects are the ground truth)")
    out: str = Field(description="the new output project (the evaluation gets the same name)")
    config: Any = Field(None, description="inference config (default: the model card's settings)")
    save_probabilities: bool = Field(False, description="keep the probability maps (threshold slider)")


class ThresholdBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(gt=0, le=1, description="foreground where the probability is >= this")


def inference_settings(studio: Studio, run: str):
    """The settings ``infer --model RUN`` uses without --config: the card's, else the defaults (full_image,
    suffix _unet, as for an original Supervisely checkpoint)."""
    from unetkit.inference_config import InferenceConfig
    from unetkit.models.checkpoint_dir import read_card

    card = read_card(checkpoint_of(studio, run))
    return card, card.inference or InferenceConfig()


@router.get("/test/defaults", summary="the inference config infer would use for a run")
def test_defaults(run: str = Query(...), studio: Studio = Depends(get_studio)) -> dict:
    return inference_settings(studio, run)[1].to_json()


@router.post("/test", summary="infer into a new project, then evaluate it (tasks; outputs.evaluation)")
def test(body: TestBody, studio: Studio = Depends(get_studio)) -> dict:
    from unetkit.inference_config import parse_config

    ws = studio.workspace
    run = ws.rel(run_folder(studio, body.run))
    card, settings = inference_settings(studio, body.run)
    project = ws.rel(open_project(studio, body.project).path)
    try:
        config = settings if body.config is None else parse_config(body.config)
        if body.save_probabilities:
            config = config.with_mode(save_probabilities=True)
    except ConfigError as exc:
        raise StudioError(400, "invalid_config", f"config {exc.json_path or '$'}: {exc.message}") from None
    out = ws.rel(ws.new_output(body.out))
    name = ev.evaluation_name(out)
    config_file = f"{CONFIGS_DIR}/test-{name}.json"
    atomic.write_json(ws.root / config_file, config.to_json(), indent=2)
    atomic.make_folder(ws.root / ev.EVALUATIONS_DIR)
    infer = studio.tasks.submit(
        "infer", ["infer", "--model", run, "--project", project, "--config", config_file, "-o", out],
        title=f"Infer {run} on {project}", outputs={"project": out, "run": run},
    )  # fmt: skip
    argv = ["evaluate", "--gt", project, "--pred", out, "--json", f"{ev.EVALUATIONS_DIR}/{name}.json"]
    if card.classes.multilabel:
        argv.append("--multilabel")
    evaluate = studio.tasks.submit("evaluate", argv, title=f"Evaluate {out} against {project}",
                                   outputs={"evaluation": name, "project": out, "gt": project, "run": run,
                                            "infer_task": infer["id"]}, after=infer["id"])  # fmt: skip
    return evaluate


@router.get("/evaluations", summary="every evaluation: [{name, gt, pred, images, dice, created}]")
def evaluations(studio: Studio = Depends(get_studio)) -> list[dict]:
    return ev.listing(studio.workspace)


@router.get("/evaluations/{name}", summary="{pooled, per_image, confusion, thresholds, gt, pred, legend}")
def evaluation(name: str, studio: Studio = Depends(get_studio)) -> dict:
    return ev.view(name, ev.read(studio.workspace, name))


@router.get("/evaluations/{name}/items/{dataset:path}/{item}/errors.png", summary="FP/FN overlay of an item")
def errors_png(
    name: str, dataset: str, item: str, threshold: float | None = Query(None, gt=0, le=1),
    studio: Studio = Depends(get_studio),
) -> Response:  # fmt: skip
    result = ev.read(studio.workspace, name)
    picture = ev.errors_picture(studio.workspace, result, dataset, item, threshold)
    return Response(project_views.png(picture), media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.post("/evaluations/{name}/threshold", summary="pooled and per-image metrics at another threshold")
def threshold(name: str, body: ThresholdBody, studio: Studio = Depends(get_studio)) -> dict:
    return ev.rethreshold(studio.workspace, name, ev.read(studio.workspace, name), body.threshold)
