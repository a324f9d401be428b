"""Projects: summaries, items, pictures, class layers, statistics, validation; import (a task) and uploads.

``{project}`` is the workspace-relative project folder and may contain ``/``; so may ``{dataset}`` (nested
datasets ``Parent/Child``); ``{item}`` is the image file name.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from unetkit import atomic
from unetkit.errors import UnetkitError
from unetkit.project.mask_options import parse_classes, parse_value_map, parse_values
from unetkit.studio import project_views as views
from unetkit.studio.context import Studio, get_studio
from unetkit.studio.errors import StudioError
from unetkit.studio.workspace import Workspace

router = APIRouter(tags=["projects"])
NO_STORE = {"Cache-Control": "no-cache"}


class ImportBody(BaseModel):
    """Every option of ``unetkit import masks`` under its long name (folders workspace-relative)."""

    model_config = ConfigDict(extra="forbid")
    out: str = Field(description="new project folder")
    images: str | None = Field(None, description="image folder (not with split_csv)")
    masks: str | None = Field(None, description="mask folder (may be the image folder; not with split_csv)")
    split_csv: str | None = Field(None, description="CSV of image,mask,split columns instead of the folders")
    class_name: str | None = Field(None, min_length=1, description="class of binary masks (default vessel)")
    mask_suffix: str | None = None
    match: str | None = Field(None, description="regex whose first group pairs images, masks and FOV masks")
    fov: str | None = Field(None, description="field-of-view mask folder: outside becomes neutral")
    fov_suffix: str | None = None
    neutral: str | None = Field(None, min_length=1)
    value_map: str | None = Field(None, description="1=road,2=car (0 = bg)")
    classes: str | None = Field(None, description="class-index masks: value i is the i-th name")
    ignore: str | None = Field(None, description="mask values that become the neutral class, e.g. 255")
    threshold: int | None = Field(None, ge=1, le=255)
    instances: bool = False
    tag: str | None = Field(None, min_length=1)
    split: float | None = Field(None, gt=0, lt=1, description="ratio of images tagged train, the rest val")
    seed: int | None = Field(None, ge=0)
    dataset: str | None = Field(None, min_length=1)


FOLDERS = {"images": "--images", "masks": "--masks", "fov": "--fov"}
VALUES = {"class_name": "--class", "mask_suffix": "--mask-suffix", "match": "--match", "fov_suffix": "--fov-suffix",
          "neutral": "--neutral", "value_map": "--value-map", "classes": "--classes", "ignore": "--ignore",
          "threshold": "--threshold", "tag": "--tag", "split": "--split", "seed": "--seed",
          "dataset": "--dataset"}  # fmt: skip


def open_project(studio: Studio, name: str):
    return views.read_project(studio.workspace.resolve(name, kind="dir"), name)


def project_summary(workspace: Workspace, name: str) -> dict:
    """A project's summary; a broken project gets zeros and ``error`` (listings never fail on one project)."""
    try:
        return views.summary(views.read_project(workspace.resolve(name, kind="dir"), name), name)
    except (UnetkitError, StudioError, OSError) as exc:
        detail = exc.detail if isinstance(exc, StudioError) else str(exc)
        return {"name": name, "datasets": 0, "images": 0, "objects": 0, "classes": [], "error": detail}


@router.get("/projects", summary="every project of the workspace: [ProjectSummary]")
def list_projects(studio: Studio = Depends(get_studio)) -> list[dict]:
    return [project_summary(studio.workspace, name) for name in studio.workspace.projects()]


@router.post("/projects/import", summary="import image + mask folders as a new project (a task)")
def import_masks(body: ImportBody, studio: Studio = Depends(get_studio)) -> dict:
    ws = studio.workspace
    if body.classes and body.value_map:
        raise StudioError(400, "invalid_input", "classes, value_map: give one of them, not both")
    if body.split_csv is None and (body.images is None or body.masks is None):
        raise StudioError(400, "invalid_input", "images, masks: give both folders (or split_csv)")
    if body.split_csv is not None and (body.images is not None or body.masks is not None):
        raise StudioError(
            400, "invalid_input", "split_csv names the images and masks itself: no images/masks"
        )
    for key, parse in (("value_map", parse_value_map), ("classes", parse_classes)):
        if getattr(body, key):
            _checked(key, parse, getattr(body, key))
    if body.ignore:
        _checked("ignore", parse_values, body.ignore, "--ignore")
    out = ws.rel(ws.new_output(body.out))
    argv = ["import", "masks", "-o", out]
    for key, flag in FOLDERS.items():
        if getattr(body, key) is not None:
            argv += [flag, ws.rel(ws.resolve(getattr(body, key), kind="dir"))]
    if body.split_csv is not None:
        argv += ["--split-csv", ws.rel(ws.resolve(body.split_csv, kind="file"))]
    for key, flag in VALUES.items():
        if getattr(body, key) is not None:
            argv += [flag, str(getattr(body, key))]
    if body.instances:
        argv.append("--instances")
    return studio.tasks.submit("import", argv, title=f"Import masks as {out}", outputs={"project": out})


