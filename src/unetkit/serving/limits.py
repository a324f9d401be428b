"""Serving limits and defensive parsing of client input (images, JSON parts, upload size).

Every problem a client can cause becomes an :class:`ApiError` (a 4xx with a JSON body
``{"error": <code>, "detail": <what is wrong>}``), never a 500.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from unetkit.errors import ConfigError, UnetkitError
from unetkit.project.images import decode_pixels

# Formats a client may upload (JPEG includes MPO). PIL can open many more (EPS calls Ghostscript, PSD, ...): they are refused.
ALLOWED_IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF")


class ApiError(Exception):
    """A client-visible error: HTTP status, a short machine-readable code and a human-readable detail."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.error, "detail": self.detail}


@dataclass(frozen=True)
class ServeSettings:
    """Tunables of the HTTP service (CLI flags of `unetkit serve`)."""

    backend: str = "torch"
    device: str = "auto"
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    timeout_s: float = 60.0
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    workers: int = 0  # request-processing threads; 0 = derived from max_batch

    def __post_init__(self) -> None:
        checks = {
            "backend": self.backend in ("torch", "onnxruntime"),
            "max_batch": self.max_batch >= 1,
            "max_wait_ms": self.max_wait_ms >= 0,
            "max_queue": self.max_queue >= 1,
            "timeout_s": self.timeout_s > 0,
            "max_upload_mb": self.max_upload_mb > 0,
            "max_pixels": self.max_pixels >= 1,
            "workers": self.workers >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"invalid serve setting {name}={getattr(self, name)!r}", json_path=f"$.{name}"
                )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def thread_count(self) -> int:
        return self.workers or max(4, 2 * self.max_batch)

    def to_json(self) -> dict:
        return asdict(self)


def configure_pil(max_pixels: int | None) -> int | None:
    """Make PIL itself refuse decompression bombs above the serving limit (belt and braces).

    Returns the previous value (``None`` = PIL's check disabled) so that it can be restored.
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None if max_pixels is None else max(int(max_pixels), 1)
    return previous


def decode_image(data: bytes, *, max_pixels: int, part: str = "image") -> np.ndarray:
    """Bytes of an uploaded image → pixels H×W×C at their own bit depth and channel count (see
    ``unetkit.project.images``), checking the pixel count from the header before decoding."""
    if not data:
        raise ApiError(400, "empty_image", f"part {part!r} is empty")
    try:
        if data[:4] in _TIFF_MAGIC:  # many-channel and 16-bit TIFF: header through tifffile
            width, height = _tiff_size(data)
            check_pixels(width, height, max_pixels, part)
        else:
            with warnings.catch_warnings():
                # PIL warns above MAX_IMAGE_PIXELS (our own check below says more) and raises above twice that.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data), formats=ALLOWED_IMAGE_FORMATS) as img:
                    width, height = img.size  # from the header only; nothing decoded yet
                    check_pixels(width, height, max_pixels, part)
        pixels = decode_pixels(data, file=part)
    except ApiError:
        raise
    except Image.DecompressionBombError as exc:
        raise ApiError(
            413, "image_too_large", f"part {part!r} is too large (limit {max_pixels} pixels): {exc}"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ApiError(
            415,
            "unsupported_image",
            f"part {part!r} is not an image in a supported format ({', '.join(ALLOWED_IMAGE_FORMATS)})",
        ) from exc
    except (UnetkitError, OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ApiError(400, "corrupt_image", f"part {part!r} could not be decoded: {exc}") from exc
    return pixels


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _tiff_size(data: bytes) -> tuple[int, int]:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        series = tif.series[0]
        sizes = dict(zip(series.axes, series.shape))
    return int(sizes.get("X", 0)), int(sizes.get("Y", 0))


def check_pixels(width: int, height: int, max_pixels: int, part: str = "image") -> None:
    if width * height > max_pixels:
        raise ApiError(
            413,
            "image_too_large",
            f"part {part!r} is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
        )


def parse_json_part(raw: bytes | str | None, part: str, *, expect: type = dict) -> object | None:
    """Parse an optional JSON part (file or form field); None when absent or blank."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ApiError(400, "malformed_json", f"part {part!r} is not UTF-8 text: {exc}") from exc
    if not raw.strip():
        return None
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise ApiError(400, "malformed_json", f"part {part!r} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ApiError(400, "malformed_json", f"part {part!r} is nested too deeply") from exc
    if not isinstance(value, expect):
        raise ApiError(
            400,
            "malformed_json",
            f"part {part!r} must be a JSON {_json_type_name(expect)}, got {_json_type_name(type(value))}",
        )
    return value


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _json_type_name(tp: type) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        int: "number",
        float: "number",
        bool: "boolean",
    }.get(tp, "null" if tp is type(None) else tp.__name__)


def retry_after_seconds(queued: int, max_batch: int, mean_batch_s: float) -> int:
    """A Retry-After estimate: time to drain the queue at the observed batch speed, at least 1 s."""
    batches = math.ceil(max(queued, 1) / max(max_batch, 1))
    return max(1, math.ceil(batches * max(mean_batch_s, 0.05)))
