"""Image files as they ship: 8/16-bit and float, 1, 3, 4 or more channels, every extension the current SDK takes.

*Pixels* are numpy arrays H×W×C (always three axes; C ≥ 1) of dtype uint8, uint16 or float32, colour channels in
RGB(A) order. TIFF is read with tifffile (uncompressed, LZW, deflate, … through imagecodecs), GIF/AVIF/HEIC with
Pillow, everything else with OpenCV (EXIF orientation applied to JPEG-like files). :func:`display_rgb` turns any
pixels into an RGB uint8 picture for overlays and the web page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from unetkit.errors import FormatError
from unetkit.project.limits import check_pixels

# Sizes are checked against unetkit's own cap (UNETKIT_MAX_PIXELS) from the header before decoding; PIL's fixed
# check would refuse some images that cap allows and hide the size of those it refuses.
Image.MAX_IMAGE_PIXELS = None

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".mpo", ".jfif", ".bmp", ".png", ".webp", ".tif", ".tiff", ".gif", ".avif", ".heic", ".heif",
)  # fmt: skip
TIFF_EXTENSIONS = (".tif", ".tiff")
_PIL_ONLY = (".gif", ".avif", ".heic", ".heif")
_ORIENTED = (".jpg", ".jpeg", ".mpo", ".jfif", ".webp")  # OpenCV applies EXIF orientation when decoding these
PIXEL_TYPES = (np.uint8, np.uint16, np.float32)


@dataclass(frozen=True)
class PixelInfo:
    """What a file holds: height, width, channels and the numpy dtype name of its pixels."""

    height: int
    width: int
    channels: int
    dtype: str


def _register_heif() -> None:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # pragma: no cover - optional codec
        return
    register_heif_opener()


def as_pixels(array: np.ndarray, *, file: object | None = None) -> np.ndarray:
    """An image array in the pixel layout (H×W×C; uint8, uint16 or float32)."""
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype in (np.int8, np.int16, np.int32, np.uint32, np.int64, np.float16, np.float64):
        a = a.astype(np.float32)
    if a.dtype not in PIXEL_TYPES:
        raise FormatError(f"unsupported pixel type {a.dtype}", file=file)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise FormatError(f"not a 2-D image (array shape {a.shape})", file=file)
    return a


def _tiff_pixels(data: bytes, path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        series = tif.series[0]
        axes, arr = series.axes, series.asarray()
    extra = [i for i, ax in enumerate(axes) if ax not in "YX"]
    if len(extra) > 1 or "Y" not in axes or "X" not in axes:
        raise FormatError(f"not a 2-D image: TIFF axes {axes} with shape {arr.shape}", file=path)
    order = [axes.index("Y"), axes.index("X")] + extra
    return np.ascontiguousarray(np.transpose(arr, order))


def _grey_palette(pil: Image.Image) -> bool:
    if "transparency" in pil.info or pil.mode == "PA":
        return False
    used = np.unique(np.asarray(pil))
    palette = np.asarray(pil.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
    if used.size == 0 or used.max() >= len(palette):
        return False
    rgb = palette[used]
    return bool((rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all())


def _pil_pixels(data: bytes, path: Path) -> np.ndarray:
    _register_heif()
    with Image.open(io.BytesIO(data)) as pil:
        pil = ImageOps.exif_transpose(pil)
        if pil.mode in ("P", "PA") and _grey_palette(pil):
            pil = pil.convert("L")  # e.g. GIF masks: a palette of greys is one channel
        elif pil.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
            pil = pil.convert("RGBA" if "transparency" in pil.info or pil.mode == "PA" else "RGB")
        elif pil.mode == "1":
            pil = pil.convert("L")
        elif pil.mode.startswith("I;16"):
            return np.asarray(pil).astype(np.uint16)
        return np.asarray(pil)


def _cv_pixels(data: bytes, ext: str) -> np.ndarray | None:
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR if ext in _ORIENTED else cv2.IMREAD_UNCHANGED
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if img is None:
        return None
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def decode_pixels(data: bytes, name: str = "", *, file: object | None = None) -> np.ndarray:
    """Decode an encoded image (the format is sniffed; ``name`` gives the extension hint) into pixels."""
    file = file if file is not None else name
    ext = Path(name).suffix.lower()
    _check_header(data, file)
    if _truncated_jpeg(data):  # OpenCV would decode the part that is there, with only a warning on stderr
        raise FormatError(
            "cannot decode image: truncated JPEG (the file ends before the image does)", file=file
        )
    try:
        if ext in TIFF_EXTENSIONS or data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return as_pixels(_tiff_pixels(data, Path(str(file))), file=file)
        img = None if ext in _PIL_ONLY else _cv_pixels(data, ext)
        if img is None:
            img = _pil_pixels(data, Path(str(file)))
        return as_pixels(img, file=file)
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a broken file
        raise FormatError(f"cannot decode image: {type(exc).__name__}: {exc}", file=file) from None


def _check_header(data: bytes, file) -> None:
    """Refuse an image whose header size is over the pixel cap, before any decoder allocates it."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Exception:  # noqa: BLE001 - the decoders report what is wrong with the file
        return
    check_pixels(width, height, "image", file=file)


