"""The bad-input table: every client mistake is a 4xx with {"error", "detail"}; the service keeps serving."""

from __future__ import annotations

import json

import pytest

from .helpers import png_bytes, sample_image
from .test_limits import png_header_only

GOOD = png_bytes(sample_image(3))
META = {"classes": [{"title": "lemon", "shape": "rectangle", "color": "#00FF00"}], "tags": []}
ANN = {
    "size": {"height": 48, "width": 64},
    "tags": [],
    "objects": [
        {"classTitle": "lemon", "tags": [], "points": {"exterior": [[1, 1], [9, 9]], "interior": []}}
    ],
}


def img(data: bytes = GOOD, name: str = "x.png") -> tuple:
    return (name, data, "application/octet-stream")


def j(obj) -> str:
    return json.dumps(obj)


# (id, method, path, request kwargs, status, error code, text expected in the detail)
CASES = [
    ("predict-no-image", "post", "/v1/predict", {"files": {"other": img()}}, 422, "invalid_request", "image"),
    (
        "predict-text",
        "post",
        "/v1/predict",
        {"files": {"image": img(b"just text")}},
        415,
        "unsupported_image",
        "not an image",
    ),
    ("predict-empty", "post", "/v1/predict", {"files": {"image": img(b"")}}, 400, "empty_image", "empty"),
    (
        "predict-truncated",
        "post",
        "/v1/predict",
        {"files": {"image": img(GOOD[: len(GOOD) // 2])}},
        400,
        "corrupt_image",
        "could not be decoded",
    ),
    (
        "predict-bomb",
        "post",
        "/v1/predict",
        {"files": {"image": img(png_header_only(1000, 1000))}},
        413,
        "image_too_large",
        "limit",
    ),
    (
        "predict-huge-bomb",
        "post",
        "/v1/predict",
        {"files": {"image": img(png_header_only(50_000, 50_000))}},
        413,
        "image_too_large",
        "limit",
    ),
    (
        "predict-too-big-upload",
        "post",
        "/v1/predict",
        {"files": {"image": img(b"\0" * (1024 * 1024 + 10))}},
        413,
        "request_too_large",
        "limit",
    ),
    (
        "predict-bad-format",
        "post",
        "/v1/predict?format=xml",
        {"files": {"image": img()}},
        422,
        "invalid_request",
        "format",
    ),
    (
        "predict-bad-probabilities",
        "post",
        "/v1/predict?probabilities=maybe",
        {"files": {"image": img()}},
        422,
        "invalid_request",
        "probabilities",
    ),
    (
        "infer-no-image",
        "post",
        "/model/inference",
        {"files": {"mode": ("m", b"{}", "text/plain")}},
        400,
        "missing_image",
        "'image' is required",
    ),
    (
        "infer-image-as-field",
        "post",
        "/model/inference",
        {"data": {"image": "abc"}},
        400,
        "invalid_image",
        "file upload",
    ),
    (
        "infer-mode-bad-json",
        "post",
        "/model/inference",
        {"files": {"image": img()}, "data": {"mode": "{name: roi"}},
        400,
        "malformed_json",
        "'mode' is not valid JSON",
    ),
    (
        "infer-mode-list",
        "post",
        "/model/inference",
        {"files": {"image": img()}, "data": {"mode": "[1]"}},
        400,
        "malformed_json",
        "JSON object",
    ),
    (
        "infer-meta-bad-json-file",
        "post",
        "/model/inference",
        {"files": {"image": img(), "meta": ("meta.json", b"{", "application/json")}},
        400,
        "malformed_json",
        "'meta'",
    ),
    (
        "infer-unknown-mode",
        "post",
        "/model/inference",
        {"files": {"image": img()}, "data": {"mode": j({"name": "magic"})}},
        400,
        "invalid_mode",
        "unknown mode 'magic'",
    ),
    (
        "infer-det-mode",
        "post",
        "/model/inference",
        {"files": {"image": img()}, "data": {"mode": j({"name": "sliding_window_det"})}},
        400,
        "invalid_mode",
        "sliding_window_det",
    ),
    (
        "infer-unknown-setting",
        "post",
        "/model/inference",
        {"files": {"image": img()}, "data": {"mode": j({"name": "roi", "bonds": {}})}},
        400,
        "invalid_mode",
        "$.bonds",
    ),
    (
        "infer-bad-bounds",
        "post",
        "/model/inference",
        {"files": {"image": img()}, "data": {"mode": j({"name": "roi", "bounds": {"left": "ten"}})}},
        400,
        "invalid_mode",
        "$.bounds.left",
    ),
    (
        "infer-overlap-too-high",
        "post",
        "/model/inference",
        {
            "files": {"image": img()},
            "data": {
                "mode": j(
                    {
                        "name": "sliding_window",
                        "window": {"width": 8, "height": 8},
                        "min_overlap": {"x": 8, "y": 0},
                    }
                )
            },
        },
        400,
        "invalid_mode",
        "overlap is too high",
    ),
    (
        "infer-window-too-large",
        "post",
        "/model/inference",
        {
            "files": {"image": img()},
            "data": {"mode": j({"name": "sliding_window", "window": {"width": 500, "height": 8}})},
        },
        400,
        "invalid_input",
        "larger than",
    ),
    (
        "infer-empty-roi",
        "post",
        "/model/inference",
        {
            "files": {"image": img()},
            "data": {"mode": j({"name": "roi", "bounds": {"left": "60%", "right": "60%"}})},
        },
        400,
        "invalid_mode",
        "ROI is empty",
    ),
    (
        "infer-suffix-clash",
        "post",
        "/model/inference",
        {
            "files": {"image": img()},
            "data": {
                "meta": j({"classes": [{"title": "bg", "shape": "bitmap", "color": "#000000"}]}),
                "mode": j({"model_classes": {"add_suffix": ""}}),
            },
        },
        400,
        "invalid_mode",
        "already exists",
    ),
    (
        "infer-ann-without-meta",
        "post",
        "/model/inference",
        {"files": {"image": img()}, "data": {"annotation": j(ANN)}},
        400,
        "invalid_input",
        "appropriate project meta",
    ),
    (
        "infer-ann-unknown-class",
        "post",
        "/model/inference",
        {
            "files": {"image": img()},
            "data": {
                "annotation": j({**ANN, "objects": [{**ANN["objects"][0], "classTitle": "pear"}]}),
                "meta": j(META),
            },
        },
        400,
        "invalid_format",
        "'pear'",
    ),
    (
        "infer-ann-wrong-size",
        "post",
        "/model/inference",
        {
            "files": {"image": img()},
            "data": {"annotation": j({**ANN, "size": {"height": 10, "width": 10}}), "meta": j(META)},
        },
        400,
        "invalid_format",
        "differs from the image size",
    ),
    (
        "infer-ann-no-objects",
        "post",
        "/model/inference",
        {
            "files": {"image": img()},
            "data": {"annotation": j({"size": {"height": 48, "width": 64}}), "meta": j(META)},
        },
        400,
        "invalid_format",
        "objects",
    ),
    (
        "infer-meta-bad-classes",
        "post",
        "/model/inference",
        {"files": {"image": img()}, "data": {"meta": j({"classes": "lemon"})}},
        400,
        "invalid_format",
        "meta",
    ),
    (
        "infer-unknown-part",
        "post",
        "/model/inference",
        {"files": {"image": img()}, "data": {"moed": "{}"}},
        400,
        "unknown_part",
        "moed",
    ),
    (
        "infer-duplicate-part",
        "post",
        "/model/inference",
        {"files": [("image", img()), ("image", img())]},
        400,
        "duplicate_part",
        "'image'",
    ),
    (
        "infer-json-body",
        "post",
        "/model/inference",
        {"json": {"image": "x"}},
        415,
        "unsupported_media_type",
        "multipart",
    ),
    (
        "infer-broken-multipart",
        "post",
        "/model/inference",
        {"content": b"garbage", "headers": {"content-type": "multipart/form-data"}},
        400,
        "malformed_form",
        "could not be parsed",
    ),
    (
        "infer-bomb",
        "post",
        "/model/inference",
        {"files": {"image": img(png_header_only(2000, 2000))}},
        413,
        "image_too_large",
        "limit",
    ),
    (
        "out-meta-bad-meta",
        "post",
        "/model/get_out_meta",
        {"data": {"meta": "{oops"}},
        400,
        "malformed_json",
        "'meta'",
    ),
    (
        "out-meta-unknown-mode",
        "post",
        "/model/get_out_meta",
        {"data": {"mode": j({"name": "fast"})}},
        400,
        "invalid_mode",
        "unknown mode",
    ),
    ("get-on-post-route", "get", "/model/inference", {}, 405, "method_not_allowed", ""),
    ("unknown-path", "get", "/v2/predict", {}, 404, "not_found", ""),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "needle"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_is_a_4xx_with_a_json_error(client, method, path, kwargs, status, code, needle):
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    assert needle in body["detail"]
    # and the service keeps serving
    assert client.post("/v1/predict", files={"image": img()}).status_code == 200


def chunked_multipart(total_mb: float = 2.5):
    """A valid multipart body streamed without Content-Length (chunked transfer encoding)."""
    yield b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
    yield b"Content-Type: image/png\r\n\r\n"
    for _ in range(int(total_mb * 16)):
        yield b"\0" * 65536
    yield b"\r\n--xyz--\r\n"


CHUNKED_HEADERS = {"content-type": "multipart/form-data; boundary=xyz"}


def test_chunked_upload_over_the_limit_is_cut_off(client):
    for path in ("/v1/predict", "/model/inference"):
        r = client.post(path, content=chunked_multipart(), headers=CHUNKED_HEADERS)
        assert r.status_code == 413 and r.json()["error"] == "request_too_large"
    assert client.get("/readyz").status_code == 200


def test_no_client_mistake_counted_as_a_server_error(client):
    for _, method, path, kwargs, *_rest in CASES:
        getattr(client, method)(path, **kwargs)
    stats = client.get("/v1/model").json()["service"]
    assert stats["internal_errors"] == 0 and stats["inflight"] == 0
