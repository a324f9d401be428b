"""Inference modes: full_image, roi, bboxes, sliding_window — built on a :class:`Predictor`.

Original behaviour: docs/original-behaviour.md, "Inference modes".

Every mode keeps the input annotation (objects, tags) and appends one bitmap per model class present (background
included unless filtered), renamed by ``model_classes``; a multi-label model's bitmaps may overlap. ``out_meta`` =
input meta + renamed model classes (+ ROI / window / bbox rectangle classes); a new class whose title already exists
is an error at construction.

``regions`` + ``assemble`` split a mode so that the batch runner can run many regions of many images in one
forward pass; ``apply`` does both for one image. Sliding window streams its windows instead (bounded memory).
"""

from __future__ import annotations

import random

import numpy as np

from unetkit import inference_config as cfg
from unetkit.errors import ConfigError, FormatError
from unetkit.inference.labelsets import class_region, unpack
from unetkit.inference.postprocess import MaskPostprocessor
from unetkit.inference.prediction import Network, Prediction, load_image
from unetkit.inference.probabilities import add_probabilities, probability_class_json, probability_label_json
from unetkit.inference.regions import padded_box, roi_window
from unetkit.inference.tiling import (
    BandStitcher,
    SlidingWindowError,
    Window,
    blend_weights,
    default_window_batch,
    window_grid,
)
from unetkit.project import Annotation, Bitmap, Label, ObjClass, ProjectMeta, Rectangle, random_color


def _rect(win: Window) -> Rectangle:
    return Rectangle(win.left, win.top, win.right, win.bottom)


def _rect_class(title: str, color: str | None = None) -> ObjClass:
    return ObjClass(title, "rectangle", color or random_color(random.Random(title)))


