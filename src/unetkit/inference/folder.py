"""Folder inference: a folder of images in, one mask file per image out (``unetkit infer --images DIR``).

Every image file directly in the input folder (not its subfolders; hidden files and files whose suffix is not an
image format :mod:`unetkit.project.images` reads are left out) goes through :meth:`Predictor.predict` with the
given inference settings, so its mask is the one ``Predictor.predict``, ``infer --project`` and ``serve`` make.
What is written for an image ``<stem>.<ext>``:

* ``<stem>.png``: the class-index mask (model output indices, class_title_to_idx; uint8, uint16 for more than 256
  classes). A multi-label model writes ``<stem>_<class>.png`` per class instead (0 / 255), ``<class>`` being the
  class title with every character other than letters, digits, ``.``, ``-`` and ``_`` replaced by ``_``;
* ``<stem>_probabilities.npy`` (``probabilities=True``): float16 H×W×K, channel k = output index k;
* ``<stem>_overlay.png`` (``overlays=True``): the image blended with the class colours (background left out);

plus ``classes.json``: the index table (``class_title_to_idx``, ``colors``, ``multilabel``, the mask files of each
class). The output folder is built in a hidden sibling and renamed into place at the end: an error leaves nothing
behind. No import of unetkit.training.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetkit import atomic
from unetkit.errors import ConfigError, FormatError, UnetkitError
from unetkit.inference.predictor import Predictor
from unetkit.inference_config import InferenceConfig
from unetkit.progress import progress_bar
from unetkit.project.images import IMAGE_EXTENSIONS, display_rgb, encode_pixels, read_pixels
from unetkit.project.meta import color_to_rgb
from unetkit.project.output_folder import new_output_folder

OVERLAY_ALPHA = 0.5
CLASSES_FILE = "classes.json"


@dataclass
class FolderStats:
    images: int
    skipped: int  # files of the folder that are not images (by suffix)
    seconds: float
    forward_seconds: float  # in Predictor.predict (model, TTA, stitching, clean-up)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")


def list_images(folder) -> tuple[list[Path], int]:
    """The image files directly in ``folder`` (sorted by name) and how many other files it holds (hidden files
    and subfolders are not counted)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError("the image folder does not exist or is not a folder", file=folder)
    images, other = [], 0
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            images.append(path)
        else:
            other += 1
    if not images:
        raise FormatError(
            "no image files in the folder (subfolders are not searched; formats: "
            + ", ".join(IMAGE_EXTENSIONS)
            + ")",
            file=folder,
        )
    return images, other


def safe_name(title: str) -> str:
    """A class title as part of a file name."""
    return re.sub(r"[^\w.-]", "_", title) or "_"


def output_names(stem: str, predictor: Predictor, probabilities: bool, overlays: bool) -> list[str]:
    """The files one image ``<stem>.<ext>`` becomes."""
    if predictor.multilabel:
        names = [f"{stem}_{safe_name(mc.title)}.png" for mc in predictor.classes]
    else:
        names = [f"{stem}.png"]
    if probabilities:
        names.append(f"{stem}_probabilities.npy")
    if overlays:
        names.append(f"{stem}_overlay.png")
    return names


def _plan(images: list[Path], predictor, probabilities: bool, overlays: bool) -> list[list[str]]:
    """Output names per image; two inputs that would write the same file (``a.png`` and ``a.jpg``) are refused."""
    if predictor.multilabel:
        files = [safe_name(mc.title) for mc in predictor.classes]
        same = next((t for t in files if files.count(t) > 1), None)
        if same is not None:
            titles = [mc.title for mc, t in zip(predictor.classes, files) if t == same]
            raise FormatError(
                f"the model classes {' and '.join(map(repr, titles))} would share the mask file "
                f"<stem>_{same}.png; use --project for this model"
            )
    owner: dict[str, Path] = {}
    plan = []
    for path in images:
        names = output_names(path.stem, predictor, probabilities, overlays)
        for name in names:
            other = owner.setdefault(name, path)
            if other != path:
                raise FormatError(
                    f"{other.name} and {path.name} would both be written as {name}; rename one of them",
                    file=path.parent,
                )
        plan.append(names)
    return plan


def check_mode(config: InferenceConfig, config_file=None) -> None:
    """Folder inference has no input objects: bboxes mode (boxes around input objects) cannot run."""
    if config.mode.name == "bboxes":
        raise ConfigError(
            "mode bboxes runs the model inside the input objects' boxes, and a folder of images has none: use "
            "--project, or a full_image / roi / sliding_window config",
            file=config_file,
            json_path="$.mode.name",
        )


