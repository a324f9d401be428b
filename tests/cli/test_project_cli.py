"""`unetkit project ...` and `unetkit import ...` through a subprocess, as users run them."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from unetkit.project import Annotation, Bitmap, Label, ObjClass, ProjectMeta, ProjectWriter, write_image

SAMPLES = [
    "fruits_nested_subset",
    "legacy_sdk_tutorial_project",
    "lemons_annotated",
    "pascal_gt_masks_subset",
    "roads_annotated_subset",
]


def unetkit(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "unetkit", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize("name", SAMPLES)
def test_validate_every_sample_exits_0(sly_samples_dir, name):
    res = unetkit("project", "validate", sly_samples_dir / name)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("OK:") and "valid" in res.stdout


def _small_project(root):
    meta = ProjectMeta([ObjClass("blob", "bitmap", "#FF0000")])
    writer = ProjectWriter(root, meta)
    for name in ("a.png", "b.png"):
        ann = Annotation(6, 6, [Label("blob", Bitmap((1, 1), np.ones((2, 2), bool)))])
        writer.add_item("ds", name, np.zeros((6, 6, 3), np.uint8), ann)
    return root


def test_validate_lists_every_problem_and_exits_2(tmp_path):
    root = _small_project(tmp_path / "p")
    a = root / "ds/ann/a.png.json"
    d = json.loads(a.read_text())
    d["objects"][0]["classTitle"] = "ghost"
    d["size"]["width"] = 7
    a.write_text(json.dumps(d))
    (root / "ds/ann/b.png.json").write_text('{"size": {"height": 6,')
    res = unetkit("project", "validate", root)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert lines == [
        f"error: {a}: $.size: size 6x7 (HxW) does not match the image a.png (6x6)",
        f"error: {a}: $.objects[0].classTitle: class 'ghost' is not defined in meta.json",
        f"error: {root / 'ds/ann/b.png.json'}: $: invalid JSON: Expecting property name enclosed in double quotes "
        "at line 1 column 23",
    ]
    assert "3 problem(s) found" in res.stderr
    assert "Traceback" not in res.stderr


def test_info_text_and_json(sly_samples_dir):
    res = unetkit("project", "info", sly_samples_dir / "legacy_sdk_tutorial_project")
    assert res.returncode == 0, res.stderr
    assert "5 image(s) in 2 dataset(s)" in res.stdout
    assert "person" in res.stdout and "situated (oneof_string)" in res.stdout
    res = unetkit("project", "info", "--json", sly_samples_dir / "fruits_nested_subset")
    info = json.loads(res.stdout)
    assert {d["name"] for d in info["datasets"]} == {"Temperate/Pear", "Tropical/Mango"}
    assert info["objects_per_shape"] == {"rectangle": sum(c["objects"] for c in info["classes"])}
    assert info["image_tags"]


def test_render_writes_masks_and_overlays(sly_samples_dir, tmp_path):
    res = unetkit("project", "render", sly_samples_dir / "roads_annotated_subset", tmp_path / "r")
    assert res.returncode == 0, res.stderr
    masks = sorted((tmp_path / "r/ds1/masks").iterdir())
    overlays = sorted((tmp_path / "r/ds1/overlays").iterdir())
    assert len(masks) == len(overlays) == 4
    table = json.loads((tmp_path / "r/classes.json").read_text())
    assert table["class_title_to_idx"] == {"__bg__": 0, "road": 1}
    m = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert m.ndim == 2 and set(np.unique(m)) == {0, 1}
    res = unetkit("project", "render", tmp_path / "r", tmp_path / "r" / "inside")
    assert res.returncode == 2 and res.stderr.startswith("error: ")


def test_chasedb1_import_validate_render_pixel_identical(chasedb1_dir, tmp_path):
    out = tmp_path / "chase"
    res = unetkit(
        "import", "masks", "--images", chasedb1_dir, "--masks", chasedb1_dir, "--out", out,
        "--class", "vessel", "--mask-suffix", "_1stHO", "--split", "0.8", "--seed", "3",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "imported 20 image(s)" in res.stdout
    res = unetkit("project", "validate", out)
    assert res.returncode == 0, res.stderr
    res = unetkit("project", "render", out, tmp_path / "render", "--no-overlays")
    assert res.returncode == 0, res.stderr
    rendered = sorted((tmp_path / "render/ds0/masks").iterdir())
    assert len(rendered) == 20
    for path in rendered:
        ours = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        source = cv2.imread(str(chasedb1_dir / f"{path.stem}_1stHO.png"), cv2.IMREAD_UNCHANGED)
        assert ours.shape == source.shape == (960, 999)
        assert np.array_equal(ours * 255, source), path.name  # 0/1 class index vs the 0/255 source


def test_import_masks_argument_errors(tmp_path):
    imgs = tmp_path / "imgs"
    write_image(imgs / "a.png", np.zeros((3, 3, 3), np.uint8))
    res = unetkit(
        "import", "masks", "--images", imgs, "--masks", imgs, "--out", tmp_path / "o", "--value-map", "x=1"
    )
    assert res.returncode == 2
    assert (
        res.stderr.strip()
        == "error: --value-map entry 'x=1' must look like VALUE=CLASS (VALUE a non-negative integer)"
    )
    res = unetkit("import", "masks", "--images", tmp_path / "nope", "--masks", imgs, "--out", tmp_path / "o")
    assert res.returncode == 2 and "folder not found" in res.stderr


def test_import_masks_value_map_and_tag(tmp_path):
    imgs, masks = tmp_path / "imgs", tmp_path / "masks"
    write_image(imgs / "a.png", np.zeros((4, 4, 3), np.uint8))
    masks.mkdir()
    m = np.array([[0, 1, 1, 2]] * 4, np.uint8)
    cv2.imwrite(str(masks / "a_label.png"), m)
    res = unetkit(
        "import", "masks", "--images", imgs, "--masks", masks, "--out", tmp_path / "o",
        "--mask-suffix", "_label", "--value-map", "1=road,2=car", "--tag", "train",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    info = json.loads(unetkit("project", "info", "--json", tmp_path / "o").stdout)
    assert [(c["title"], c["objects"]) for c in info["classes"]] == [("road", 1), ("car", 1)]
    assert info["image_tags"] == {"train": 1}


def test_import_mvtec_cli(tmp_path):
    root = tmp_path / "screw"
    write_image(root / "train/good/000.png", np.full((5, 5, 3), 50, np.uint8))
    write_image(root / "test/scratch/000.png", np.full((5, 5, 3), 50, np.uint8))
    (root / "ground_truth/scratch").mkdir(parents=True)
    cv2.imwrite(str(root / "ground_truth/scratch/000_mask.png"), np.eye(5, dtype=np.uint8) * 255)
    res = unetkit("import", "mvtec", root, "--out", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    assert unetkit("project", "validate", tmp_path / "o").returncode == 0