def _checked(key: str, parse, *args):
    try:
        return parse(*args)
    except UnetkitError as exc:
        raise StudioError(400, "invalid_input", f"{key}: {exc}") from None


@router.post("/upload", summary="save files into a workspace folder: {saved: [names]}")
async def upload(
    files: list[UploadFile] = File(...), folder: str = Form(...), studio: Studio = Depends(get_studio)
) -> dict:
    ws = studio.workspace
    target = ws.resolve(folder, must_exist=False)
    if target == ws.root or target.is_relative_to(ws.state_dir) or target.is_file():
        raise StudioError(403, "outside_workspace", f"folder {folder!r}: give a sub-folder of the workspace")
    names = [_upload_name(f.filename) for f in files]
    if len(set(names)) != len(names):
        raise StudioError(400, "invalid_input", "files: the same file name is given twice")
    for name in names:
        if (target / name).exists():
            raise StudioError(409, "exists", f"{ws.rel(target)}/{name} already exists")
    contents = []
    for f, name in zip(files, names):
        data = await f.read(studio.max_upload_bytes + 1)
        if len(data) > studio.max_upload_bytes:
            raise StudioError(
                413, "request_too_large", f"{name}: larger than {studio.max_upload_bytes} bytes"
            )
        contents.append(data)
    atomic.make_folder(target)
    saved = []
    for name, data in zip(names, contents):
        atomic.write_bytes(target / name, data)
        saved.append(ws.rel(target / name))
    return {"saved": saved}


def _upload_name(name: str | None) -> str:
    if (
        not name
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name.startswith(".")
        or name in ("..", ".")
    ):
        raise StudioError(
            400, "invalid_name", f"file name {name!r}: a plain file name, without / or a leading ."
        )
    return name


@router.get("/projects/{project:path}/items/{dataset:path}/{item}/image.png", summary="an item's picture")
def item_image(
    project: str, dataset: str, item: str, channels: str | None = Query(None, description="e.g. 3,2,1"),
    studio: Studio = Depends(get_studio),
) -> Response:  # fmt: skip
    p = open_project(studio, project)
    image = views.picture(views.find_item(p, dataset, item), views.parse_channels(channels))
    return Response(views.png(image), media_type="image/png", headers=NO_STORE)


@router.get(
    "/projects/{project:path}/items/{dataset:path}/{item}/layers/{title}.png", summary="a class layer"
)
def item_layer(
    project: str, dataset: str, item: str, title: str, studio: Studio = Depends(get_studio)
) -> Response:
    p = open_project(studio, project)
    return Response(views.png(views.layer(p, views.find_item(p, dataset, item), title)), media_type="image/png",
                    headers=NO_STORE)  # fmt: skip


@router.get("/projects/{project:path}/items", summary="a page of items: {total, items}")
def list_items(
    project: str, dataset: str | None = None, offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=1000),
    studio: Studio = Depends(get_studio),
) -> dict:  # fmt: skip
    p = open_project(studio, project)
    rows = views.scan(p)["items"]
    if dataset:
        if p.get_dataset(dataset) is None:
            raise StudioError(404, "not_found", f"no dataset {dataset!r} in project {project!r}")
        rows = [r for r in rows if r["dataset"] == dataset]
    return {"total": len(rows), "items": rows[offset : offset + limit]}


@router.get("/projects/{project:path}/validate", summary="every problem `unetkit project validate` finds")
def validate(project: str, studio: Studio = Depends(get_studio)) -> dict:
    path = studio.workspace.resolve(project, kind="dir")
    views.read_project(path, project)
    return views.problems(path, studio.workspace.rel)


@router.get("/projects/{project:path}", summary="a project: summary, datasets, class statistics")
def get_project(project: str, studio: Studio = Depends(get_studio)) -> dict:
    p = open_project(studio, project)
    return {"summary": views.summary(p, project), "datasets": views.scan(p)["datasets"],
            "class_stats": views.class_stats(p)}  # fmt: skip