class ModeRunner:
    """Runs one configured mode (a ``config.*Mode``): model-class renaming, output meta, labels from probabilities.

    ``network`` replaces the predictor's own network pass (see :meth:`Predictor.forward`); serving passes its
    micro-batcher.
    """

    batchable = True

    def __init__(self, mode, in_meta: ProjectMeta | None, predictor, network: Network | None = None):
        self.mode = mode
        self.predictor = predictor
        self.network = network
        self.tta = predictor.tta_for(mode)  # the mode's TTA, unless the predictor was given one
        self.in_meta = in_meta if in_meta is not None else ProjectMeta()
        titles = [mc.title for mc in predictor.classes]
        names = mode.model_classes.save_names
        cfg.check_known_names(
            names, titles, json_path="$.mode.model_classes.save_classes", what="model class"
        )
        self.kept = [(mc, mode.model_classes.rename(mc.title)) for mc in predictor.classes]
        self.kept = [(mc, title) for mc, title in self.kept if title is not None]
        self.multilabel = ml = predictor.card.classes.multilabel  # masks packed (unetkit.inference.labelsets)
        self.post = MaskPostprocessor(mode, predictor.classes, predictor.num_classes, multilabel=ml)
        self._new_classes: list[ObjClass] = []
        for mc, title in self.kept:
            self._add_class(
                ObjClass(title, "bitmap", mc.color),
                "$.mode.model_classes.add_suffix",
                f"model class {mc.title!r}",
            )

    def _add_class(self, obj_class: ObjClass, json_path: str, what: str) -> None:
        existing = {c.title for c in self.in_meta.classes} | {c.title for c in self._new_classes}
        if obj_class.title in existing:
            raise ConfigError(
                f"{what} would be saved as {obj_class.title!r}, but a class with that title already exists; "
                "choose another suffix / class name",
                json_path=json_path,
            )
        self._new_classes.append(obj_class)

    @property
    def out_meta(self) -> ProjectMeta:
        return self.in_meta.clone(classes=list(self.in_meta.classes) + list(self._new_classes))

    # ------------------------------------------------------------------ helpers
    def model_labels(
        self, mask: np.ndarray, top: int = 0, left: int = 0, *, consume: bool = False
    ) -> list[Label]:
        """One bitmap label per kept model class present in ``mask`` (class_title_to_idx order). ``consume``: the
        last class's region is computed into a uint8 mask's own buffer (one image-sized array less at the peak;
        the mask is not usable afterwards)."""
        labels = []
        for i, (mc, title) in enumerate(self.kept):
            if self.multilabel:
                region = class_region(mask, mc.index)
            elif consume and i == len(self.kept) - 1 and mask.dtype == np.uint8:
                region = np.equal(mask, mc.index, out=mask.view(bool))
            else:
                region = mask == mc.index
            bitmap = Bitmap.from_full_mask(region)
            if bitmap is not None:
                labels.append(Label(title, bitmap.translate(left, top) if (left or top) else bitmap))
        return labels

    def probability_labels(self, probs: np.ndarray, top: int = 0, left: int = 0) -> list[dict]:
        if not self.mode.save_probabilities:
            return []
        return [probability_label_json(title, (left, top), probs[:, :, mc.index]) for mc, title in self.kept]

    def with_probabilities(self, ann: Annotation, labels: list[dict]) -> Annotation:
        if not self.mode.save_probabilities:
            return ann
        classes = [probability_class_json(title, mc.color) for mc, title in self.kept]
        return ann.clone(custom_big_data=add_probabilities(ann.custom_big_data, classes, labels))

    @staticmethod
    def empty_annotation(image: np.ndarray) -> Annotation:
        return Annotation(int(image.shape[0]), int(image.shape[1]))

    # ------------------------------------------------------------------ protocol
    def regions(self, ann: Annotation) -> list[Window]:
        """Regions of the image the model must see (in the order ``assemble`` expects them)."""
        raise NotImplementedError

    def assemble(self, ann: Annotation, regions: list[Window], probs: list[np.ndarray]) -> Annotation:
        """Output annotation from the regions' probabilities (each h×w×K, region-sized)."""
        raise NotImplementedError

    def region_probabilities(self, image: np.ndarray, regions: list[Window], batch_size: int = 8) -> list:
        """Probabilities (h×w×K) of each region of ``image``, ``batch_size`` regions per forward pass."""
        probs: list[np.ndarray] = []
        for i in range(0, len(regions), batch_size):
            crops = [crop(image, r) for r in regions[i : i + batch_size]]
            probs += self.predictor.predict_proba_batch(crops, self.network, self.tta)
        return probs

    def apply(self, image: np.ndarray, ann: Annotation | None = None, *, batch_size: int = 8) -> Annotation:
        """Run the mode on one RGB image and its (optional) existing annotation."""
        ann = check_annotation(image, ann)
        regions = self.regions(ann)
        return self.assemble(ann, regions, self.region_probabilities(image, regions, batch_size))

    def predict(self, image: np.ndarray) -> Prediction:
        """The mask and probabilities H×W×K of a whole image (no input annotation): each region's mask after the
        threshold and the clean-up, background outside the regions."""
        ann = self.empty_annotation(image)
        regions = self.regions(ann)
        h, w, k = image.shape[0], image.shape[1], self.predictor.num_classes
        probs = np.zeros((h, w, k), np.float32)
        mask = None
        for win, p in zip(regions, self.region_probabilities(image, regions)):
            region = self.post.mask(p)
            if mask is None:
                mask = np.zeros((h, w), region.dtype)
            mask[win.top : win.bottom + 1, win.left : win.right + 1] = region
            probs[win.top : win.bottom + 1, win.left : win.right + 1] = p
        if mask is None:
            mask = self.post.mask(probs)
        return self.prediction(mask, probs)

    def prediction(self, mask: np.ndarray, probs: np.ndarray) -> Prediction:
        classes = list(self.predictor.classes)
        if self.multilabel:
            return Prediction(unpack(mask, self.predictor.num_classes), probs, classes, multilabel=True)
        return Prediction(mask, probs, classes)


def crop(image: np.ndarray, win: Window) -> np.ndarray:
    return image[win.top : win.top + win.height, win.left : win.left + win.width]


