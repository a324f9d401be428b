"""Image files of every kind: round trips, TIFF layouts, headers, display pictures (generated fixtures)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from unetkit.errors import FormatError
from unetkit.project.images import (
    decode_pixels,
    display_rgb,
    encode_pixels,
    map_channels,
    pixel_info,
    read_pixels,
)

LOSSLESS = {
    (np.uint8, 1): (".png", ".tif", ".bmp", ".gif"),
    (np.uint8, 3): (".png", ".tif", ".bmp"),
    (np.uint8, 4): (".png", ".tif"),
    (np.uint16, 1): (".png", ".tif"),
    (np.uint16, 3): (".png", ".tif"),
    (np.uint16, 4): (".png", ".tif"),
    (np.uint16, 7): (".tif",),
    (np.float32, 1): (".tif",),
    (np.float32, 5): (".tif",),
}


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(LOSSLESS, key=str)),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_lossless_round_trip_keeps_depth_and_channels(kind, h, w, seed, data):
    dtype, c = kind
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        px = rng.normal(0, 1000, (h, w, c)).astype(np.float32)
    else:
        px = rng.integers(0, np.iinfo(dtype).max, (h, w, c), endpoint=True).astype(dtype)
    ext = data.draw(st.sampled_from(LOSSLESS[kind]))
    if ext == ".gif":
        px = (px // 64) * 64  # few grey levels: GIF stores a 256-colour palette
    out = decode_pixels(encode_pixels(px, ext), f"x{ext}")
    assert out.dtype == dtype and out.shape == (h, w, c)
    np.testing.assert_array_equal(out, px)


@pytest.mark.parametrize("compression", [None, "lzw", "zlib"])
def test_tiff_layouts_as_instruments_write_them(tmp_path, compression):
    cube = np.arange(6 * 5 * 4, dtype=np.uint16).reshape(6, 5, 4) * 97
    contig, planes, pages = tmp_path / "contig.tif", tmp_path / "planar.tif", tmp_path / "pages.tiff"
    tifffile.imwrite(contig, cube, photometric="minisblack", planarconfig="contig", compression=compression)
    tifffile.imwrite(planes, cube.transpose(2, 0, 1), photometric="minisblack", planarconfig="separate",
                     compression=compression)  # fmt: skip
    tifffile.imwrite(pages, cube.transpose(2, 0, 1), photometric="minisblack", compression=compression)
    for path in (contig, planes, pages):
        np.testing.assert_array_equal(read_pixels(path), cube)
        info = pixel_info(path)
        assert (info.height, info.width, info.channels, info.dtype) == (6, 5, 4, "uint16")
    rgb = np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb", compression=compression)
    np.testing.assert_array_equal(read_pixels(tmp_path / "rgb.tif"), rgb)


def test_not_a_2d_image_and_broken_files(tmp_path):
    tifffile.imwrite(tmp_path / "vol.tif", np.zeros((2, 3, 4, 5), np.uint8), photometric="minisblack")
    with pytest.raises(FormatError, match=r"vol\.tif: not a 2-D image"):
        read_pixels(tmp_path / "vol.tif")
    (tmp_path / "cut.png").write_bytes(encode_pixels(np.zeros((8, 8, 3), np.uint8), ".png")[:30])
    with pytest.raises(FormatError, match=r"cut\.png: cannot decode image"):
        read_pixels(tmp_path / "cut.png")
    with pytest.raises(FormatError, match=r"\.jpg cannot hold uint16"):
        encode_pixels(np.zeros((4, 4, 3), np.uint16), ".jpg")


def test_grey_gif_mask_is_one_channel(tmp_path):
    mask = np.zeros((5, 6), np.uint8)
    mask[1:3, 2:5] = 255
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="GIF")
    np.testing.assert_array_equal(decode_pixels(buf.getvalue(), "m.gif"), mask[:, :, None])
    path = tmp_path / "m.gif"
    path.write_bytes(buf.getvalue())
    assert pixel_info(path).channels == 1


def test_grey_jpeg_stays_one_channel_and_palette_gif_becomes_rgb(tmp_path):
    grey = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    Image.fromarray(grey).save(tmp_path / "g.jpg", quality=100)
    assert read_pixels(tmp_path / "g.jpg").shape == (16, 16, 1)
    assert pixel_info(tmp_path / "g.jpg").channels == 1
    colours = np.zeros((4, 4, 3), np.uint8)
    colours[:2] = (255, 0, 0)
    Image.fromarray(colours).convert("P").save(tmp_path / "p.gif")
    np.testing.assert_array_equal(read_pixels(tmp_path / "p.gif"), colours)


def test_display_rgb_windows_sixteen_bit_and_picks_channels():
    ramp = np.linspace(1000, 1400, 100, dtype=np.float32).reshape(10, 10).astype(np.uint16)
    shown = display_rgb(ramp)
    assert shown.dtype == np.uint8 and shown.shape == (10, 10, 3)
    assert shown.min() == 0 and shown.max() == 255  # the window spans the data, not 0..65535
    many = np.stack([np.full((2, 2), v, np.uint8) for v in (10, 20, 30, 40, 50)], axis=2)
    np.testing.assert_array_equal(display_rgb(many)[0, 0], (10, 20, 30))
    np.testing.assert_array_equal(display_rgb(many, channels=(4, 3, 0))[0, 0], (50, 40, 10))


def test_map_channels_keeps_the_channel_axis():
    import cv2

    for c in (1, 3, 6):
        px = np.random.default_rng(c).random((8, 9, c)).astype(np.float32)
        out = map_channels(lambda a: cv2.resize(a, (4, 5)), px)
        assert out.shape == (5, 4, c)


def test_header_info_matches_decoded_pixels(tmp_path):
    cases = {
        "a.png": np.zeros((5, 7, 4), np.uint8),
        "b.png": np.zeros((5, 7, 1), np.uint16),
        "c.bmp": np.zeros((5, 7, 3), np.uint8),
        "d.tif": np.zeros((5, 7, 2), np.float32),
    }
    for name, px in cases.items():
        (tmp_path / name).write_bytes(encode_pixels(px, name[-4:]))
        info, out = pixel_info(tmp_path / name), read_pixels(tmp_path / name)
        assert (info.height, info.width, info.channels, info.dtype) == (*out.shape, out.dtype.name), name


def test_decode_sniffs_tiff_without_a_name():
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ones((3, 3), np.uint16) * 700)
    out = decode_pixels(buf.getvalue())
    assert out.dtype == np.uint16 and out.shape == (3, 3, 1) and int(out.max()) == 700
