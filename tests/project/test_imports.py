import cv2
import numpy as np
import pytest

from unetkit.errors import FormatError
from unetkit.project import Project, rasterize, validate_project, write_image
from unetkit.project.imports import import_masks, import_mvtec


def _write_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), mask.astype(np.uint8))


def _make_pairs(tmp_path, masks: dict, suffix=""):
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    for stem, mask in masks.items():
        write_image(imgs / f"{stem}.jpg", np.full(mask.shape + (3,), 120, np.uint8))
        _write_mask(msks / f"{stem}{suffix}.png", mask)
    return imgs, msks


def _index_mask(project, item):
    mapping = {c.title: i + 1 for i, c in enumerate(project.meta.classes)}
    return rasterize(item.read_annotation(project.meta), mapping)


def test_binary_0_255_masks(tmp_path):
    m = np.zeros((6, 7), np.uint8)
    m[1:3, 2:6] = 255
    empty = np.zeros((6, 7), np.uint8)
    imgs, msks = _make_pairs(tmp_path, {"a": m, "b": empty}, suffix="_gt")
    project = import_masks(imgs, msks, tmp_path / "out", "crack", mask_suffix="_gt", tag="train")
    assert validate_project(project.path) == []
    assert [c.title for c in project.meta.classes] == ["crack"]
    items = {i.name: i for i in project.items()}
    assert np.array_equal(_index_mask(project, items["a.jpg"]) == 1, m == 255)
    ann_b = items["b.jpg"].read_annotation(project.meta)
    assert ann_b.labels == [] and [t.name for t in ann_b.tags] == ["train"]


def test_class_value_masks_with_table(tmp_path):
    m = np.zeros((5, 5), np.uint8)
    m[0, :] = 1
    m[2:4, 1:3] = 2
    m[4, 4] = 7
    imgs, msks = _make_pairs(tmp_path, {"x": m})
    with pytest.raises(FormatError, match=r"values \[0, 1, 2, 7\].*value->class table"):
        import_masks(imgs, msks, tmp_path / "o1")
    with pytest.raises(FormatError, match=r"mask values \[7\] are not in the value->class table"):
        import_masks(imgs, msks, tmp_path / "o2", value_map={1: "road", 2: "car"})
    project = import_masks(imgs, msks, tmp_path / "o3", value_map={1: "road", 2: "car", 7: None})
    assert [c.title for c in project.meta.classes] == ["road", "car"]
    idx = _index_mask(project, next(project.items()))
    expected = np.where(m == 7, 0, m)
    assert np.array_equal(idx, expected)


def test_seeded_split(tmp_path):
    masks = {f"im{i}": np.eye(4, dtype=np.uint8) for i in range(10)}
    imgs, msks = _make_pairs(tmp_path, masks)

    def split_of(out, seed):
        p = import_masks(imgs, msks, tmp_path / out, split=0.7, seed=seed)
        return {i.name: [t.name for t in i.read_annotation(p.meta).tags] for i in p.items()}

    a, b, c = split_of("a", 1), split_of("b", 1), split_of("c", 2)
    assert a == b and a != c
    assert sorted(v[0] for v in a.values()) == ["train"] * 7 + ["val"] * 3
    with pytest.raises(FormatError, match="between 0 and 1"):
        import_masks(imgs, msks, tmp_path / "d", split=1.5)


def test_import_errors(tmp_path):
    imgs, msks = _make_pairs(tmp_path, {"a": np.ones((4, 4), np.uint8)})
    write_image(imgs / "b.jpg", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FormatError, match=r"no mask '<stem>.png' for 1 image\(s\): b.jpg"):
        import_masks(imgs, msks, tmp_path / "o")
    (imgs / "b.jpg").unlink()
    _write_mask(msks / "a.png", np.ones((5, 4), np.uint8))
    with pytest.raises(FormatError, match="mask size 5x4 differs"):
        import_masks(imgs, msks, tmp_path / "o2")
    with pytest.raises(FormatError, match="give --mask-suffix"):
        import_masks(imgs, imgs, tmp_path / "o3")
    with pytest.raises(FormatError, match="source project"):
        import_masks(imgs, msks, imgs / "inside")


def test_chasedb1_import_renders_back_to_the_source_masks(chasedb1_dir, tmp_path):
    project = import_masks(chasedb1_dir, chasedb1_dir, tmp_path / "chase", "vessel")
    assert len(project) == 20
    assert validate_project(project.path) == []
    for item in list(project.items())[:3]:
        src = cv2.imread(str(chasedb1_dir / f"{item.name[:-4]}_1stHO.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(_index_mask(project, item), (src != 0).astype(np.int32))
        assert np.array_equal(item.read_image(), cv2.imread(str(chasedb1_dir / item.name))[:, :, ::-1])


def _make_mvtec(root):
    good = np.full((6, 6, 3), 90, np.uint8)
    for i in range(2):
        write_image(root / "train" / "good" / f"00{i}.png", good)
    write_image(root / "test" / "good" / "000.png", good)
    for defect in ("crack", "hole"):
        write_image(root / "test" / defect / "000.png", good)
        m = np.zeros((6, 6), np.uint8)
        m[2:4, 1 : 5 if defect == "crack" else 3] = 255
        _write_mask(root / "ground_truth" / defect / "000_mask.png", m)


def test_mvtec_layout(tmp_path):
    _make_mvtec(tmp_path / "bottle")
    project = import_mvtec(tmp_path / "bottle", tmp_path / "out")
    assert validate_project(project.path) == []
    assert [d.name for d in project.datasets] == ["test", "train"]
    anns = {(i.dataset, i.name): i.read_annotation(project.meta) for i in project.items()}
    assert sorted(anns) == [
        ("test", "crack_000.png"),
        ("test", "good_000.png"),
        ("test", "hole_000.png"),
        ("train", "000.png"),
        ("train", "001.png"),
    ]
    assert anns[("train", "000.png")].labels == [] and anns[("test", "good_000.png")].labels == []
    crack = anns[("test", "crack_000.png")]
    assert [lb.class_title for lb in crack.labels] == ["defect"]
    assert crack.labels[0].geometry.area() == 8
    assert {(t.name, t.value) for t in crack.tags} == {("defect", "crack"), ("test", None)}
    per = import_mvtec(tmp_path / "bottle", tmp_path / "out2", per_defect_classes=True)
    assert [c.title for c in per.meta.classes] == ["crack", "hole"]
    (tmp_path / "bottle" / "ground_truth" / "hole" / "000_mask.png").unlink()
    with pytest.raises(FormatError, match="no mask ground_truth/hole/000_mask.png"):
        import_mvtec(tmp_path / "bottle", tmp_path / "out3")
    with pytest.raises(FormatError, match="not an MVTec AD category"):
        import_mvtec(tmp_path / "out", tmp_path / "out4")


def test_project_read_back_is_a_project(tmp_path):
    imgs, msks = _make_pairs(tmp_path, {"a": np.eye(3, dtype=np.uint8)})
    assert isinstance(import_masks(imgs, msks, tmp_path / "o"), Project)