def mask_dtype(num_classes: int):
    return np.uint8 if num_classes <= 256 else np.uint16


def overlay(image: np.ndarray, prediction, multilabel: bool, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The image (as :func:`display_rgb` shows it) blended with the colour of each class present; the background
    class (output index 0 of a softmax model) is not drawn. Multi-label classes are drawn in index order."""
    picture = display_rgb(image)
    drawing = np.zeros_like(picture)
    covered = np.zeros(picture.shape[:2], bool)
    for mc in prediction.classes:
        if not multilabel and mc.index == 0:
            continue
        region = prediction.class_mask(mc.index)
        drawing[region] = color_to_rgb(mc.color)
        covered |= region
    out = picture.copy()
    blended = picture[covered].astype(np.float32) * (1 - alpha) + drawing[covered].astype(np.float32) * alpha
    out[covered] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out


def _write_png(path: Path, pixels: np.ndarray) -> None:
    atomic.write_bytes(path, encode_pixels(pixels, ".png"))


def _write_npy(path: Path, array: np.ndarray) -> None:
    atomic.write_file(path, lambda fh: np.save(fh, array, allow_pickle=False))


def _with_file(exc: UnetkitError, path: Path) -> UnetkitError:
    return exc if exc.file is not None else type(exc)(exc.message, file=path, json_path=exc.json_path)


def write_outputs(staging: Path, names: list[str], image, prediction, predictor, probabilities, overlays):
    multilabel = predictor.multilabel
    if multilabel:
        for mc, name in zip(predictor.classes, names):
            _write_png(staging / name, prediction.class_mask(mc.index).astype(np.uint8) * 255)
    else:
        _write_png(staging / names[0], prediction.mask.astype(mask_dtype(predictor.num_classes)))
    rest = names[len(predictor.classes) if multilabel else 1 :]
    if probabilities:
        _write_npy(staging / rest.pop(0), prediction.probabilities.astype(np.float16))
    if overlays:
        _write_png(staging / rest.pop(0), overlay(image, prediction, multilabel))


def class_table(predictor: Predictor) -> dict:
    """The index table written to classes.json."""
    table = {
        "class_title_to_idx": {mc.title: mc.index for mc in predictor.classes},
        "colors": {mc.title: list(color_to_rgb(mc.color)) for mc in predictor.classes},
        "multilabel": predictor.multilabel,
    }
    if predictor.multilabel:
        table["mask_files"] = {mc.title: f"<stem>_{safe_name(mc.title)}.png" for mc in predictor.classes}
    else:
        table["mask_files"] = "<stem>.png"
    return table


def infer_folder(
    predictor: Predictor,
    images_dir,
    out_dir,
    config: InferenceConfig | None = None,
    *,
    probabilities: bool = False,
    overlays: bool = False,
    workers: int = 2,
    progress: bool = False,
    config_file=None,
) -> FolderStats:
    """Apply ``predictor`` with ``config`` (default: the predictor's settings) to every image of ``images_dir``
    and write the masks (and probabilities / overlays when asked) to the new folder ``out_dir``."""
    from unetkit.inference.batch import _prefetch
    from unetkit.inference.modes import build_runner

    config = predictor.settings if config is None else config
    check_mode(config, config_file)
    try:
        build_runner(config, None, predictor)  # config errors before any image is read
    except ConfigError as exc:
        raise ConfigError(exc.message, file=config_file, json_path=exc.json_path) from None
    images, skipped = list_images(images_dir)
    plan = _plan(images, predictor, probabilities, overlays)

    def load(path: Path):  # on a reader thread
        return read_pixels(path)

    start, forward, done = time.perf_counter(), 0.0, 0
    with new_output_folder(out_dir, sources=[images_dir]) as staging:
        with progress_bar("Model applying", "{task.fields[rate]}", enabled=progress) as bar:
            task = bar.add_task("infer", total=len(images), rate="")
            names_of = dict(zip(images, plan))
            for path, image in _prefetch(images, load, workers, lookahead=max(2, 2 * workers)):
                t0 = time.perf_counter()
                try:
                    prediction = predictor.predict(image, settings=config)
                except UnetkitError as exc:
                    raise _with_file(exc, path) from None
                forward += time.perf_counter() - t0
                write_outputs(staging, names_of[path], image, prediction, predictor, probabilities, overlays)
                done += 1
                elapsed = time.perf_counter() - start
                bar.update(task, completed=done, rate=f"{done / elapsed:.2f} img/s" if elapsed > 0 else "")
        atomic.write_json(staging / CLASSES_FILE, class_table(predictor))
    return FolderStats(done, skipped, time.perf_counter() - start, forward)
