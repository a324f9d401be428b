"""Every real Supervisely project in ../shared/data/sly_samples reads, validates and round-trips."""

import json

import numpy as np
import pytest

from unetkit.project import (
    Bitmap,
    Polygon,
    Project,
    ProjectWriter,
    Rectangle,
    load_json,
    rasterize,
    validate_project,
)

SAMPLES = {
    "lemons_annotated": 6,
    "roads_annotated_subset": 4,
    "pascal_gt_masks_subset": 16,
    "fruits_nested_subset": 7,
    "legacy_sdk_tutorial_project": 5,
}


def test_sample_list_is_complete(sly_samples_dir):
    assert sorted(p.name for p in sly_samples_dir.iterdir() if p.is_dir()) == sorted(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_reads_validates_and_round_trips(sly_samples_dir, tmp_path, name):
    src = sly_samples_dir / name
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in src.rglob("*")}
    project = Project.read(src)
    assert len(project) == SAMPLES[name]
    assert validate_project(src) == []
    writer = ProjectWriter(tmp_path / name, project.meta, sources=[src])
    originals = {}
    for item in project.items():
        ann = item.read_annotation(project.meta)
        originals[(item.dataset, item.name)] = ann
        writer.add_item(item.dataset, item.name, item.image_path, ann)
    copy = Project.read(tmp_path / name)
    assert copy.meta == project.meta
    assert copy.meta.to_json() == project.meta.to_json()
    assert [d.name for d in copy.datasets] == [d.name for d in project.datasets]
    for item in copy.items():
        assert item.ann_path.name == item.name + ".json"  # writers always use the current naming
        assert item.read_annotation(copy.meta) == originals[(item.dataset, item.name)]
    assert validate_project(tmp_path / name) == []
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in src.rglob("*")} == before  # source untouched


def _strip_geometry(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("points", "bitmap", "geometryType", "shape")}


def test_unknown_keys_are_written_back(sly_samples_dir):
    project = Project.read(sly_samples_dir / "fruits_nested_subset")
    for item in project.items():
        raw = load_json(item.ann_path)
        out = item.read_annotation(project.meta).to_json()
        assert [t for t in out["tags"]] == raw["tags"]  # labelerLogin, createdAt, ... kept
        assert [_strip_geometry(o) for o in out["objects"]] == [_strip_geometry(o) for o in raw["objects"]]
        assert [o["points"] for o in out["objects"]] == [o["points"] for o in raw["objects"]]
    meta_raw = load_json(sly_samples_dir / "fruits_nested_subset" / "meta.json")
    assert project.meta.to_json()["classes"] == [
        {**c, "color": c["color"].upper(), "geometry_config": c.get("geometry_config", {})}
        for c in meta_raw["classes"]
    ]


def test_nested_datasets_and_placeholders(sly_samples_dir):
    project = Project.read(sly_samples_dir / "fruits_nested_subset")
    names = [d.name for d in project.datasets]
    assert "Temperate/Pear" in names
    assert "Temperate" not in names  # a parent holding only 0-byte placeholders is a container
    pear = project.get_dataset("Temperate/Pear")
    assert [i.name for i in pear.items] == ["pear_1.jpg", "pear_2.jpg", "pear_3.jpg"]
    ann = pear.items[0].read_annotation(project.meta)
    assert isinstance(ann.labels[0].geometry, Rectangle)
    assert ann.tags[0].name == "Pear" and ann.tags[0].extra["labelerLogin"] == "cxnt"


def test_legacy_annotation_names_and_float_points(sly_samples_dir):
    project = Project.read(sly_samples_dir / "legacy_sdk_tutorial_project")
    item = next(i for i in project.items() if i.name == "bike-man-dog.jpeg")
    assert item.ann_path.name == "bike-man-dog.json"
    ann = item.read_annotation(project.meta)
    raw = load_json(item.ann_path)
    dog = next(lb for lb in ann.labels if lb.class_title == "dog")
    raw_dog = next(o for o in raw["objects"] if o["classTitle"] == "dog")
    assert isinstance(dog.geometry, Polygon)
    assert dog.geometry.exterior.tolist() == [[round(x), round(y)] for x, y in raw_dog["points"]["exterior"]]
    assert dog.extra["bitmap"] is None  # junk key of the legacy writer kept, not interpreted
    person_tags = [t for lb in ann.labels for t in lb.tags]
    assert {(t.name, t.value) for t in person_tags} >= {("person_gender", "male")}
    value_types = {t.value_type for t in project.meta.tag_metas}
    assert value_types == {"none", "any_number", "any_string", "oneof_string"}


def test_sample_bitmaps_reencode_and_rasterise(sly_samples_dir):
    project = Project.read(sly_samples_dir / "lemons_annotated")
    item = next(project.items())
    ann = item.read_annotation(project.meta)
    raw = json.loads(item.ann_path.read_text())
    mapping = {"kiwi": 1, "lemon": 2}
    gt = rasterize(ann, mapping)
    expected = np.zeros((ann.height, ann.width), np.int32)
    for lb in ann.labels:
        assert isinstance(lb.geometry, Bitmap)
        x, y = lb.geometry.origin
        h, w = lb.geometry.mask.shape
        expected[y : y + h, x : x + w][lb.geometry.mask] = mapping[lb.class_title]
    assert np.array_equal(gt, expected)
    assert len(raw["objects"]) == len(ann.labels)