def check_annotation(image: np.ndarray, ann: Annotation | None) -> Annotation:
    if ann is None:
        return ModeRunner.empty_annotation(image)
    if (ann.height, ann.width) != tuple(image.shape[:2]):
        raise FormatError(
            f"annotation size {ann.width}x{ann.height} differs from the image size {image.shape[1]}x{image.shape[0]}",
            json_path="$.size",
        )
    return ann


class FullImageRunner(ModeRunner):
    def regions(self, ann):
        return [Window(0, 0, ann.height, ann.width)]

    def assemble(self, ann, regions, probs):
        (p,) = probs
        out = ann.clone(labels=list(ann.labels) + self.model_labels(self.post.mask(p)))
        return self.with_probabilities(out, self.probability_labels(p))


class RoiRunner(ModeRunner):
    def __init__(self, mode, in_meta, predictor, network=None):
        super().__init__(mode, in_meta, predictor, network)
        self.roi_class = _rect_class(mode.class_name) if mode.save else None
        if self.roi_class is not None:
            self._add_class(self.roi_class, "$.mode.class_name", "the ROI class")

    def regions(self, ann):
        return [roi_window(ann.height, ann.width, self.mode.bounds)]

    def assemble(self, ann, regions, probs):
        (win,), (p,) = regions, probs
        labels = list(ann.labels) + self.model_labels(self.post.mask(p), win.top, win.left)
        if self.roi_class is not None:
            labels.append(Label(self.roi_class.title, _rect(win)))
        out = ann.clone(labels=labels)
        return self.with_probabilities(out, self.probability_labels(p, win.top, win.left))


class BboxesRunner(ModeRunner):
    def __init__(self, mode, in_meta, predictor, network=None):
        super().__init__(mode, in_meta, predictor, network)
        if in_meta is not None:
            titles = [c.title for c in in_meta.classes]
            cfg.check_known_names(mode.from_classes, titles, json_path="$.mode.from_classes", what="class")
        self.box_classes: dict[str, str] = {}
        if mode.save:
            for c in self.in_meta.classes:
                if cfg.is_name_included(c.title, mode.from_classes):
                    title = c.title + mode.add_suffix
                    self._add_class(
                        _rect_class(title, c.color), "$.mode.add_suffix", f"the box class of {c.title!r}"
                    )
                    self.box_classes[c.title] = title

    def _rois(self, ann):
        for label in ann.labels:
            roi = None
            if cfg.is_name_included(label.class_title, self.mode.from_classes):
                roi = padded_box(label, self.mode.padding, ann.height, ann.width)
            yield label, roi

    def regions(self, ann):
        return [roi for _, roi in self._rois(ann) if roi is not None]

    def assemble(self, ann, regions, probs):
        labels, prob_labels = [], []
        it = iter(zip(regions, probs))
        for src, roi in self._rois(ann):
            if roi is not None:
                win, p = next(it)
                labels += self.model_labels(self.post.mask(p), win.top, win.left)
                prob_labels += self.probability_labels(p, win.top, win.left)
                if src.class_title in self.box_classes:
                    labels.append(Label(self.box_classes[src.class_title], _rect(win)))
            labels.append(src)
        return self.with_probabilities(ann.clone(labels=labels), prob_labels)


