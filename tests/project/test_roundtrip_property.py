"""Property: any annotation we can build survives to_json -> from_json and a write -> read through files."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    Point,
    Polygon,
    Polyline,
    Project,
    ProjectWriter,
    Rectangle,
    Tag,
)

from .helpers import sample_meta

H, W = 24, 32
xy = st.tuples(st.integers(-5, W + 5), st.integers(-5, H + 5))
bitmaps = st.builds(
    lambda m, x, y: Bitmap((x, y), m) if m.any() else None,
    arrays(bool, st.tuples(st.integers(1, 8), st.integers(1, 8))),
    st.integers(0, W - 9),
    st.integers(0, H - 9),
).filter(lambda b: b is not None)
geometries = st.one_of(
    st.builds(lambda b: ("lemon", b), bitmaps),
    st.builds(lambda p: ("dot", Point(*p)), xy),
    st.builds(lambda a, b: ("box", Rectangle(*a, *b)), xy, xy),
    st.builds(lambda pts: ("edge", Polyline(pts)), st.lists(xy, min_size=2, max_size=6)),
    st.builds(
        lambda ext, holes: ("road", Polygon(ext, holes)),
        st.lists(xy, min_size=3, max_size=8),
        st.lists(st.lists(xy, min_size=3, max_size=5), max_size=2),
    ),
)
tags = st.lists(
    st.one_of(
        st.just(Tag("train")),
        st.sampled_from(["sunny", "rain"]).map(lambda v: Tag("weather", v)),
        st.integers(-5, 5).map(lambda v: Tag("count", v)),
        st.text(max_size=5).map(lambda v: Tag("note", v)),
    ),
    max_size=3,
)
annotations = st.builds(
    lambda objs, img_tags, desc: Annotation(
        H, W, [Label(cls, g, t, d) for (cls, g), t, d in objs], img_tags, desc, {"k": desc}
    ),
    st.lists(st.tuples(geometries, tags, st.text(max_size=4)), max_size=5),
    tags,
    st.text(max_size=6),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(annotations)
def test_annotation_round_trip(tmp_path_factory, ann):
    meta = sample_meta()
    assert Annotation.from_json(ann.to_json(), meta) == ann
    root = tmp_path_factory.mktemp("rt") / "p"
    ProjectWriter(root, meta).add_item("ds", "x.png", np.zeros((H, W, 3), np.uint8), ann)
    project = Project.read(root)
    assert project.meta == meta
    assert next(project.items()).read_annotation(project.meta) == ann
