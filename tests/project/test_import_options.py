"""`unetkit import masks` options for datasets as they ship: instance folders, class-index masks with an ignore
value, soft-edged masks and --threshold, 1-bit/8-bit/GIF/BMP masks mixed, pairing by a split csv; the error
cases; and the development suite (../shared/data/devsuite) as it ships."""

import csv
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import require_shared_data
from unetkit.cli.main import main
from unetkit.errors import ConfigError, FormatError
from unetkit.project import Project, rasterize, validate_project, write_image
from unetkit.project.imports import import_masks

H, W = 6, 8


def _image(folder: Path, stem: str, shape=(H, W)) -> Path:
    path = folder / f"{stem}.png"
    write_image(path, np.full(shape + (3,), 90, np.uint8))
    return path


def _mask(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array.astype(bool) if mode == "1" else array.astype(np.uint8))
    im.convert(mode).save(path) if mode and mode != im.mode else im.save(path)
    return path


def _index(project: Project, titles: list[str]) -> dict[str, np.ndarray]:
    """Item name -> class-index map (title i -> i + 1, 0 = no object), drawn by ``rasterize``."""
    mapping = {t: i + 1 for i, t in enumerate(titles)}
    return {it.name: rasterize(it.read_annotation(project.meta), mapping) for it in project.items()}