def _truncated_jpeg(data: bytes) -> bool:
    """A JPEG that stops before its end-of-image marker and that PIL, decoding it, finds truncated."""
    if not data.startswith(b"\xff\xd8") or data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - other problems are reported by the decoders
        return False
    return False


def read_pixels(path) -> np.ndarray:
    """Read an image file as pixels (H×W×C, native bit depth and channel count)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read image: {exc}", file=path) from None
    return decode_pixels(data, path.name, file=path)


def pixel_info(path) -> PixelInfo:
    """Size, channels and pixel type of an image file, from its header where the format allows it."""
    path = Path(path)
    if path.suffix.lower() in TIFF_EXTENSIONS:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                axes, shape, dtype = series.axes, series.shape, series.dtype
        except Exception as exc:  # noqa: BLE001
            raise FormatError(f"cannot read image: {type(exc).__name__}: {exc}", file=path) from None
        sizes = dict(zip(axes, shape))
        channels = int(np.prod([n for ax, n in sizes.items() if ax not in "YX"]))
        check_pixels(sizes.get("X", 0), sizes.get("Y", 0), "image", file=path)
        return PixelInfo(sizes.get("Y", 0), sizes.get("X", 0), channels, np.dtype(dtype).name)
    try:
        _register_heif()
        with Image.open(path) as im:
            w, h = im.size
            check_pixels(w, h, "image", file=path)  # before getexif(), which decodes a whole PNG
            orientation = im.getexif().get(0x0112, 1)
            mode = im.mode
            transparent = "transparency" in im.info
            grey_palette = mode in ("P", "PA") and _grey_palette(im)
    except FormatError:
        raise
    except Exception:  # noqa: BLE001 - decode fully when the header is not enough
        px = read_pixels(path)
        return PixelInfo(px.shape[0], px.shape[1], px.shape[2], px.dtype.name)
    channels = {"1": 1, "L": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "I": 1, "F": 1, "LA": 2, "RGBA": 4}.get(
        mode, 3
    )
    if mode in ("P", "PA"):
        channels = 1 if grey_palette else 4 if transparent or mode == "PA" else 3
    dtype = {"I;16": "uint16", "I;16B": "uint16", "I;16L": "uint16", "I": "float32", "F": "float32"}.get(
        mode, "uint8"
    )
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return PixelInfo(h, w, channels, dtype)


def encode_pixels(image: np.ndarray, ext: str) -> bytes:
    """Encode pixels in the format of ``ext``; 16-bit and float go to PNG/TIFF, more than 4 channels to TIFF."""
    px = as_pixels(image)
    ext = ext.lower()
    if ext in TIFF_EXTENSIONS:
        import tifffile

        buf = io.BytesIO()
        photometric = "rgb" if px.shape[2] in (3, 4) and px.dtype == np.uint8 else "minisblack"
        extras = {"extrasamples": ["unassalpha"]} if photometric == "rgb" and px.shape[2] == 4 else {}
        if px.shape[2] > 1:
            extras["planarconfig"] = "contig"  # samples per pixel (YXS), not pages
        tifffile.imwrite(buf, px if px.shape[2] > 1 else px[:, :, 0], photometric=photometric,
                         compression="zlib", **extras)  # fmt: skip
        return buf.getvalue()
    if ext in _PIL_ONLY:
        if px.dtype != np.uint8 or px.shape[2] not in (1, 3, 4):
            raise FormatError(
                f"{ext} holds 8-bit images with 1, 3 or 4 channels, not {px.dtype} × {px.shape[2]}"
            )
        buf = io.BytesIO()
        _register_heif()
        fmt = {".gif": "GIF", ".avif": "AVIF", ".heic": "HEIF", ".heif": "HEIF"}[ext]
        Image.fromarray(px[:, :, 0] if px.shape[2] == 1 else px).save(buf, format=fmt)
        return buf.getvalue()
    if (
        px.shape[2] > 4
        or px.shape[2] == 2
        or px.dtype == np.float32
        or (px.dtype == np.uint16 and ext != ".png")
    ):
        raise FormatError(
            f"{ext} cannot hold {px.dtype} images with {px.shape[2]} channels; use .tif (or .png for 16-bit)"
        )
    if px.shape[2] == 3:
        px = cv2.cvtColor(px, cv2.COLOR_RGB2BGR)
    elif px.shape[2] == 4:
        px = cv2.cvtColor(px, cv2.COLOR_RGBA2BGRA)
    cv_ext = ".jpg" if ext in (".mpo", ".jfif") else ext
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if cv_ext in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(cv_ext, px, params)
    if not ok:
        raise FormatError(f"cannot encode image as {ext}")
    return data.tobytes()


def display_rgb(image: np.ndarray, channels: tuple[int, ...] | None = None) -> np.ndarray:
    """Any pixels → RGB uint8 for viewing: 8-bit as is; 16-bit and float through a 0.5–99.5 percentile window per
    channel; one channel repeated to grey; ``channels`` (default: the first three) chosen from many."""
    px = as_pixels(image)
    c = px.shape[2]
    if channels is None:
        channels = (0, 1, 2) if c >= 3 else (0, 0, 0) if c in (1, 2) else (0,)
    if max(channels) >= c:
        raise FormatError(f"channel {max(channels)} asked for, but the image has {c} channel(s)")
    px = px[:, :, list(channels)]
    if px.dtype != np.uint8:
        x = px.astype(np.float32)
        finite = np.isfinite(x)
        out = np.zeros(x.shape, np.uint8)
        for i in range(x.shape[2]):
            vals = x[:, :, i][finite[:, :, i]]
            if vals.size == 0:
                continue
            sample = vals[:: max(1, vals.size // 1_000_000)]
            lo, hi = np.percentile(sample, (0.5, 99.5))
            scaled = (np.nan_to_num(x[:, :, i], nan=lo) - lo) * (255.0 / max(hi - lo, 1e-12))
            out[:, :, i] = np.clip(scaled, 0, 255).astype(np.uint8)
        px = out
    return np.ascontiguousarray(px)


def map_channels(fn, image: np.ndarray) -> np.ndarray:
    """Apply an OpenCV image function ``fn`` (which takes 1–4 channels) to pixels of any channel count, keeping
    the H×W×C layout (OpenCV drops a single channel axis and refuses more than four channels)."""
    if image.ndim == 2:
        return fn(image)
    c = image.shape[2]
    if 2 <= c <= 4:
        return fn(image)
    parts = [fn(np.ascontiguousarray(image[:, :, i])) for i in range(c)]
    return np.stack(parts, axis=2)
