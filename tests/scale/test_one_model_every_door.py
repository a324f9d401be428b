"""A run is a model everywhere: an ``auto`` run on a generated project whose images are larger than the patch gives
one mask through every door — ``infer``, ``Predictor.predict``, ``/v1/predict``, ``/model/inference`` without a
mode and ``infer --engine ray`` pixel for pixel, the ONNX Runtime backend (fp32) as torch in fp32. Once with the
settings the run chose, once with those settings edited (TTA, a threshold and a clean-up), as a user would."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.helpers import annotation_index_mask, png_bytes
from unetkit import atomic
from unetkit.auto.fingerprint import fingerprint
from unetkit.auto.plan import Network, Plan, Selection
from unetkit.cli.main import main
from unetkit.inference.predictor import Predictor
from unetkit.models.card import CONFIG_FILE
from unetkit.models.checkpoint import read_card
from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    ObjClass,
    Project,
    ProjectMeta,
    ProjectWriter,
    rasterize,
)
from unetkit.serving.app import create_app
from unetkit.serving.payloads import decode_index_mask

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.filterwarnings("ignore:CUDA is not available")]
HEIGHT, WIDTH, PATCH = 100, 140, 64


def make_project(path, n=6, seed=0):
    """Dark noisy images with bright rings and disks: one class, images larger than the patch."""
    rng = np.random.default_rng(seed)
    writer = ProjectWriter(path, ProjectMeta(classes=[ObjClass("fg", "bitmap", "#FF0000")]))
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    for i in range(n):
        fg = np.zeros((HEIGHT, WIDTH), bool)
        for _ in range(3):
            cy, cx = rng.integers(15, HEIGHT - 15), rng.integers(15, WIDTH - 15)
            r = (yy - cy) ** 2 + (xx - cx) ** 2
            fg |= ((r >= 81) & (r <= 121)) | (r <= 9)
        img = (rng.random((HEIGHT, WIDTH, 3)) * 70).astype(np.uint8)
        img[fg] += np.array([150, 110, 60], np.uint8)
        writer.add_item(
            "ds0", f"im_{i:02d}.png", img, Annotation(HEIGHT, WIDTH, [Label("fg", Bitmap((0, 0), fg))])
        )
    writer.write_meta()
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The run as ``auto`` wrote it, and a copy whose card's settings were edited."""
    root = tmp_path_factory.mktemp("doors")
    project = make_project(root / "project")
    plan = Plan(
        budget_s=60,
        fingerprint=fingerprint(project),
        # deep supervision, as auto plans
        network=Network(model_options={"base_channels": 8, "depth": 3, "deep_supervision": True}),
        patch=PATCH,
        batch_size=4,
        iterations=40,
        validations=1,
        selection=Selection(thresholds=[0.3, 0.5, 0.7], min_sizes=[0, 8]),
        time_s={"train": 40.0, "select": 10.0, "report": 5.0},
    )
    plan.write(root / "plan.json")
    code = main(
        [
            "auto",
            str(project),
            "--out",
            str(root / "chosen"),
            "--plan",
            str(root / "plan.json"),
            "--no-progress",
        ]
    )
    assert code == 0
    shutil.copytree(root / "chosen", root / "edited")
    card = read_card(root / "edited")
    edited = card.inference.with_mode(tta=True, threshold=0.4, postprocess={"fg": {"min_size": 6}})
    atomic.write_bytes(card.path / CONFIG_FILE, card.model_copy(update={"inference": edited}).to_json_bytes())
    return project, {"chosen": root / "chosen", "edited": root / "edited"}


def project_masks(folder, title: str) -> dict[str, np.ndarray]:
    out = Project.read(folder)
    index = {title: 1}
    return {
        item.name: rasterize(item.read_annotation(out.meta), index, skip_unknown=True) for item in out.items()
    }


@pytest.mark.parametrize("variant", ["chosen", "edited"])
def test_every_door_gives_the_same_mask(runs, variant, ray_cluster, tmp_path):
    project, folders = runs
    run = folders[variant]
    settings = read_card(run).inference
    assert settings.mode.name == "sliding_window" and settings.mode.window.width == PATCH
    if variant == "edited":
        assert settings.mode.tta and settings.mode.threshold == 0.4
    items = list(Project.read(project).items())

    assert (
        main(
            [
                "infer",
                "--model",
                str(run),
                "--project",
                str(project),
                "--out",
                str(tmp_path / "cli"),
                "--no-progress",
            ]
        )
        == 0
    )
    cli = project_masks(tmp_path / "cli", "fg_unet")
    ray = ["--engine", "ray", "--address", ray_cluster.address]
    assert (
        main(
            [
                "infer",
                "--model",
                str(run),
                "--project",
                str(project),
                "--out",
                str(tmp_path / "ray"),
                "--no-progress",
                *ray,
            ]
        )
        == 0
    )
    on_ray = project_masks(tmp_path / "ray", "fg_unet")

    predictor = Predictor.from_checkpoint(run)
    onnx = Predictor.from_checkpoint(run, backend="onnxruntime")
    fp32 = Predictor.from_checkpoint(run, amp="off")  # what ONNX Runtime computes in (amp auto may be bf16)
    with TestClient(create_app(run)) as client:
        for item in items:
            image = item.read_pixels()
            expected = cli[item.name]
            assert expected.any() and (expected == 0).any(), "a mask with both classes"
            assert np.array_equal(on_ray[item.name], expected), "infer --engine ray"
            assert np.array_equal(predictor.predict(image).mask, expected), "Predictor.predict"
            files = {"image": ("im.png", png_bytes(image), "image/png")}
            body = client.post("/v1/predict", files=files).json()
            assert np.array_equal(decode_index_mask(body["mask_png"]), expected), "/v1/predict"
            ann = client.post("/model/inference", files=files).json()
            original = annotation_index_mask(ann, {"fg_model": 1}, default=0)
            assert np.array_equal(original, expected), "/model/inference without a mode"
            from_onnx, exact = onnx.predict(image), fp32.predict(image)
            np.testing.assert_allclose(from_onnx.probabilities, exact.probabilities, atol=2e-3)
            # ONNX Runtime computes in fp32, so its mask is the fp32 door's; the bf16 one (amp auto) may differ on
            # an untrained model's many pixels near the threshold, which is precision, not a door (test_amp_parity)
            agree = np.mean(from_onnx.mask == exact.mask)
            assert agree >= 0.999, f"ONNX Runtime agrees with torch fp32 on {agree:.4%} of the pixels"


def test_the_settings_round_trip_through_a_config_file(runs, tmp_path):
    """The card's settings saved as a file and passed back with --config give the same project."""
    project, folders = runs
    run = folders["edited"]
    (tmp_path / "settings.json").write_text(json.dumps(read_card(run).inference.to_json()))
    args = ["infer", "--model", str(run), "--project", str(project), "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "card")]) == 0
    assert main([*args, "--out", str(tmp_path / "file"), "--config", str(tmp_path / "settings.json")]) == 0
    card, file = project_masks(tmp_path / "card", "fg_unet"), project_masks(tmp_path / "file", "fg_unet")
    assert card.keys() == file.keys() and all(np.array_equal(card[k], file[k]) for k in card)
