"""Serving test helpers: a tiny checkpoint trained in a second to find bright discs, sample images, comparisons."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

INPUT_SIZE = 32
OUT_CLASSES = [
    {"title": "bg", "shape": "bitmap", "color": "#000000", "geometry_config": {}, "hotkey": ""},
    {"title": "disc", "shape": "bitmap", "color": "#FF3030", "geometry_config": {}, "hotkey": ""},
    {"title": "bar", "shape": "bitmap", "color": "#2080FF", "geometry_config": {}, "hotkey": ""},
]
CLASS_TITLE_TO_IDX = {"bg": 0, "disc": 1, "bar": 2}


def sample_image(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A dark noisy image with a bright disc (class disc) and a mid-grey bar (class bar)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.integers(height // 4, 3 * height // 4), rng.integers(width // 4, 3 * width // 4)
    r = max(3, min(height, width) // 5)
    img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = (230, 220, 210)
    top = int(rng.integers(0, height - 4))
    img[top : top + 4, :] = (120, 120, 120)
    return img


def _labels(img: np.ndarray) -> np.ndarray:
    bright = img.mean(axis=2)
    out = np.zeros(img.shape[:2], dtype=np.int64)
    out[bright > 180] = 1
    out[(bright > 90) & (bright <= 180)] = 2
    return out


def png_bytes(img: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


def build_tiny_checkpoint(path: Path) -> Path:
    """A 3-class `unet` (base 4, depth 2) trained for a few steps on synthetic images, saved as a checkpoint."""
    with one_torch_thread():
        return _train_and_save(path)


def _train_and_save(path: Path) -> Path:
    import torch

    from unetkit.models import create_model
    from unetkit.models.card import ClassMap, ModelCard, Preprocessing, Provenance
    from unetkit.models.checkpoint import save_checkpoint
    from unetkit.models.preprocess import normalize, resize_image, resize_labels

    torch.manual_seed(0)
    options = {"base_channels": 4, "depth": 2}
    model = create_model("unet", 3, in_channels=3, **options)
    imgs = [sample_image(1000 + i, INPUT_SIZE, INPUT_SIZE) for i in range(8)]
    x = torch.from_numpy(np.stack([normalize(resize_image(im, INPUT_SIZE, INPUT_SIZE)) for im in imgs]))
    y = torch.from_numpy(np.stack([resize_labels(_labels(im), INPUT_SIZE, INPUT_SIZE) for im in imgs]))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for _ in range(50):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    settings = {"input_size": {"width": INPUT_SIZE, "height": INPUT_SIZE}, "epochs": 1}
    card = ModelCard(
        model="unet",
        model_options=options,
        settings=settings,
        classes=ClassMap(out_classes=OUT_CLASSES, class_title_to_idx=CLASS_TITLE_TO_IDX),
        preprocessing=Preprocessing(input_size=(INPUT_SIZE, INPUT_SIZE)),
        provenance=Provenance(epoch=1.0, val_metrics={"loss": float(loss.detach())}),
    )
    return save_checkpoint(path, model, card)


def assert_same_classes(mask: np.ndarray, direct_probs: np.ndarray, tie: float = 1e-4) -> None:
    """``mask`` equals the argmax of ``direct_probs`` except where the top two classes are tied within ``tie``
    (batched and single forward passes may differ in the last float bits)."""
    expected = direct_probs.argmax(axis=2)
    assert mask.shape == expected.shape
    diff = mask != expected
    if diff.any():
        top2 = np.sort(direct_probs, axis=2)[:, :, -2:]
        gap = top2[:, :, 1] - top2[:, :, 0]
        assert (gap[diff] < tie).all(), f"{int(diff.sum())} pixels differ, not at ties"


def annotation_index_mask(ann: dict, title_to_idx: dict[str, int], default: int = -1) -> np.ndarray:
    """Rasterise the bitmap objects of an annotation JSON into a class-index map (later objects win)."""
    from unetkit.project import decode_bitmap_data

    h, w = ann["size"]["height"], ann["size"]["width"]
    out = np.full((h, w), default, dtype=np.int32)
    for obj in ann["objects"]:
        if obj.get("geometryType") != "bitmap" or obj["classTitle"] not in title_to_idx:
            continue
        bm = decode_bitmap_data(obj["bitmap"]["data"])
        x, y = obj["bitmap"]["origin"]
        out[y : y + bm.shape[0], x : x + bm.shape[1]][bm] = title_to_idx[obj["classTitle"]]
    return out


@contextlib.contextmanager
def one_torch_thread():
    """Tiny models run fastest on one thread; on a busy 2-core machine OpenMP spinning makes 2 threads ~20x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def serve_process(checkpoint: Path, *extra: str, startup_s: float = 90.0):
    """`python -m unetkit serve` on 127.0.0.1 and a free port, one CPU thread; yields the base URL."""
    from unetkit.serving.launch import serve_process as launch

    flags = ["--device", "cpu", "--threads", "1", "--log-level", "warning", *extra]
    with launch(checkpoint, *flags, startup_s=startup_s, env={"OMP_NUM_THREADS": "1"}) as url:
        yield url