def _blob(seed: int, shape=(H, W)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[1 + seed % 3 : 4 + seed % 2, 2 : 5 + seed % 3] = True
    return m


def _cli(tmp_path, capsys, *args) -> tuple[int, str]:
    """Run ``unetkit import masks ARGS`` in-process: (exit code, stderr)."""
    rc = main(["import", "masks", *map(str, args)])
    return rc, capsys.readouterr().err


# --- mask encodings ---------------------------------------------------------------------------------------


def test_one_bit_eight_bit_gif_and_bmp_masks_mixed_in_one_folder(tmp_path):
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    kinds = {"a": (".png", "1", 1), "b": (".png", "L", 255), "c": (".gif", "L", 255), "d": (".bmp", "L", 255)}
    expected = {}
    for i, (stem, (ext, mode, value)) in enumerate(kinds.items()):
        _image(imgs, stem)
        expected[f"{stem}.png"] = _blob(i)
        _mask(msks / f"{stem}{ext}", _blob(i) * value, mode)
    with Image.open(msks / "a.png") as im:
        assert im.mode == "1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # two values each: no soft-edge warning
        project = import_masks(imgs, msks, tmp_path / "out", "crack")
    assert validate_project(project.path) == []
    for name, got in _index(project, ["crack"]).items():
        assert np.array_equal(got == 1, expected[name]), name


def test_soft_edged_mask_default_threshold_warns_and_threshold_chooses(tmp_path):
    ramp = np.tile(np.array([0, 0, 40, 127, 128, 200, 255, 255], np.uint8), (H, 1))
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    _image(imgs, "s")
    _mask(msks / "s.png", ramp)
    _image(imgs, "t")  # a 1-bit mask beside it: its 1 is foreground at any threshold
    _mask(msks / "t.png", _blob(0), "1")
    with pytest.warns(
        UserWarning,
        match=r"1 of 2 binary mask file\(s\) hold more than two values.*s\.png.*"
        r"value >= 128 \(the default",
    ):
        project = import_masks(imgs, msks, tmp_path / "default", "edge")
    got = _index(project, ["edge"])
    assert np.array_equal(got["s.png"] == 1, ramp >= 128)
    assert np.array_equal(got["t.png"] == 1, _blob(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a threshold given: no warning
        project = import_masks(imgs, msks, tmp_path / "t40", "edge", threshold=40)
    got = _index(project, ["edge"])
    assert np.array_equal(got["s.png"] == 1, ramp >= 40)
    assert np.array_equal(got["t.png"] == 1, _blob(0))


def test_soft_edge_warning_is_one_line_on_stderr(tmp_path, capsys):
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    _image(imgs, "s")
    _mask(msks / "s.jpg", np.tile(np.linspace(0, 255, W).astype(np.uint8), (H, 1)))  # a JPEG mask
    rc, err = _cli(tmp_path, capsys, "--images", imgs, "--masks", msks, "--out", tmp_path / "o")
    assert rc == 0
    lines = err.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("warning: 1 of 1 binary mask file(s)") and "s.jpg" in lines[0]
    )


def test_small_class_values_without_a_table_still_fail(tmp_path):
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    _image(imgs, "x")
    _mask(msks / "x.png", np.arange(H * W).reshape(H, W) % 3)
    with pytest.raises(FormatError, match=r"x\.png: mask has values \[0, 1, 2\].*--classes\).*--threshold"):
        import_masks(imgs, msks, tmp_path / "o")


# --- class-index masks with an ignore value ---------------------------------------------------------------


def test_class_index_masks_with_class_list_and_ignore(tmp_path, capsys):
    m = (np.arange(H * W).reshape(H, W) % 4).astype(
        np.uint8
    )  # 0 = Sky, 1 = Road, 2 = background, 3 = ignored
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    _image(imgs, "street")
    _mask(msks / "street.png", m)
    out = tmp_path / "out"
    rc, err = _cli(
        tmp_path,
        capsys,
        "--images",
        imgs,
        "--masks",
        msks,
        "--out",
        out,
        "--classes",
        "Sky,Road,",
        "--ignore",
        "3",
    )
    assert (rc, err) == (0, "")
    project = Project.read(out)
    assert [c.title for c in project.meta.classes] == ["Sky", "Road", "neutral"]
    got = _index(project, ["Sky", "Road", "neutral"])["street.png"]
    assert np.array_equal(got, np.select([m == 0, m == 1, m == 3], [1, 2, 3], 0))
    for value, count in ((1, (m == 0).sum()), (2, (m == 1).sum()), (3, (m == 3).sum()), (0, (m == 2).sum())):
        assert (got == value).sum() == count


def test_ignore_value_of_a_binary_mask_and_a_field_of_view_share_one_neutral_object(tmp_path):
    m = np.zeros((H, W), np.uint8)
    m[2:4, 2:6] = 255
    m[0, :] = 7  # a "don't care" border
    imgs, msks, fov = tmp_path / "images", tmp_path / "masks", tmp_path / "fov"
    _image(imgs, "a")
    _mask(msks / "a.png", m)
    outside = np.zeros((H, W), bool)
    outside[:, 0] = True
    _mask(fov / "a.png", (~outside) * 255)
    project = import_masks(imgs, msks, tmp_path / "out", "lesion", ignore=[7], fov_dir=fov)
    ann = next(project.items()).read_annotation(project.meta)
    assert [lb.class_title for lb in ann.labels] == ["lesion", "neutral"]
    got = _index(project, ["lesion", "neutral"])["a.png"]
    assert np.array_equal(got == 2, (m == 7) | outside)
    assert np.array_equal(got == 1, (m == 255) & ~outside)


# --- instance folders -------------------------------------------------------------------------------------


def test_instance_folders_import_as_the_union(tmp_path):
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    union = {}
    for stem, n in (("cells1", 3), ("cells2", 1)):
        _image(imgs, stem)
        parts = [np.zeros((H, W), bool) for _ in range(n)]
        for i, p in enumerate(parts):
            p[i * 2 : i * 2 + 2, i : i + 3] = True
            _mask(msks / stem / f"{i}.png", p * 255, "1" if i == 1 else None)  # 1-bit and 8-bit instances
        union[f"{stem}.png"] = np.logical_or.reduce(parts)
    (msks / "cells1" / "notes.txt").write_text("not a mask")  # other files are left alone
    project = import_masks(imgs, msks, tmp_path / "out", "nucleus", instances=True)
    assert [c.title for c in project.meta.classes] == ["nucleus"]
    for name, got in _index(project, ["nucleus"]).items():
        assert np.array_equal(got == 1, union[name]), name
    assert all(len(it.read_annotation(project.meta).labels) == 1 for it in project.items())


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(3, 12), st.integers(3, 12)),
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 6),
)
def test_union_of_random_non_overlapping_instances_round_trips(shape, seed, n):
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, n + 1, size=shape)  # 0 = background, k = instance k: never two at a pixel
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _image(root / "images", "im", shape)
        folder = root / "masks" / "im"
        folder.mkdir(parents=True)
        for k in range(1, n + 1):
            _mask(folder / f"{k}.png", (owner == k) * 255)
        project = import_masks(root / "images", root / "masks", root / "out", "obj", instances=True)
        got = _index(project, ["obj"])["im.png"]
    assert np.array_equal(got == 1, owner > 0)


