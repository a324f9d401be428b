"""The training and testing APIs: models, defaults, the config check, train/auto tasks, test (infer + evaluate),
evaluations (pooled, per image, confusion matrix), FP/FN overlays and re-thresholding."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from studio.conftest import PROJECT, RUN, VESSELS, RecordingQueue, error_of, task_ended
from training.conftest import tiny_config
from unetkit.cli.main import main


def test_models_defaults_and_check(vessels_workspace, open_client):
    client = open_client(vessels_workspace)
    models = client.get("/api/train/models").json()
    names = [m["name"] for m in models]
    assert names[0] == "unet" and {"unet_v2", "unet"} <= set(names) and all(m["description"] for m in models)
    defaults = client.get("/api/train/defaults", params={"project": VESSELS}).json()
    assert defaults["special_classes"] == {"neutral": "neutral", "background": "bg"}
    assert defaults["unetkit"]["model"] == "unet"
    assert client.post("/api/train/check", json={"config": defaults}).json() == {"ok": True, "errors": []}
    other = client.get("/api/train/defaults", params={"model": "unet_v2"}).json()
    assert other["unetkit"] == {"model": "unet_v2", "model_options": {}, "seed": 0}
    cases = [({**defaults, "lr": 0}, "$.lr"), ({**defaults, "epochs": "many"}, "$.epochs"),
             ({**defaults, "colour": 1}, "$.colour"), ({**defaults, "input_size": {"width": 40, "height": 32}},
             "$.input_size.width"), ({**defaults, "unetkit": {"model": "nope"}}, "$.unetkit.model"),
             ({**defaults, "unetkit": {"model": "unet", "model_options": {"wings": 2}}}, "$.unetkit.model_options"),
             ("not an object", "$")]  # fmt: skip
    for config, path in cases:
        result = client.post("/api/train/check", json={"config": config}).json()
        assert result["ok"] is False and result["errors"][0]["path"] == path, (config, result)
    result = client.post("/api/train/check", json={"config": defaults, "model": "nope"}).json()
    assert result["errors"][0]["path"] == "$.unetkit.model"
    assert error_of(client.get("/api/train/defaults", params={"project": "nope"}), 404) == "not_found"


def test_train_and_auto_submit_the_cli(workspace, open_client):
    queue = RecordingQueue()
    client = open_client(workspace, tasks=queue)
    config = tiny_config()
    task = client.post(
        "/api/train", json={"project": PROJECT, "run": "r1", "config": config, "model": "unet"}
    ).json()
    cfg_file = ".studio/configs/r1.json"
    argv = ["train", "--project", PROJECT, "--config", cfg_file, "-o", "runs/r1", "--model", "unet"]
    assert task["kind"] == "train" and task["argv"] == argv and task["resume_argv"] == [*argv, "--resume"]
    assert task["outputs"] == {"run": "runs/r1", "project": PROJECT, "config": cfg_file}
    assert json.loads((workspace / cfg_file).read_text()) == config
    response = client.post(
        "/api/train", json={"project": PROJECT, "run": "r2", "config": {**config, "lr": -1}}
    )
    assert error_of(response, 400) == "invalid_config" and "$.lr" in response.json()["detail"]
    (workspace / "runs" / "taken").mkdir(parents=True)
    assert (
        error_of(client.post("/api/train", json={"project": PROJECT, "run": "taken", "config": config}), 409)
        == "exists"
    )
    assert (
        error_of(client.post("/api/train", json={"project": "nope", "run": "r3", "config": config}), 404)
        == "not_found"
    )
    task = client.post("/api/auto", json={"project": PROJECT, "run": "a1", "budget": "10m"}).json()
    assert task["kind"] == "auto" and task["argv"] == ["auto", PROJECT, "-o", "runs/a1", "--budget", "10m"]
    assert task["resume_argv"] == [*task["argv"], "--resume"] and task["outputs"]["run"] == "runs/a1"
    assert (
        error_of(client.post("/api/auto", json={"project": PROJECT, "run": "a2", "budget": "soon"}), 400)
        == "invalid_input"
    )
    assert len(queue.submitted) == 2


def test_test_defaults_are_the_cards_settings(trained_workspace, open_client):
    from unetkit.models.checkpoint_dir import read_card

    client = open_client(trained_workspace)
    card = read_card(trained_workspace / RUN)
    assert client.get("/api/test/defaults", params={"run": RUN}).json() == card.inference.to_json()
    assert error_of(client.get("/api/test/defaults", params={"run": PROJECT}), 404) == "not_a_run"


def test_test_defaults_of_an_original_checkpoint(tmp_path, open_client):
    """An original Supervisely checkpoint has no inference settings: infer's own defaults (full_image, _unet)."""
    from unetkit.inference_config import InferenceConfig

    card = {
        "settings": {"input_size": {"width": 64, "height": 64}},
        "out_classes": [{"title": "bg", "color": "#000000", "shape": "bitmap"},
                        {"title": "lemon", "color": "#FFFF00", "shape": "bitmap"}],
        "class_title_to_idx": {"bg": 0, "lemon": 1},
    }  # fmt: skip
    folder = tmp_path / "ws" / "models" / "orig"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(card))
    (folder / "model.pt").write_bytes(b"")
    defaults = open_client(tmp_path / "ws").get("/api/test/defaults", params={"run": "models/orig"}).json()
    assert (
        defaults == InferenceConfig().to_json() and defaults["mode"]["model_classes"]["add_suffix"] == "_unet"
    )


