"""Procedurally drawn retina-like fundus images with vessel masks (no downloads, deterministic per seed).

Each image: dark surround, a textured orange disc (the fundus), a bright optic disc, and two vessel trees that
grow from the optic disc, branch and thin out towards the periphery. The mask marks vessel pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _smooth_noise(rng: np.random.Generator, size: int, scale: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] (upsampled random grid)."""
    small = rng.standard_normal((max(2, size // scale), max(2, size // scale))).astype(np.float32)
    big = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    return big / (np.abs(big).max() + 1e-6)


def _grow_tree(
    rng: np.random.Generator,
    segments: list[tuple[np.ndarray, float]],
    start: np.ndarray,
    angle: float,
    width: float,
    length: float,
    depth: int,
) -> None:
    """Append (polyline, width) segments of a branching vessel tree."""
    points = [start.copy()]
    pos = start.astype(np.float64).copy()
    steps = max(3, int(length / 6))
    for _ in range(steps):
        angle += rng.normal(0, 0.12)
        pos = pos + 6 * np.array([math.cos(angle), math.sin(angle)])
        points.append(pos.copy())
    segments.append((np.array(points), width))
    if depth <= 0 or width < 1.2:
        return
    for side in (-1, 1):
        branch_at = points[rng.integers(len(points) // 3, len(points))]
        _grow_tree(
            rng,
            segments,
            branch_at,
            angle + side * rng.uniform(0.35, 0.9),
            width * rng.uniform(0.6, 0.8),
            length * rng.uniform(0.55, 0.8),
            depth - 1,
        )


def draw_fundus(seed: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Return (RGB uint8 image size×size×3, bool vessel mask size×size) for one synthetic fundus."""
    rng = np.random.default_rng(seed)
    c = size / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    radius = size * 0.47
    dist = np.hypot(xx - c, yy - c)
    disc = dist < radius
    # fundus colour: orange-red with vignetting and low-frequency texture
    texture = 0.6 * _smooth_noise(rng, size, 16) + 0.4 * _smooth_noise(rng, size, 5)
    shade = np.clip(1.0 - 0.45 * (dist / radius) ** 2, 0, 1) + 0.08 * texture
    base = np.stack([200 * shade, 95 * shade, 40 * shade], axis=-1)
    # optic disc
    od_angle = rng.uniform(0, 2 * math.pi)
    od = np.array([c + 0.28 * size * math.cos(od_angle), c + 0.28 * size * math.sin(od_angle)])
    od_r = size * rng.uniform(0.06, 0.08)
    od_glow = np.exp(-(((xx - od[0]) ** 2 + (yy - od[1]) ** 2) / (2 * od_r**2)))[..., None]
    base = base * (1 - 0.7 * od_glow) + np.array([250, 220, 150]) * 0.7 * od_glow
    # vessel trees growing away from the optic disc towards the centre, up and down
    segments: list[tuple[np.ndarray, float]] = []
    toward_centre = math.atan2(c - od[1], c - od[0])
    for offset in (-0.9, 0.9, rng.uniform(-0.3, 0.3)):
        _grow_tree(rng, segments, od, toward_centre + offset, size / 55, size * 0.35, depth=3)
    mask = np.zeros((size, size), np.uint8)
    vessel_img = np.zeros((size, size), np.float32)
    for pts, width in segments:
        poly = np.round(pts).astype(np.int32).reshape(-1, 1, 2)
        w = max(1, int(round(width)))
        cv2.polylines(mask, [poly], False, 1, thickness=w, lineType=cv2.LINE_8)
        cv2.polylines(vessel_img, [poly], False, 1.0, thickness=w, lineType=cv2.LINE_AA)
    vessel_img = cv2.GaussianBlur(vessel_img, (3, 3), 0.6)
    darker = np.array([0.45, 0.35, 0.35]) + 0.05 * rng.standard_normal(3)
    img = base * (1 - vessel_img[..., None] * (1 - darker))
    img += rng.normal(0, 4.0, img.shape)  # sensor noise
    img[~disc] = rng.normal(8, 2, (int((~disc).sum()), 3))
    mask[~disc] = 0
    return np.clip(img, 0, 255).astype(np.uint8), mask.astype(bool)
