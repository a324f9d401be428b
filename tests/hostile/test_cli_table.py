"""The hostile-input table: each case is run through the CLI in a child process and must exit 2 with one
``error:`` line naming the file (and JSON path), print no traceback, write no output, leave its inputs
byte-for-byte unchanged, and (bombs) stay within a small peak memory."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from inference.helpers import make_checkpoint
from training.conftest import make_project as make_train_project
from training.conftest import tiny_config
from unetkit.project import write_image

from .builders import BOMB_SIDE, bitmap, bitmap_bomb_data, make_project, png_bomb, polygon, small_bitmap_data
from .runner import run_cli, tree_digest

BOMB_MB = 150  # the CLI with numpy/OpenCV/PIL peaks at ~55 MB; one decoded 30000² bomb would take > 850 MB


@dataclass
class Case:
    name: str
    build: Callable[[Path], list[str]]  # makes the inputs under the given folder, returns the CLI arguments
    expect: tuple[str, ...]  # every one appears in stderr (file name, JSON path, the reason)
    peak_mb: float | None = None


def _validate(objects=None, **kw) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        make_project(tmp / "in", objects, **kw)
        return ["project", "validate", "in"]

    return build


def _render(objects=None, **kw) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        make_project(tmp / "in", objects, **kw)
        return ["project", "render", "in", "out"]

    return build


def _linked_image(command: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        make_project(tmp / "in")
        secret = tmp / "secret.png"
        image = tmp / "in" / "ds" / "img" / "a.png"
        image.rename(secret)
        image.symlink_to(secret)
        graph = tmp / "graph.json"
        graph.write_text(
            json.dumps(
                [
                    {
                        "action": "data",
                        "src": ["in/*"],
                        "dst": "$d",
                        "settings": {"classes_mapping": "default"},
                    },
                    {"action": "save", "src": ["$d"], "dst": "copy", "settings": {}},
                ]
            )
        )
        return {
            "validate": ["project", "validate", "in"],
            "render": ["project", "render", "in", "out"],
            "dtl": ["dtl", "run", "graph.json", "--input", "in", "--out", "out"],
        }[command]

    return build


def _train(out: str, prepare=None) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        make_train_project(tmp / "in", n_train=2, n_val=1, size=16)
        (tmp / "train.json").write_text(json.dumps(tiny_config(epochs=1)))
        if prepare is not None:
            prepare(tmp)
        return ["train", "--project", "in", "--config", "train.json", "--out", out]

    return build


def _import_mismatch(tmp: Path) -> list[str]:
    """Two image/mask pairs, the second mask of the wrong size: refused after the first item is written."""
    for folder in ("ims", "masks"):
        (tmp / folder).mkdir()
    for name, mask_side in (("a.png", 8), ("b.png", 9)):
        write_image(tmp / "ims" / name, np.zeros((8, 8, 3), np.uint8))
        write_image(tmp / "masks" / name, np.zeros((mask_side, mask_side), np.uint8))
    return ["import", "masks", "--images", "ims", "--masks", "masks", "--out", "out"]


def _orphan_annotation(tmp: Path) -> list[str]:
    make_project(tmp / "in")
    (tmp / "in" / "ds" / "ann" / "gone.png.json").write_text(
        '{"size": {"height": 4, "width": 4}, "objects": []}'
    )
    return ["project", "validate", "in"]


def _truncated(ext: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        make_project(
            tmp / "in", name=f"a{ext}", image=np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
        )
        image = tmp / "in" / "ds" / "img" / f"a{ext}"
        image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
        return ["project", "validate", "--deep", "in"]

    return build


def _infer(out: str, prepare=None) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        make_project(tmp / "in")
        make_checkpoint(tmp / "model")
        if prepare is not None:
            prepare(tmp)
        return [
            "infer",
            "--model",
            "model",
            "--project",
            "in",
            "--out",
            out,
            "--device",
            "cpu",
            "--no-progress",
        ]

    return build


def _export_to_folder(tmp: Path) -> list[str]:
    make_checkpoint(tmp / "model")
    (tmp / "run").mkdir()
    return ["export", "onnx", "--model", "model", "-o", "run"]


def _infer_truncated(tmp: Path) -> list[str]:
    _truncated(".jpg")(tmp)
    make_checkpoint(tmp / "model")
    return [
        "infer",
        "--model",
        "model",
        "--project",
        "in",
        "--out",
        "out",
        "--device",
        "cpu",
        "--no-progress",
    ]


def _add_graph_object(tmp: Path) -> None:
    meta = json.loads((tmp / "in" / "meta.json").read_text())
    meta["classes"].append({"title": "pose", "shape": "graph", "color": "#FF00FF", "geometry_config": {}})
    (tmp / "in" / "meta.json").write_text(json.dumps(meta))
    ann_path = sorted((tmp / "in" / "ds0" / "ann").iterdir())[1]
    ann = json.loads(ann_path.read_text())
    ann["objects"].append({"classTitle": "pose", "tags": [], "nodes": {"a": {"loc": [1, 2]}}})
    ann_path.write_text(json.dumps(ann))


def _make_file(tmp: Path) -> None:
    (tmp / "run").write_text("not a folder")


def _make_full(tmp: Path) -> None:
    (tmp / "run").mkdir()
    (tmp / "run" / "notes.txt").write_text("mine")


BOMB = [bitmap([0, 0], bitmap_bomb_data())]
SIDE = f"{BOMB_SIDE}x{BOMB_SIDE}"
ANN = "ann/a.png.json"

CASES = [
    Case("bitmap bomb: validate", _validate(BOMB), (ANN, "$.objects[0].bitmap.data", SIDE, "UNETKIT_MAX_PIXELS"), BOMB_MB),
    Case("bitmap bomb: render", _render(BOMB), (ANN, "$.objects[0].bitmap.data", SIDE), BOMB_MB),
    Case(
        "bitmap larger than its image",
        _validate([bitmap([0, 0], small_bitmap_data(3, 70))]),
        (ANN, "$.objects[0].bitmap.data", "larger than its image"),
    ),
    Case("image bomb: validate", _validate(image=png_bomb()), ("img/a.png", SIDE, "UNETKIT_MAX_PIXELS"), BOMB_MB),
    Case("image bomb: render", _render(image=png_bomb()), ("img/a.png", SIDE), BOMB_MB),
    Case(
        "annotation claiming a larger image: validate",
        _validate(ann_text=json.dumps({"size": {"height": 12000, "width": 12000}, "objects": [bitmap([0, 0], bitmap_bomb_data(12000))]})),
        (ANN, "$.objects[0].bitmap.data", "larger than its image (64x64"),
        BOMB_MB,
    ),
    Case(
        "annotation size bomb: render",
        _render(ann_text='{"size": {"height": 100000, "width": 100000}, "objects": []}'),
        (ANN, "$.size", "UNETKIT_MAX_PIXELS"),
        BOMB_MB,
    ),
    Case(
        "huge integer coordinate",
        _validate([polygon([[1, 1], [10**400, 3], [5, 5]])]),
        (ANN, "$.objects[0].points.exterior[1]", "out of range"),
    ),
    Case("NaN coordinate: render", _render([polygon([[1, 1], [float("nan"), 3], [5, 5]])]), (ANN, "exterior[1]", "finite")),
    Case(
        "Infinity origin",
        _validate([bitmap([float("inf"), 0], small_bitmap_data())]),
        (ANN, "$.objects[0].bitmap.origin", "finite"),
    ),
    Case(
        "1e400 size",
        _render(ann_text='{"size": {"height": 1e400, "width": 4}, "objects": []}'),
        (ANN, "$.size.height"),
    ),
    Case("image linked outside: validate", _linked_image("validate"), ("a.png", "outside the project")),
    Case("image linked outside: render", _linked_image("render"), ("a.png", "outside the project")),
    Case("image linked outside: dtl run", _linked_image("dtl"), ("a.png", "outside the project")),
    Case("annotation without an image", _orphan_annotation, ("ann/gone.png.json", "annotation without an image")),
    Case("truncated JPEG: validate --deep", _truncated(".jpg"), ("img/a.jpg", "truncated")),
    Case("truncated JPEG: infer names it at once", _infer_truncated, ("img/a.jpg", "truncated JPEG")),
    Case("truncated PNG: validate --deep", _truncated(".png"), ("img/a.png", "cannot decode")),
    Case("import: a bad mask after a good one", _import_mismatch, ("masks/b.png", "differs from image b.png")),
    Case("infer --out an existing file", _infer("run", _make_file), ("run", "not a folder")),
    Case("infer --out inside its project", _infer("in/pred"), ("in/pred", "refusing to write into")),
    Case("infer --out a non-empty folder", _infer("run", _make_full), ("run", "not empty")),
    Case("export -o an existing folder", _export_to_folder, ("run", "is a folder")),
    Case("demo --out an existing file", lambda tmp: (_make_file(tmp), ["demo", "--out", "run"])[1], ("run", "not a folder")),
    Case("train: an object that cannot be rasterised", _train("run", _add_graph_object),
         ("ann/img_001.png.json", "$.objects[1]", "cannot be rasterised")),
    Case("train --out an existing file", _train("run", _make_file), ("run", "not a folder")),
    Case("train --out inside its project", _train("in/runs"), ("in/runs", "refusing to write into")),
    Case("train --out a non-empty folder", _train("run", _make_full), ("run", "not empty")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_input_is_one_clear_error(case: Case, tmp_path: Path):
    argv = case.build(tmp_path)
    before = tree_digest(tmp_path)
    result = run_cli(argv, tmp_path)
    assert result.rc == 2, result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors, result.stderr
    for text in case.expect:
        assert any(text in line for line in errors), (text, result.stderr)
    assert tree_digest(tmp_path) == before, "the inputs changed or an output was (partly) written"
    if case.peak_mb is not None:
        assert result.peak_mb < case.peak_mb, f"peak memory {result.peak_mb:.0f} MB"
