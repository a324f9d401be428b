import base64
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unetkit.project import Bitmap, decode_bitmap_data, encode_bitmap_data

DOCS_EXAMPLE = "eJzrDPBz5+WS4mJgYOD19HAJAtLMIMwIInOeqf8BUmwBPiGuQPr///9Lb86/C2QxlgT5BTM4PLuRBuTwebo4hlTMSa44cOHAB6DqY0yORgq8YkAZBk9XP5d1TglNANAFGzA="


def png_chunks(png: bytes) -> dict[str, bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8].decode("ascii")
        chunks.setdefault(kind, b"")
        chunks[kind] += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return chunks


def test_docs_example_decodes_to_111_100_111():
    mask = decode_bitmap_data(DOCS_EXAMPLE)
    assert mask.dtype == bool
    assert mask.astype(int).tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 1]]


def test_encoded_png_is_1bit_palette_with_trns():
    mask = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)
    data = encode_bitmap_data(mask)
    assert data.startswith("eJ")
    png = zlib.decompress(base64.b64decode(data))
    chunks = png_chunks(png)
    width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks["IHDR"])
    assert (width, height, bit_depth, colour_type, interlace) == (4, 3, 1, 3, 0)
    assert chunks["PLTE"] == bytes([0, 0, 0, 255, 255, 255])
    assert chunks["tRNS"][:1] == b"\x00"
    # a third-party reader that takes the alpha channel (the docs' minimal reader) gets the mask back
    rgba = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (3, 4, 4)
    assert np.array_equal(rgba[:, :, 3] != 0, mask)
    assert np.array_equal(decode_bitmap_data(data), mask)


def _png_b64(img: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", img)
    assert ok
    return base64.b64encode(zlib.compress(png.tobytes())).decode()


def test_decode_accepts_rgba_and_grayscale_rejects_rgb():
    mask = np.array([[0, 1], [1, 1]], dtype=bool)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[:, :, 3] = mask * 255
    assert np.array_equal(decode_bitmap_data(_png_b64(rgba)), mask)
    assert np.array_equal(decode_bitmap_data(_png_b64(mask.astype(np.uint8) * 7)), mask)
    with pytest.raises(ValueError, match="wrong internal mask format"):
        decode_bitmap_data(_png_b64(np.full((2, 2, 3), 255, np.uint8)))


@pytest.mark.parametrize(
    "data, message",
    [
        ("not base64!!", "invalid base64"),
        (base64.b64encode(b"plain bytes").decode(), "invalid zlib"),
        (base64.b64encode(zlib.compress(b"not a png")).decode(), "not a PNG"),
    ],
)
def test_decode_errors(data, message):
    with pytest.raises(ValueError, match=message):
        decode_bitmap_data(data)


@settings(max_examples=50, deadline=None)
@given(
    arrays(bool, st.tuples(st.integers(1, 40), st.integers(1, 40))), st.integers(0, 50), st.integers(0, 50)
)
def test_codec_round_trip(mask, ox, oy):
    if not mask.any():
        assert Bitmap.from_full_mask(mask) is None
        return
    bm = Bitmap((ox, oy), mask)
    # tight crop: the first/last rows and columns of the stored mask contain a True pixel
    assert bm.mask[0].any() and bm.mask[-1].any() and bm.mask[:, 0].any() and bm.mask[:, -1].any()
    decoded = decode_bitmap_data(encode_bitmap_data(bm.mask))
    assert np.array_equal(decoded, bm.mask)
    full = bm.full_mask(oy + mask.shape[0], ox + mask.shape[1])
    assert np.array_equal(full[oy:, ox:], mask)
    assert full.sum() == mask.sum()


def test_decode_accepts_uncompressed_base64_png():
    mask = np.array([[1, 0], [1, 1]], dtype=bool)
    png = zlib.decompress(base64.b64decode(encode_bitmap_data(mask)))
    assert np.array_equal(decode_bitmap_data(base64.b64encode(png).decode()), mask)