def test_instance_folders_by_match(tmp_path):
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    _image(imgs, "07_image")
    _mask(msks / "07_objects" / "a.png", _blob(1) * 255)
    project = import_masks(imgs, msks, tmp_path / "out", "obj", instances=True, match=r"^(\d+)_")
    assert np.array_equal(_index(project, ["obj"])["07_image.png"] == 1, _blob(1))


# --- pairing by a split csv -------------------------------------------------------------------------------


def test_split_csv_pairs_and_tags(tmp_path, capsys):
    root = tmp_path / "ds"
    rows = [("images/a.png", "masks/a_gt.gif", "train"), ("images/b.png", "masks/b/", "val")]
    _image(root / "images", "a")
    _mask(root / "masks" / "a_gt.gif", _blob(0) * 255)
    _image(root / "images", "b")
    _image(root / "images", "c")  # not in the csv: not imported
    (root / "split.csv").write_text("image,mask,split\n" + "".join(f"{i},{m},{s}\n" for i, m, s in rows[:1]))
    project = import_masks(None, None, tmp_path / "out", "crack", split_csv=root / "split.csv")
    assert [it.name for it in project.items()] == ["a.png"]
    ann = next(project.items()).read_annotation(project.meta)
    assert [t.name for t in ann.tags] == ["train"]
    assert [t.name for t in project.meta.tag_metas] == ["train"]
    # instance folders through the csv (the DSB layout), by the CLI
    _mask(root / "masks" / "b" / "0.png", _blob(2) * 255)
    (root / "inst.csv").write_text("image,mask,split\n" + "".join(f"{i},{m},{s}\n" for i, m, s in rows[1:]))
    rc, err = _cli(
        tmp_path,
        capsys,
        "--split-csv",
        root / "inst.csv",
        "--instances",
        "--class",
        "nucleus",
        "--out",
        tmp_path / "inst",
    )
    assert (rc, err) == (0, "")
    project = Project.read(tmp_path / "inst")
    assert np.array_equal(_index(project, ["nucleus"])["b.png"] == 1, _blob(2))
    assert [t.name for t in next(project.items()).read_annotation(project.meta).tags] == ["val"]


# --- errors: one line naming the file, exit code 2 --------------------------------------------------------


