"""Decompression bombs and hostile numbers are refused before anything large is decoded or allocated."""

from __future__ import annotations

import base64
import json
import time
import zlib

import numpy as np
import pytest

from unetkit.errors import ConfigError, FormatError
from unetkit.project import (
    Annotation,
    ProjectMeta,
    decode_bitmap_data,
    encode_bitmap_data,
    rasterize,
    read_image,
)
from unetkit.project.limits import MAX_PIXELS_ENV, max_pixels

from .builders import META, bitmap, bitmap_bomb_data, png_bomb, polygon, small_bitmap_data
from .runner import peak_mb, reset_peak

META_OBJ = ProjectMeta.from_json(META)


def _ann(objects, size=(64, 64)) -> dict:
    return {"size": {"height": size[0], "width": size[1]}, "tags": [], "objects": objects}


def test_bitmap_bomb_is_refused_from_its_header_naming_size_path_and_env_var():
    reset_peak()
    before = peak_mb()
    with pytest.raises(FormatError) as exc:
        Annotation.from_json(_ann([bitmap([0, 0], bitmap_bomb_data())]), META_OBJ, file="x.json")
    err = exc.value
    assert err.file == "x.json" and err.json_path == "$.objects[0].bitmap.data"
    assert "30000x30000" in err.message and MAX_PIXELS_ENV in err.message
    assert peak_mb() - before < 100


def test_bitmap_larger_than_its_image_is_refused_before_decoding():
    data = encode_bitmap_data(np.ones((70, 10), bool))
    with pytest.raises(FormatError, match=r"bitmap is 10x70 \(WxH\), larger than its image \(64x64"):
        Annotation.from_json(_ann([bitmap([0, 0], data)]), META_OBJ)
    Annotation.from_json(_ann([bitmap([0, 0], data)], size=(70, 10)), META_OBJ)  # fits: fine


def test_bare_png_bomb_and_zlib_stream_longer_than_its_png_can_hold():
    bare = base64.b64encode(png_bomb()).decode()
    with pytest.raises(FormatError, match="over the limit"):
        decode_bitmap_data(bare)
    png = base64.b64decode(small_bitmap_data())
    padded = zlib.decompress(png) + b"\x00" * (3 << 20)  # 3 MB of junk after a 2x2 PNG
    with pytest.raises(ValueError, match="inflates to more than"):
        decode_bitmap_data(base64.b64encode(zlib.compress(padded)).decode())


def test_pixel_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")
    assert max_pixels() == 100
    with pytest.raises(FormatError, match=r"image size is 20x20 = 400 pixels, over the limit of 100"):
        Annotation.from_json(_ann([], size=(20, 20)), META_OBJ)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ConfigError, match=MAX_PIXELS_ENV):
        max_pixels()


def test_image_over_the_cap_is_refused_from_its_header(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(png_bomb(3000, 3000))
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000000")
    reset_peak()
    before = peak_mb()
    with pytest.raises(FormatError, match=r"image is 3000x3000 = 9000000 pixels, over the limit") as exc:
        read_image(path)
    assert exc.value.file == str(path)
    assert peak_mb() - before < 20


BAD_NUMBERS = [10**400, -(10**30), float("nan"), float("inf"), -float("inf"), 1e300, 2_000_000_000]


@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
def test_hostile_coordinates_are_format_errors(bad):
    raw = json.loads(json.dumps(_ann([polygon([[1, 1], [bad, 3], [5, 5]])]), allow_nan=True))
    with pytest.raises(FormatError) as exc:
        Annotation.from_json(raw, META_OBJ, file="a.json")
    assert exc.value.json_path == "$.objects[0].points.exterior[1]"
    with pytest.raises(FormatError) as exc:
        Annotation.from_json(_ann([bitmap([bad, 0], small_bitmap_data())]), META_OBJ, file="a.json")
    assert exc.value.json_path == "$.objects[0].bitmap.origin"


@pytest.mark.parametrize("bad", [10**400, 1e400, float("nan"), 2e9, 10**12], ids=repr)
def test_hostile_sizes_are_format_errors(bad):
    raw = {"size": {"height": bad, "width": 4}, "tags": [], "objects": []}
    with pytest.raises(FormatError) as exc:
        Annotation.from_json(raw, META_OBJ, file="a.json")
    assert exc.value.json_path == "$.size.height" and len(str(exc.value)) < 200


def test_polygons_and_rectangles_reaching_far_out_rasterise_fast():
    far = 999_999_999
    objects = [polygon([[-far, -far], [far, -far], [far, far], [-far + i, far]]) for i in range(10)]
    objects += [
        {"classTitle": "box", "tags": [], "points": {"exterior": [[-far, -far], [far, far]], "interior": []}}
    ]
    ann = Annotation.from_json(_ann(objects), META_OBJ)
    started = time.perf_counter()
    mask = rasterize(ann, {"road": 1, "box": 2})
    assert time.perf_counter() - started < 2.0  # OpenCV alone took about 8 s per polygon
    assert (mask == 2).all()
    tri = Annotation.from_json(_ann([polygon([[5, 5], [far, 5], [far, 6], [5, 6]])]), META_OBJ)
    assert rasterize(tri, {"road": 1}).sum() == 2 * 59  # rows 5-6 from column 5 to the right edge