def test_test_submits_infer_then_evaluate(trained_workspace, open_client):
    queue = RecordingQueue()
    client = open_client(trained_workspace, tasks=queue)
    task = client.post(
        "/api/test", json={"run": RUN, "project": PROJECT, "out": "inf", "save_probabilities": True}
    )
    infer, evaluate = queue.submitted
    assert task.json()["id"] == evaluate["id"]
    cfg_file = ".studio/configs/test-inf.json"
    assert infer["argv"] == ["infer", "--model", RUN, "--project", PROJECT, "--config", cfg_file, "-o", "inf"]
    assert json.loads((trained_workspace / cfg_file).read_text())["mode"]["save_probabilities"] is True
    assert evaluate["argv"] == [
        "evaluate",
        "--gt",
        PROJECT,
        "--pred",
        "inf",
        "--json",
        ".studio/evaluations/inf.json",
    ]
    assert evaluate["outputs"] == {"evaluation": "inf", "project": "inf", "gt": PROJECT, "run": RUN,
                                   "infer_task": infer["id"]}  # fmt: skip
    assert (
        evaluate["after"] == infer["id"]
    )  # the queue starts it after the inference, or stops it (test_tasks)
    bad = {"run": RUN, "project": PROJECT, "out": "inf2", "config": {"mode": {"name": "sliding_windo"}}}
    response = client.post("/api/test", json=bad)
    assert error_of(response, 400) == "invalid_config" and "$.mode.name" in response.json()["detail"]
    assert (
        error_of(client.post("/api/test", json={"run": RUN, "project": PROJECT, "out": PROJECT}), 409)
        == "exists"
    )


def test_train_then_test_then_evaluation(workspace, open_client):
    """The tutorial's loop on a tiny project: train (seconds), test with probabilities, the evaluation page's
    data, re-thresholding and the FP/FN overlay."""
    client = open_client(workspace)
    task = client.post("/api/train", json={"project": PROJECT, "run": "tiny", "config": tiny_config()}).json()
    task = task_ended(client, task["id"], 300)
    assert task["state"] == "done", task.get("log")
    body = {"run": "runs/tiny", "project": PROJECT, "out": "inf_01", "save_probabilities": True}
    task = task_ended(client, client.post("/api/test", json=body).json()["id"], 300)
    assert task["state"] == "done", task.get("log")
    assert client.get(f"/api/tasks/{task['outputs']['infer_task']}").json()["state"] == "done"
    [listed] = client.get("/api/evaluations").json()
    assert listed["name"] == "inf_01" and listed["gt"] == PROJECT and listed["pred"] == "inf_01"
    shown = client.get("/api/evaluations/inf_01").json()
    assert shown["thresholds"] is True and shown["confusion"] is None and shown["images"] == 8
    assert {"dice", "iou", "precision", "recall", "pixel_accuracy", "per_class"} <= set(shown["pooled"])
    rows = shown["per_image"]
    assert len(rows) == 8 and set(rows[0]) == {"dataset", "item", "dice", "iou"}
    again = client.post("/api/evaluations/inf_01/threshold", json={"threshold": 0.05}).json()
    assert again["threshold"] == 0.05 and len(again["per_image"]) == 8
    assert again["pooled"]["recall"] >= shown["pooled"]["recall"]
    row = rows[0]
    url = f"/api/evaluations/inf_01/items/{row['dataset']}/{row['item']}/errors.png"
    overlay = np.asarray(Image.open(io.BytesIO(client.get(url).content)))
    assert overlay.shape == (32, 32, 3)
    assert (
        error_of(client.post("/api/evaluations/inf_01/threshold", json={"threshold": 2}), 400)
        == "invalid_input"
    )
    assert error_of(client.get("/api/evaluations/nope"), 404) == "not_found"
    assert error_of(client.get("/api/evaluations/inf_01/items/ds/nope.png/errors.png"), 404) == "not_found"