class SlidingWindowRunner(ModeRunner):
    """Clamped window grid; per-window probabilities blended (constant = the original's sum, or Gaussian)."""

    batchable = False

    def __init__(self, mode, in_meta, predictor, network=None):
        super().__init__(mode, in_meta, predictor, network)
        self.window_class = _rect_class(mode.class_name) if mode.save else None
        if self.window_class is not None:
            self._add_class(self.window_class, "$.mode.class_name", "the window class")
        self.weights = blend_weights(mode.window.height, mode.window.width, mode.blend)

    def grid(self, height: int, width: int) -> list[Window]:
        m = self.mode
        try:
            return window_grid(
                height, width, m.window.height, m.window.width, m.min_overlap.y, m.min_overlap.x
            )
        except SlidingWindowError as exc:
            raise SlidingWindowError(exc.message, json_path="$.mode.window") from None

    def window_batch(self) -> int:
        """Windows per forward pass: the mode's ``batch_size``, else the device's default (1–2 on a CPU)."""
        if self.mode.batch_size:
            return self.mode.batch_size
        device = getattr(self.predictor.backend, "device", None)
        w, h = self.predictor.input_size
        return default_window_batch(getattr(device, "type", "cpu"), w * h)

    def stitch(self, image: np.ndarray, *, keep_probabilities: bool = False, batch_size: int | None = None):
        """Class-index mask (and mean probabilities H×W×K float16) of the whole image, row band by row band."""
        h, w = image.shape[:2]
        windows = self.grid(h, w)
        batch = batch_size or self.window_batch()
        stitcher = BandStitcher(
            h, w, self.predictor.num_classes, self.mode.window.height, keep_probabilities=keep_probabilities,
            threshold=None if self.multilabel else self.post.threshold, thresholds=self.post.thresholds,
        )  # fmt: skip
        tops = sorted({win.top for win in windows})
        for i, top in enumerate(tops):
            row = [win for win in windows if win.top == top]
            for j in range(0, len(row), batch):
                chunk = row[j : j + batch]
                crops = [crop(image, win) for win in chunk]
                probs = self.predictor.predict_proba_batch(crops, self.network, self.tta)
                for win, p in zip(chunk, probs):
                    stitcher.add(win.top, win.left, p.transpose(2, 0, 1), self.weights)
            stitcher.advance(tops[i + 1] if i + 1 < len(tops) else h)
        return (*stitcher.finish(), windows)

    def predict(self, image):
        mask, probs, _ = self.stitch(image, keep_probabilities=True)
        return self.prediction(self.post.clean(mask), probs.astype(np.float32))

    def apply(self, image, ann=None, *, batch_size=None):
        ann = check_annotation(image, ann)
        mask, probs, windows = self.stitch(
            image, keep_probabilities=self.mode.save_probabilities, batch_size=batch_size
        )
        labels = list(ann.labels)
        if self.window_class is not None:
            labels += [Label(self.window_class.title, _rect(win)) for win in windows]
        labels += self.model_labels(self.post.clean(mask), consume=True)
        out = ann.clone(labels=labels)
        if self.mode.save_probabilities:
            prob_labels = [
                probability_label_json(title, (0, 0), probs[:, :, mc.index].astype(np.float32))
                for mc, title in self.kept
            ]
            out = self.with_probabilities(out, prob_labels)
        return out


RUNNERS = {
    "full_image": FullImageRunner,
    "roi": RoiRunner,
    "bboxes": BboxesRunner,
    "sliding_window": SlidingWindowRunner,
}


def build_runner(
    mode=None,
    in_meta: ProjectMeta | None = None,
    predictor=None,
    network: Network | None = None,
) -> ModeRunner:
    """``mode``: None (full_image, ``_unet``), an InferenceConfig, a mode model, or a config / mode dict."""
    if mode is None:
        mode = cfg.InferenceConfig().mode
    elif isinstance(mode, cfg.InferenceConfig):
        mode = mode.mode
    elif isinstance(mode, dict):
        doc = mode if ("mode" in mode or "model" in mode) else {"model": {}, "mode": mode}
        mode = cfg.parse_config(doc).mode
    return RUNNERS[mode.name](mode, in_meta, predictor, network)


def annotate(predictor, image, ann=None, mode=None, meta=None) -> Annotation:
    """Supervisely annotation of one image through an inference mode (default: full_image, suffix ``_unet``).

    ``image``: numpy / PIL / path. ``mode``: an :class:`~unetkit.inference_config.InferenceConfig`, a mode
    model, or a config dict. ``ann``/``meta``: the image's existing annotation and its project meta.
    """
    return build_runner(mode, meta, predictor).apply(load_image(image), ann)
