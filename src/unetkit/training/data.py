"""Training data: train/val split by image tags, samples, deterministic sharded sampling, loaders.

Original behaviour: docs/original-behaviour.md, "Training samples".

A sample is a pure function of (seed, epoch, index): augmentation and the retry of corrupt samples use a
generator seeded from those, so results do not depend on the number of workers and survive a resume.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from unetkit.errors import ConfigError, FormatError
from unetkit.models.card import ClassMap, Preprocessing
from unetkit.models.preprocess import conform_channels, normalize, resize_image, resize_labels
from unetkit.project import Annotation, Item, Project, ProjectMeta, load_json, rasterize, read_pixels
from unetkit.project.rasterize import rasterize_labelsets
from unetkit.training import augment
from unetkit.training.config import TrainConfig
from unetkit.training.multilabel import NO_CLASS, neutral_flag

log = logging.getLogger("unetkit.training")
MAX_RETRIES = 100


@dataclass(frozen=True)
class SampleRef:
    item: Item
    height: int
    width: int
    window: tuple[int, int] | None = None  # (top, left) of a validation tile in patch mode


def split_by_tags(project: Project, cfg: TrainConfig) -> dict[str, list[SampleRef]]:
    """Images whose tags contain ``dataset_tags[split]`` (an image with both tags is in both splits)."""
    found: dict[str, list[SampleRef]] = {"train": [], "val": []}
    with_objects = {"train": 0, "val": 0}
    tags = {"train": cfg.dataset_tags.train, "val": cfg.dataset_tags.val}
    for item in project.items():
        ann = item.read_annotation(project.meta)
        names = {t.name for t in ann.tags}
        for split, tag in tags.items():
            if tag in names:
                found[split].append(SampleRef(item, ann.height, ann.width))
                with_objects[split] += bool(ann.labels)
    for split, tag in tags.items():
        where = f"$.dataset_tags.{split}"
        if not found[split]:
            raise ConfigError(
                f'There are no annotations with tag "{tag}" (project {project.path}: {len(project)} images; tag '
                "the images with DTL 'tag' or `unetkit import masks --split`)",
                json_path=where,
            )
        if not with_objects[split]:
            raise ConfigError(f'There are no objects in annotations with tag "{tag}"', json_path=where)
    return found


def split_by_names(project: Project, split: dict[str, list[str]]) -> dict[str, list[SampleRef]]:
    """The train / val images named ``"dataset/name"`` (the seam cross-validation uses instead of tags)."""
    items = {f"{it.dataset}/{it.name}": it for it in project.items()}
    found: dict[str, list[SampleRef]] = {}
    for part in ("train", "val"):
        names = split.get(part) or []
        missing = [n for n in names if n not in items]
        if missing:
            raise ConfigError(f"{len(missing)} {part} image(s) not in the project, e.g. {missing[0]!r}")
        if not names:
            raise ConfigError(f"no {part} images")
        refs = []
        for name in names:
            ann = items[name].read_annotation(project.meta)
            refs.append(SampleRef(items[name], ann.height, ann.width))
        found[part] = refs
    return found


def tile_refs(refs: list[SampleRef], tile_h: int, tile_w: int) -> list[SampleRef]:
    """Expand each image into non-overlapping input-size tiles (validation in patch-sampling mode)."""
    return [
        SampleRef(r.item, r.height, r.width, window)
        for r in refs
        for window in augment.tile_windows(r.height, r.width, tile_h, tile_w)
    ]


class SegmentationDataset(Dataset):
    """Yields {"image": float32 C×H×W, "target": int64 H×W, "failed": [(index, message), ...]}; the target holds
    class indices, or for a multi-label class map the packed classes of :mod:`unetkit.training.multilabel`."""

    def __init__(
        self,
        refs: list[SampleRef],
        meta: ProjectMeta,
        indexing: ClassMap,
        cfg: TrainConfig,
        preprocessing: Preprocessing | None = None,
        *,
        in_channels: int = 3,
        train: bool,
        seed: int,
        cache_bytes: int = 0,
    ):
        self.refs = refs
        self.meta = meta
        self.class_map = {**indexing.class_title_to_idx, cfg.special_classes.neutral: indexing.neutral_index}
        self.neutral = indexing.neutral_index
        self.multilabel = indexing.multilabel  # targets packed: bit k = class k, bit K = neutral
        if self.multilabel:
            self.class_map[cfg.special_classes.background] = NO_CLASS
            self.neutral = neutral_flag(indexing.num_classes)
        self.width, self.height = cfg.input_size.width, cfg.input_size.height
        self.pre = preprocessing or Preprocessing(input_size=(self.width, self.height))
        self.in_channels = in_channels
        self.crop_mode = cfg.unetkit.patch_sampling.mode == "random_crop"
        self.foreground_prob = cfg.unetkit.patch_sampling.foreground_prob
        self.aug = cfg.unetkit.augment if train else None
        self.train = train
        self.seed = seed
        self.cache_bytes = cache_bytes
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cached_bytes = 0
        self._last_tile: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.refs)

    # ------------------------------------------------------------------ loading
    def _read(self, ref: SampleRef) -> tuple[np.ndarray, np.ndarray]:
        image = conform_channels(read_pixels(ref.item.image_path), self.in_channels)
        ann = Annotation.from_json(load_json(ref.item.ann_path), self.meta, file=ref.item.ann_path)
        for i, label in enumerate(ann.labels):
            if label.class_title not in self.class_map:
                raise FormatError(
                    f"Missing class mapping (title to index). Class {label.class_title}.",
                    file=ref.item.ann_path,
                    json_path=f"$.objects[{i}].classTitle",
                )
        if self.multilabel:
            labels = rasterize_labelsets(ann, self.class_map, file=ref.item.ann_path)
        else:
            labels = rasterize(ann, self.class_map, dtype=np.int32, file=ref.item.ann_path)
        if labels.shape != image.shape[:2]:  # annotation size differs from the image: align the GT
            labels = resize_labels(labels, image.shape[1], image.shape[0])
        # GT at original size, then nearest; image bicubic (docs/original-behaviour.md, "Training samples")
        if not self.crop_mode:
            image = resize_image(image, self.width, self.height, "bicubic")
            labels = resize_labels(labels, self.width, self.height)
        dtype = np.uint8 if self.neutral < 256 else np.int32
        return np.ascontiguousarray(image), labels.astype(dtype)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        ref = self.refs[index]
        key = id(ref.item)
        if self._last_tile is not None and self._last_tile[0] == key:  # consecutive tiles of one image
            return self._last_tile[1]
        sample = self._read(ref)
        size = sample[0].nbytes + sample[1].nbytes
        if ref.window is not None:
            self._last_tile = (key, sample)
        elif self._cached_bytes + size <= self.cache_bytes:
            self._cache[index] = sample
            self._cached_bytes += size
        return sample

    def _sample(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image, labels = self._load(index)
        ref = self.refs[index]
        h, w = self.height, self.width
        aug = self.aug
        if ref.window is not None:
            image, labels = augment.extract_window(image, labels, *ref.window, h, w, self.neutral)
        elif self.crop_mode:
            scale = rng.uniform(*aug.scale) if aug is not None and aug.scale else 1.0
            src_h, src_w = max(1, round(h / scale)), max(1, round(w / scale))
            top, left = augment.random_window(
                labels, src_h, src_w, rng, foreground_prob=self.foreground_prob if self.train else 0.0,
                neutral=self.neutral,
            )  # fmt: skip
            image, labels = augment.extract_window(image, labels, top, left, src_h, src_w, self.neutral)
            image, labels = resize_image(image, w, h, "bicubic"), resize_labels(labels, w, h)
        elif aug is not None and aug.scale:
            image, labels = augment.scale_window(
                image, labels, h, w, rng.uniform(*aug.scale), rng, self.neutral
            )
        if aug is not None:
            image, labels = augment.flips_and_rotations(image, labels, rng, aug.hflip, aug.vflip, aug.rot90)
            peak = self.pre.scale if self.pre.pixel_type != "float32" else None
            image = augment.photometric(image, rng, aug.brightness, aug.contrast, aug.gamma, peak=peak)
        return normalize(image, self.pre.mean, self.pre.std, self.pre.scale), labels

    def __getitem__(self, key) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        failed: list[tuple[int, str]] = []
        for attempt in range(MAX_RETRIES + 1):
            rng = np.random.default_rng([self.seed, int(self.train), epoch, index, attempt])
            try:
                x, y = self._sample(index, rng)
            except Exception as exc:  # a corrupt sample: remember it and try a random other one
                failed.append((index, f"{self.refs[index].item.image_path}: {type(exc).__name__}: {exc}"))
                index = int(rng.integers(len(self.refs)))
                continue
            return {
                "image": torch.from_numpy(x),
                "target": torch.from_numpy(y.astype(np.int64)),
                "failed": failed,
            }
        raise FormatError(f"no loadable sample after {MAX_RETRIES} retries; last error: {failed[-1][1]}")


def collate(batch: list[dict]) -> dict:
    return {
        "image": torch.stack([b["image"] for b in batch]),
        "target": torch.stack([b["target"] for b in batch]),
        "failed": [f for b in batch for f in b["failed"]],
    }


class CorruptionTracker:
    """Counts distinct failed samples of a split (in the main process) against ``allow_corrupted_samples``."""

    def __init__(self, split: str, allowed: int):
        self.split, self.allowed = split, allowed
        self.failed: dict[int, str] = {}

    def update(self, failures: list[tuple[int, str]]) -> None:
        for index, message in failures:
            if index not in self.failed:
                self.failed[index] = message
                log.warning(
                    "%s sample %d could not be loaded (%d so far): %s",
                    self.split,
                    index,
                    len(self.failed),
                    message,
                )
        if len(self.failed) > self.allowed:
            last = next(reversed(self.failed.values()))
            raise FormatError(
                f"Too many errors occurred while processing samples. Allowed: {self.allowed}. "
                f"({len(self.failed)} {self.split} samples failed; last: {last})",
            )


class ShardSampler(Sampler):
    """Yields (index, epoch). Train: a permutation seeded by (seed, epoch), padded to a multiple of
    ``world`` and dealt out round-robin, so with W processes of batch B every step sees the same samples as
    one process with batch W·B. ``start_batch`` skips the batches already done (resume)."""

    def __init__(
        self, n: int, *, shuffle: bool, seed: int, rank: int = 0, world: int = 1, batch_size: int = 1
    ):
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world, self.batch_size = rank, world, batch_size
        self.epoch = 0
        self.start_batch = 0

    def shard(self) -> np.ndarray:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            order = np.resize(order, self.n + (-self.n) % self.world)  # cyclic padding, even when n < world
        else:
            order = np.arange(self.n)
        return order[self.rank :: self.world]

    def __iter__(self):
        shard = self.shard()[self.start_batch * self.batch_size :]
        return iter([(int(i), self.epoch) for i in shard])

    def __len__(self) -> int:
        return len(self.shard()) - self.start_batch * self.batch_size

    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.shard()) / self.batch_size)


# Workers are forked (PyTorch's default on Linux). They must not call cv2.setNumThreads: reconfiguring the
# OpenCV thread pool inherited from the parent can deadlock in the child. PyTorch already sets one torch
# thread per worker.
def make_loader(
    dataset: SegmentationDataset, sampler: ShardSampler, workers: int, pin_memory: bool
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=sampler.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        drop_last=False,
        persistent_workers=workers > 0,
    )