def test_a_multiclass_evaluation_has_a_confusion_matrix(lemons_workspace, open_client, monkeypatch):
    monkeypatch.chdir(lemons_workspace)
    assert (
        main(["evaluate", "--gt", "lemons", "--pred", "lemons", "--json", ".studio/evaluations/self.json"])
        == 0
    )
    client = open_client(lemons_workspace)
    shown = client.get("/api/evaluations/self").json()
    assert shown["gt"] == "lemons" and shown["thresholds"] is False
    assert shown["confusion"]["classes"][0] == "bg" and set(shown["confusion"]["classes"][1:]) == {
        "kiwi",
        "lemon",
    }
    assert shown["pooled"]["dice"] == pytest.approx(1.0)
    assert len(shown["per_image"]) == 6 and {"dice_kiwi", "dice_lemon", "iou_kiwi"} <= set(
        shown["per_image"][0]
    )
    row = shown["per_image"][0]
    overlay = client.get(f"/api/evaluations/self/items/{row['dataset']}/{row['item']}/errors.png")
    picture = np.asarray(Image.open(io.BytesIO(overlay.content)))
    assert (picture == 255).all(axis=2).any() and not (picture == [0xFF, 0x3B, 0x30]).all(axis=2).any()
    assert (
        error_of(client.post("/api/evaluations/self/threshold", json={"threshold": 0.5}), 409)
        == "no_probabilities"
    )


def test_the_tutorial_loop_on_the_multiclass_sample(lemons_workspace, open_client):
    """lemons (bg, kiwi, lemon; no split tags) through the same pages' API: a DTL graph resizes and tags the
    images train / val, a tiny model trains on the result, tests on the original and the evaluation has a
    confusion matrix over the three classes."""
    client = open_client(lemons_workspace)
    graph = [
        {"action": "data", "src": ["lemons/*"], "dst": "$all", "settings": {"classes_mapping": "default"}},
        {"action": "resize", "src": ["$all"], "dst": "$small",
         "settings": {"width": 64, "height": 64, "aspect_ratio": {"keep": False}}},
        {"action": "multiply", "src": ["$small"], "dst": "$many", "settings": {"multiply": 2}},
        {"action": "if", "src": ["$many"], "dst": ["$a", "$b"], "settings": {"condition": {"probability": 0.7}}},
        {"action": "tag", "src": ["$a"], "dst": "$train", "settings": {"tag": "train", "action": "add"}},
        {"action": "tag", "src": ["$b"], "dst": "$val", "settings": {"tag": "val", "action": "add"}},
        {"action": "background", "src": ["$train", "$val"], "dst": "$bg", "settings": {"class": "bg"}},
        {"action": "supervisely", "src": ["$bg"], "dst": "lemons_train", "settings": {}},
    ]  # fmt: skip
    checked = client.post("/api/dtl/check", json={"graph": graph}).json()
    assert checked["ok"], checked["errors"]
    task = client.post("/api/dtl/run", json={"graph": graph, "out": "lemons_train", "seed": 0}).json()
    assert task_ended(client, task["id"], 300)["state"] == "done"
    summary = client.get("/api/projects/lemons_train").json()["summary"]
    assert summary["images"] == 12 and {"kiwi", "lemon"} <= {c["title"] for c in summary["classes"]}
    config = tiny_config(input_size={"width": 64, "height": 64}, epochs=1)
    task = client.post(
        "/api/train", json={"project": "lemons_train", "run": "lemons", "config": config}
    ).json()
    task = task_ended(client, task["id"], 300)
    assert task["state"] == "done", task.get("log")
    defaults = client.get("/api/test/defaults", params={"run": "runs/lemons"}).json()
    assert defaults["mode"]["name"]  # the card's settings
    body = {"run": "runs/lemons", "project": "lemons", "out": "lemons_unet"}
    task = task_ended(client, client.post("/api/test", json=body).json()["id"], 300)
    assert task["state"] == "done", task.get("log")
    shown = client.get("/api/evaluations/lemons_unet").json()
    assert shown["confusion"]["classes"][0] == "bg" and set(shown["confusion"]["classes"][1:]) == {
        "kiwi",
        "lemon",
    }
    matrix = np.asarray(shown["confusion"]["matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() > 0
    assert len(shown["per_image"]) == 6 and "dice_kiwi" in shown["per_image"][0]
