"""Defensive input parsing: images (formats, bombs, corruption), JSON parts, settings."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from unetkit.errors import ConfigError
from unetkit.serving.limits import (
    ApiError,
    ServeSettings,
    configure_pil,
    decode_image,
    parse_json_part,
    retry_after_seconds,
)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height but whose data is a few bytes (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


RGB = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_lossless_formats_round_trip(fmt):
    kw = {"lossless": True} if fmt == "WEBP" else {}
    out = decode_image(encode(Image.fromarray(RGB), fmt, **kw), max_pixels=1000)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, RGB)


def test_uploads_keep_their_channels_palette_becomes_rgb():
    assert decode_image(encode(Image.fromarray(RGB), "JPEG"), max_pixels=1000).shape == (5, 7, 3)
    gray = decode_image(encode(Image.fromarray(RGB[:, :, 0]), "PNG"), max_pixels=1000)
    np.testing.assert_array_equal(gray, RGB[:, :, :1])  # grey stays one channel (the model conforms it)
    rgba = np.dstack([RGB, np.full((5, 7), 7, np.uint8)])
    np.testing.assert_array_equal(decode_image(encode(Image.fromarray(rgba), "PNG"), max_pixels=1000), rgba)
    pal = Image.fromarray(RGB).convert("P")
    assert decode_image(encode(pal, "PNG"), max_pixels=1000).shape == (5, 7, 3)


def test_sixteen_bit_and_many_channel_tiff_keep_their_depth():
    import tifffile

    arr = (np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000).astype(np.uint16)
    out = decode_image(encode(Image.fromarray(arr), "PNG"), max_pixels=1000)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[:, :, 0], arr)
    cube = np.arange(5 * 7 * 6, dtype=np.uint16).reshape(5, 7, 6) * 300
    buf = io.BytesIO()
    tifffile.imwrite(buf, cube, photometric="minisblack", planarconfig="contig", compression="lzw")
    np.testing.assert_array_equal(decode_image(buf.getvalue(), max_pixels=1000), cube)
    with pytest.raises(ApiError) as info:
        decode_image(buf.getvalue(), max_pixels=20)
    assert info.value.status == 413 and "7x5" in info.value.detail


def test_pixel_limit_is_checked_from_the_header_before_decoding(monkeypatch):
    monkeypatch.setattr(
        Image, "MAX_IMAGE_PIXELS", None
    )  # our check alone (PIL's global is set by create_app)
    bomb = png_header_only(3000, 3000)  # 9·10^6 pixels declared, ~100 bytes sent
    with pytest.raises(ApiError) as info:
        decode_image(bomb, max_pixels=1_000_000)
    assert info.value.status == 413 and info.value.error == "image_too_large"
    assert "3000x3000" in info.value.detail


def test_huge_bomb_is_refused_by_pil_itself(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored afterwards
    configure_pil(1_000_000)
    assert Image.MAX_IMAGE_PIXELS == 1_000_000
    with pytest.raises(ApiError) as info:
        decode_image(png_header_only(100_000, 100_000), max_pixels=10**12)
    assert info.value.status == 413 and "pixels" in info.value.detail


def test_pixel_limit_boundary():
    data = encode(Image.fromarray(RGB), "PNG")
    assert decode_image(data, max_pixels=35).shape == (5, 7, 3)
    with pytest.raises(ApiError, match="35 pixels; the limit is 34"):
        decode_image(data, max_pixels=34)


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_image"),
        (b"hello, not an image", 415, "unsupported_image"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", 415, "unsupported_image"),
        (png_header_only(4, 4)[:30], 415, "unsupported_image"),
        (png_header_only(4, 4), 400, "corrupt_image"),
    ],
)
def test_bad_images(data, status, code):
    with pytest.raises(ApiError) as info:
        decode_image(data, max_pixels=10_000)
    assert (info.value.status, info.value.error) == (status, code)


def test_truncated_jpeg_is_corrupt():
    big = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(big), "JPEG")
    with pytest.raises(ApiError) as info:
        decode_image(data[: len(data) // 2], max_pixels=10_000)
    assert info.value.status == 400 and info.value.error == "corrupt_image"


def test_parse_json_part():
    assert parse_json_part(None, "mode") is None
    assert parse_json_part("  ", "mode") is None
    assert parse_json_part(b'{"name": "roi"}', "mode") == {"name": "roi"}
    assert parse_json_part('\ufeff{"a": 1}'.encode(), "meta") == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("{not json", "part 'mode' is not valid JSON"),
        ("[1, 2]", "must be a JSON object, got array"),
        ('"full_image"', "must be a JSON object, got string"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "part 'mode'"),
    ],
)
def test_parse_json_part_errors(raw, needle):
    with pytest.raises(ApiError) as info:
        parse_json_part(raw, "mode")
    assert info.value.status == 400 and info.value.error == "malformed_json"
    assert needle in info.value.detail


def test_settings_validation_and_retry_after():
    s = ServeSettings(max_upload_mb=1, max_batch=3)
    assert s.max_upload_bytes == 1024 * 1024 and s.thread_count == 6
    with pytest.raises(ConfigError, match=r"\$\.max_batch"):
        ServeSettings(max_batch=0)
    with pytest.raises(ConfigError, match="backend"):
        ServeSettings(backend="tensorflow")
    assert retry_after_seconds(0, 8, 0.0) == 1
    assert retry_after_seconds(64, 8, 0.5) == 4