def _one_error_line(rc: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_error_cases_are_one_line_and_exit_2(tmp_path, capsys):
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    _image(imgs, "a")
    out = ("--out", tmp_path / "o")
    base = ("--images", imgs, "--masks", msks, *out)
    msks.mkdir()
    # a missing mask
    _one_error_line(*_cli(tmp_path, capsys, *base), "masks", "no mask '<stem>.png' for 1 image(s): a.png")
    # an instance folder with an unreadable PNG
    (msks / "a").mkdir()
    _mask(msks / "a" / "0.png", _blob(0) * 255)
    (msks / "a" / "1.png").write_bytes(b"\x89PNG broken")
    _one_error_line(*_cli(tmp_path, capsys, *base, "--instances"), str(msks / "a" / "1.png"), "cannot decode")
    # an instance of another size than its image
    _mask(msks / "a" / "1.png", np.zeros((H + 1, W), np.uint8))
    _one_error_line(
        *_cli(tmp_path, capsys, *base, "--instances"),
        str(msks / "a" / "1.png"),
        f"mask size {H + 1}x{W} differs from image a.png ({H}x{W})",
    )
    # an index out of the class list
    _mask(msks / "a.png", np.where(_blob(0), 5, 1))
    _one_error_line(
        *_cli(tmp_path, capsys, *base, "--classes", "x,y,z"),
        str(msks / "a.png"),
        "mask values [5] are not in the value->class table (it has 0..2)",
    )
    _one_error_line(*_cli(tmp_path, capsys, *base, "--classes", "x,y,z", "--ignore", "4"), "ignored 4")
    # a threshold outside 0..255
    for bad in ("256", "-1", "0"):
        _one_error_line(
            *_cli(tmp_path, capsys, *base, "--threshold", bad), "--threshold must be between 1 and 255"
        )
    # conflicting or incomplete options
    _one_error_line(*_cli(tmp_path, capsys, *base, "--classes", "x", "--value-map", "1=x"), "not both")
    _one_error_line(*_cli(tmp_path, capsys, "--images", imgs, *out), "--split-csv FILE")
    _one_error_line(*_cli(tmp_path, capsys, *base, "--classes", "x,y", "--ignore", "1"), "also classes (y)")
    _one_error_line(*_cli(tmp_path, capsys, *base, "--ignore", "a"), "--ignore 'a'")
    _one_error_line(*_cli(tmp_path, capsys, *base, "--instances", "--classes", "x"), "--instances")
    assert not (tmp_path / "o").exists()  # a failed import leaves nothing


def test_split_csv_errors_name_the_csv_and_line(tmp_path, capsys):
    root = tmp_path / "ds"
    _image(root / "images", "a")
    _mask(root / "masks" / "a.png", _blob(0) * 255)
    (root / "masks" / "d").mkdir()
    cases = {
        "image,label\nimages/a.png,masks/a.png\n": "needs the columns image,mask[,split]",
        "image,mask\nimages/a.png,masks/zz.png\n": "line 2: mask masks/zz.png not found",
        "image,mask\nimages/zz.png,masks/a.png\n": "line 2: image images/zz.png not found",
        "image,mask\nimages/a.png,masks/a.png\nimages/a.png,masks/a.png\n": "line 3: image name a.png is also",
        "image,mask\nimages/a.png,masks/d\n": "is a folder: give --instances",
        "image,mask\n": "lists no images",
    }
    for i, (text, message) in enumerate(cases.items()):
        (root / f"s{i}.csv").write_text(text)
        rc, err = _cli(tmp_path, capsys, "--split-csv", root / f"s{i}.csv", "--out", tmp_path / "o")
        _one_error_line(rc, err, f"s{i}.csv", message)
    with pytest.raises(ConfigError, match="no --images/--masks/--match/--split"):
        import_masks(root / "images", None, tmp_path / "o", split_csv=root / "s0.csv")


def test_project_package_does_not_import_torch():
    code = (
        "import sys, unetkit.project.imports, unetkit.project.mask_labels; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the development suite, as it ships -------------------------------------------------------------------

CAMVID = "Sky,Building,Pole,Road,Pavement,Tree,SignSymbol,Fence,Car,Pedestrian,Bicyclist"
DEVSUITE = {  # the options of the documented commands (README.md, "The development suite")
    "deepcrack": ["--class", "crack"],
    "dsb2018_stage1": ["--instances", "--class", "nucleus"],
    "camvid": ["--classes", CAMVID, "--ignore", "11"],
    "ddti_thyroid_us": ["--class", "nodule"],
}


def _source_index(folder: Path, name: str) -> np.ndarray:
    """The source mask as title index (+1) by Pillow alone: binary > 0, CamVid 11 -> neutral, instance union."""
    paths = sorted(folder.glob("*.png")) if folder.is_dir() else [folder]
    arrays = []
    for p in paths:
        with Image.open(p) as im:
            arrays.append(np.asarray(im.convert("L") if im.mode in ("1", "P") else im).astype(np.int64))
    if name == "camvid":
        return np.where(arrays[0] == 11, 12, arrays[0] + 1)
    return np.logical_or.reduce([a > 0 for a in arrays]).astype(np.int64)


@pytest.mark.parametrize("name", sorted(DEVSUITE))
def test_devsuite_first_pairs_import_as_they_ship(name, tmp_path, capsys):
    root = require_shared_data("devsuite", name)
    with open(root / "split.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:3]
    assert len(rows) == 3
    small = tmp_path / "split.csv"  # the first 3 rows, by absolute paths
    small.write_text(
        "image,mask,split\n" + "".join(f"{root / r['image']},{root / r['mask']},{r['split']}\n" for r in rows)
    )
    out = tmp_path / "out"
    rc, err = _cli(tmp_path, capsys, "--split-csv", small, *DEVSUITE[name], "--out", out)
    assert (rc, err) == (0, "")
    project = Project.read(out)
    assert validate_project(out) == []
    titles = [c.title for c in project.meta.classes]
    assert titles == (CAMVID.split(",") + ["neutral"] if name == "camvid" else [DEVSUITE[name][-1]])
    got = _index(project, titles)
    for r in rows:
        item = Path(r["image"]).name
        assert np.array_equal(got[item], _source_index(root / r["mask"], name)), item
    tags = {it.name: [t.name for t in it.read_annotation(project.meta).tags] for it in project.items()}
    assert tags == {Path(r["image"]).name: [r["split"]] for r in rows}
