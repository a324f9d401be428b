"""Original REST protocol: POST /model/inference and /model/get_out_meta, every inference mode.

Original behaviour: docs/original-behaviour.md, "Deploy protocol".
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from unetkit.inference.modes import build_runner
from unetkit.project import Annotation, Bitmap, Label, ObjClass, ProjectMeta, Rectangle

from .helpers import png_bytes, sample_image

IMG = sample_image(21)
META = ProjectMeta([ObjClass("lemon", "rectangle", "#00FF00"), ObjClass("kiwi", "bitmap", "#0000FF")])
MASK = np.zeros(IMG.shape[:2], dtype=bool)
MASK[5:20, 30:50] = True
ANN = Annotation(
    IMG.shape[0],
    IMG.shape[1],
    [Label("lemon", Rectangle(4, 2, 40, 30)), Label("kiwi", Bitmap.from_full_mask(MASK))],
)


def expected(predictor, mode: dict | None, ann=None, meta=None) -> dict:
    """What the original does: the mode dict with deploy defaults, applied by a direct predictor call."""
    from unetkit.serving.engine import ServingEngine

    config = ServingEngine(predictor)._config(mode)
    return build_runner(config, meta, predictor).apply(IMG, ann).to_json()


def post(client, *, as_files: bool, **parts):
    files = {"image": ("img.png", png_bytes(IMG), "image/png")}
    data = {}
    for name, value in parts.items():
        text = json.dumps(value)
        if as_files:
            files[name] = (f"{name}.json", text.encode(), "application/json")
        else:
            data[name] = text
    return client.post("/model/inference", files=files, data=data)


def test_default_mode_is_full_image_with_model_suffix(client, predictor):
    r = post(client, as_files=True)
    assert r.status_code == 200
    ann = r.json()
    assert "success" not in ann
    titles = [o["classTitle"] for o in ann["objects"]]
    assert titles and all(t.endswith("_model") for t in titles)
    assert "bg_model" in titles and "disc_model" in titles
    assert ann == expected(predictor, None)


@pytest.mark.parametrize("as_files", [True, False], ids=["file-parts", "form-fields"])
@pytest.mark.parametrize(
    "mode",
    [
        {"name": "full_image", "model_classes": {"save_classes": ["disc"], "add_suffix": "_unet"}},
        {
            "name": "roi",
            "bounds": {"left": "10px", "top": "10%", "right": "5px", "bottom": "0px"},
            "save": True,
        },
        {"name": "bboxes", "from_classes": ["lemon"], "padding": {"left": "10%", "top": "2px"}, "save": True},
        {"name": "sliding_window", "window": {"width": 32, "height": 24}, "min_overlap": {"x": 8, "y": 4}},
        {"name": "sliding_window", "window": {"width": 40, "height": 40}, "save": True, "blend": "gaussian"},
    ],
    ids=["full_image", "roi", "bboxes", "sliding_window", "sliding_window_gauss"],
)
def test_every_mode_with_annotation_and_meta(client, predictor, mode, as_files):
    r = post(client, as_files=as_files, annotation=ANN.to_json(), meta=META.to_json(), mode=mode)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got == expected(predictor, mode, ANN, META)
    titles = [o["classTitle"] for o in got["objects"]]
    assert "lemon" in titles and "kiwi" in titles  # existing objects are kept


def test_bboxes_output_order(client):
    mode = {"name": "bboxes", "from_classes": ["lemon"], "save": True}
    got = post(client, as_files=True, annotation=ANN.to_json(), meta=META.to_json(), mode=mode).json()
    titles = [o["classTitle"] for o in got["objects"]]
    # model labels, then the box rectangle, then the source object; other classes unchanged
    assert titles[-3:] == ["lemon_input_bbox", "lemon", "kiwi"]


def test_save_probabilities(client, predictor):
    mode = {"name": "full_image", "save_probabilities": True}
    got = post(client, as_files=False, mode=mode).json()
    assert got == expected(predictor, mode)
    assert got["customBigData"]["probabilityLabels"]


def test_get_out_meta(client):
    default = client.post("/model/get_out_meta").json()
    assert [c["title"] for c in default["classes"]] == ["bg_model", "disc_model", "bar_model"]
    r = client.post(
        "/model/get_out_meta",
        data={"meta": json.dumps(META.to_json()), "mode": json.dumps({"name": "roi", "save": True})},
    )
    assert r.status_code == 200
    titles = [c["title"] for c in r.json()["classes"]]
    assert titles == ["lemon", "kiwi", "bg", "disc", "bar", "inference_roi"]  # roi: no default suffix
    # file parts are accepted too
    r = client.post(
        "/model/get_out_meta", files={"mode": ("m.json", b'{"name": "sliding_window"}', "text/plain")}
    )
    assert [c["title"] for c in r.json()["classes"]] == ["bg", "disc", "bar"]


def test_out_meta_matches_inference_output(client):
    mode = {"name": "sliding_window", "window": {"width": 32, "height": 32}, "save": True}
    meta = client.post(
        "/model/get_out_meta", data={"meta": json.dumps(META.to_json()), "mode": json.dumps(mode)}
    ).json()
    ann = post(client, as_files=True, annotation=ANN.to_json(), meta=META.to_json(), mode=mode).json()
    known = {c["title"] for c in meta["classes"]}
    assert {o["classTitle"] for o in ann["objects"]} <= known
    Annotation.from_json(ann, ProjectMeta.from_json(meta))  # the output reads back against the out meta
