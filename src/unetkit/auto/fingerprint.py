"""The dataset fingerprint: what the planner's rules read (sizes, channels, intensities, classes, structure).

Measured on up to ``MAX_IMAGES`` images spread evenly over the project (every image's header is read);
JSON-ready and stored in the plan.
"""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np

from unetkit.models.preprocess import SCALES
from unetkit.project import Project, pixel_info, read_pixels

MAX_IMAGES = 64
PIXELS_PER_IMAGE = 200_000


def _percentiles(values: np.ndarray) -> dict:
    if values.size == 0:
        return {}
    p = np.percentile(values, (0.5, 50, 99.5))
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "p0_5": float(p[0]),
        "p50": float(p[1]),
        "p99_5": float(p[2]),
    }


def _thickness(mask: np.ndarray) -> float | None:
    """Typical object thickness in pixels: twice the median distance-to-edge along the object's skeleton."""
    from skimage.morphology import skeletonize

    if not mask.any():
        return None
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    ridge = skeletonize(mask)
    values = dist[ridge] if ridge.any() else dist[mask]
    return float(2.0 * np.median(values))


def _class_masks(ann, meta, titles: list[str]) -> dict[str, np.ndarray]:
    masks = {t: np.zeros((ann.height, ann.width), bool) for t in titles}
    for label in ann.labels:
        if label.class_title in masks:
            try:
                masks[label.class_title] |= label.geometry.to_mask(ann.height, ann.width)
            except ValueError:
                continue
    return masks


def fingerprint(project_dir, *, background: str = "bg", neutral: str = "neutral") -> dict:
    """Measure a project (see the module docstring)."""
    project = Project.read(project_dir)
    items = list(project.items())
    if not items:
        return {"images": 0}
    infos = [pixel_info(it.image_path) for it in items]
    titles = [c.title for c in project.meta.classes if c.title not in (background, neutral)]
    heights = np.array([i.height for i in infos])
    widths = np.array([i.width for i in infos])
    kinds = Counter((i.channels, i.dtype) for i in infos)
    channels, dtype = kinds.most_common(1)[0][0]
    scale = SCALES.get(dtype, 1.0)
    step = max(1, len(items) // MAX_IMAGES)
    sample = items[::step][:MAX_IMAGES]
    rng = np.random.default_rng(0)
    whole: list[np.ndarray] = []
    inside: dict[str, list[np.ndarray]] = {t: [] for t in titles}
    pixels = Counter()
    presence = Counter()
    neutral_px = total_px = 0
    overlap_px = 0
    thickness: dict[str, list[float]] = {t: [] for t in titles}
    areas: dict[str, list[int]] = {t: [] for t in titles}
    tags = Counter()
    for item in sample:
        ann = item.read_annotation(project.meta)
        tags.update({t.name for t in ann.tags})
        masks = _class_masks(ann, project.meta, [*titles, neutral])
        image = read_pixels(item.image_path).astype(np.float32) / scale
        if image.shape[:2] != (ann.height, ann.width):
            image = cv2.resize(image, (ann.width, ann.height)).reshape(ann.height, ann.width, -1)
        flat = image.reshape(-1, image.shape[2])
        pick = rng.choice(flat.shape[0], size=min(PIXELS_PER_IMAGE, flat.shape[0]), replace=False)
        whole.append(flat[pick])
        count = np.zeros((ann.height, ann.width), np.uint8)
        for t in titles:
            m = masks[t]
            count += m
            n = int(m.sum())
            pixels[t] += n
            presence[t] += n > 0
            if n:
                inside[t].append(image[m][: PIXELS_PER_IMAGE // 4])
                th = _thickness(m)
                if th is not None:
                    thickness[t].append(th)
                k, _, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
                areas[t].extend(int(a) for a in stats[1:, cv2.CC_STAT_AREA])
        overlap_px += int((count > 1).sum())
        neutral_px += int(masks[neutral].sum())
        total_px += ann.height * ann.width
    stacked = np.concatenate(whole)
    return {
        "images": len(items),
        "measured_images": len(sample),
        "size": {
            "height": {
                "min": int(heights.min()),
                "median": float(np.median(heights)),
                "max": int(heights.max()),
            },
            "width": {"min": int(widths.min()), "median": float(np.median(widths)), "max": int(widths.max())},
        },
        "channels": int(channels),
        "pixel_type": dtype,
        "kinds": {f"{c}x{t}": n for (c, t), n in kinds.items()},
        "intensity": [_percentiles(stacked[:, c]) for c in range(stacked.shape[1])],
        "classes": {
            t: {
                "pixel_fraction": pixels[t] / max(total_px, 1),
                "present_in": presence[t] / len(sample),
                "thickness_px": float(np.median(thickness[t])) if thickness[t] else None,
                "object_area_px": _percentiles(np.asarray(areas[t], np.float64)) if areas[t] else {},
                "intensity": [_percentiles(v) for v in np.concatenate(inside[t]).T] if inside[t] else [],
            }
            for t in titles
        },
        "overlapping_classes": overlap_px > 0,
        "neutral_fraction": neutral_px / max(total_px, 1),
        "tags": {"train": tags["train"], "val": tags["val"]},
    }
