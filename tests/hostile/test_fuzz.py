"""Fuzzed annotations, metas and configs: the readers raise only the project's own error types."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unetkit.dtl import geometry_ops as ops
from unetkit.dtl.graph import build_graph
from unetkit.errors import UnetkitError
from unetkit.inference_config import parse_config as parse_inference_config
from unetkit.project import Annotation, ProjectMeta, rasterize
from unetkit.training.config import parse_config as parse_train_config

from .builders import META, bitmap_bomb_data, small_bitmap_data

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
META_OBJ = ProjectMeta.from_json(
    {**META, "tags": [{"name": "n", "value_type": "any_number"}, {"name": "d", "value_type": "date"}]}
)

numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), 0, 1, -1, 2**31, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
point = st.one_of(st.lists(numbers, min_size=2, max_size=2), json_values)
points = st.one_of(st.lists(point, max_size=6), json_values)
bitmap_data = st.one_of(
    st.sampled_from([small_bitmap_data(), small_bitmap_data(70, 3), bitmap_bomb_data(3000)]),
    st.text(max_size=40),
    st.binary(max_size=40).map(lambda b: __import__("base64").b64encode(b).decode()),
)
geometry = st.one_of(
    st.fixed_dictionaries(
        {"points": st.fixed_dictionaries({"exterior": points, "interior": st.lists(points, max_size=2)})}
    ),
    st.fixed_dictionaries({"bitmap": st.fixed_dictionaries({"origin": point, "data": bitmap_data})}),
    st.dictionaries(st.sampled_from(["points", "bitmap", "nodes"]), json_values, max_size=2),
)
label = st.builds(
    lambda title, geo, tags: {"classTitle": title, "tags": tags, **geo},
    st.one_of(st.sampled_from(["blob", "road", "box"]), json_values),
    geometry,
    st.one_of(
        st.lists(st.fixed_dictionaries({"name": st.sampled_from(["n", "d", "x"]), "value": scalars})),
        json_values,
    ),
)
annotation = st.fixed_dictionaries(
    {
        "size": st.one_of(
            st.fixed_dictionaries(
                {"height": st.one_of(st.integers(1, 80), numbers), "width": st.integers(1, 80)}
            ),
            json_values,
        ),
        "objects": st.one_of(st.lists(label, max_size=4), json_values),
        "tags": st.one_of(st.just([]), json_values),
    }
)


@FUZZ
@given(annotation)
def test_annotation_reader_and_rasterizer_raise_only_format_errors(raw):
    try:
        ann = Annotation.from_json(raw, META_OBJ, file="fuzz.json")
        mask = rasterize(ann, {"blob": 1, "road": 2, "box": 3}, skip_unknown=True)
    except UnetkitError:
        return
    assert mask.shape == (ann.height, ann.width) and np.isin(mask, [0, 1, 2, 3]).all()
    for lb in ann.labels:
        box = lb.geometry.bbox()
        assert all(math.isfinite(v) for v in (box.left, box.top, box.right, box.bottom))
    with ops.collect_dropped():  # the DTL transforms take whatever the reader accepted
        ops.flip_annotation(ann, "vertical")
        ops.crop_annotation(ann, 1, 1, max(2, ann.width // 2), max(2, ann.height // 2))
        ops.resize_annotation(ann, 7, 5)
        ops.rotate_annotation(ann, 17.0, "crop")


meta_class = st.one_of(
    st.fixed_dictionaries(
        {
            "title": st.one_of(st.text(max_size=6), json_values),
            "shape": st.one_of(st.sampled_from(["bitmap", "polygon"]), json_values),
        },
        optional={
            "color": st.one_of(st.sampled_from(["#FF0000", "#12345G", "red"]), json_values),
            "geometry_config": json_values,
        },
    ),
    json_values,
)
meta = st.one_of(
    st.fixed_dictionaries(
        {"classes": st.one_of(st.lists(meta_class, max_size=4), json_values)},
        optional={
            "tags": st.one_of(st.lists(json_values, max_size=3), json_values),
            "tags_images": json_values,
        },
    ),
    json_values,
)


@FUZZ
@given(meta)
def test_meta_reader_raises_only_format_errors(raw):
    try:
        ProjectMeta.from_json(raw, file="meta.json")
    except UnetkitError:
        pass


config_keys = [
    "lr",
    "epochs",
    "val_every",
    "batch_size",
    "input_size",
    "gpu_devices",
    "model",
    "mode",
    "name",
    "window",
]
configs = st.dictionaries(
    st.one_of(st.sampled_from(config_keys), st.text(max_size=6)), json_values, max_size=5
)


@FUZZ
@given(configs, st.one_of(st.none(), st.dictionaries(st.sampled_from(config_keys), json_values, max_size=3)))
def test_config_readers_raise_only_config_errors(raw, mode):
    doc = dict(raw) if mode is None else {**raw, "mode": mode}
    for parse in (lambda d: parse_train_config(d, warn=False), parse_inference_config):
        try:
            parse(doc)
        except UnetkitError:
            pass


@FUZZ
@given(
    st.one_of(
        st.lists(
            st.dictionaries(st.sampled_from(["action", "src", "dst", "settings"]), json_values), max_size=3
        ),
        json_values,
    )
)
def test_dtl_graph_reader_raises_only_graph_errors(raw):
    try:
        build_graph(raw, file="graph.json")
    except UnetkitError:
        pass
