import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.inference.modes import build_runner
from unetkit.inference.predictor import Predictor
from unetkit.inference.tiling import BandStitcher, SlidingWindowError, blend_weights, window_grid

from .helpers import make_checkpoint


def positions(grid):
    return [(w.top, w.left) for w in grid]


def test_grid_exact_positions_with_clamping():
    # H=300, W=260, window 128x128, overlap y=0, x=28 → stride 128 / 100
    grid = window_grid(300, 260, 128, 128, 0, 28)
    assert positions(grid) == [
        (0, 0), (0, 100), (0, 132),
        (128, 0), (128, 100), (128, 132),
        (172, 0), (172, 100), (172, 132),
    ]  # fmt: skip
    assert all((w.height, w.width) == (128, 128) for w in grid)
    assert (grid[-1].bottom, grid[-1].right) == (299, 259)


def test_grid_exact_fit_and_single_window():
    assert positions(window_grid(256, 256, 128, 128)) == [(0, 0), (0, 128), (128, 0), (128, 128)]
    assert positions(window_grid(128, 128, 128, 128)) == [(0, 0)]
    assert positions(window_grid(10, 7, 10, 4, 0, 3)) == [(0, 0), (0, 1), (0, 2), (0, 3)]


def test_grid_errors():
    with pytest.raises(SlidingWindowError, match="window is larger than source"):
        window_grid(100, 300, 128, 128)
    with pytest.raises(SlidingWindowError, match="overlap is too high"):
        window_grid(500, 500, 128, 128, 128, 0)


@settings(max_examples=50, deadline=None)
@given(
    h=st.integers(1, 60), w=st.integers(1, 60), wh=st.integers(1, 60), ww=st.integers(1, 60),
    oy=st.integers(0, 59), ox=st.integers(0, 59),
)  # fmt: skip
def test_grid_properties(h, w, wh, ww, oy, ox):
    if wh > h or ww > w or oy >= wh or ox >= ww:
        with pytest.raises(SlidingWindowError):
            window_grid(h, w, wh, ww, oy, ox)
        return
    grid = window_grid(h, w, wh, ww, oy, ox)
    cover = np.zeros((h, w), int)
    for win in grid:
        assert 0 <= win.top and win.bottom < h and 0 <= win.left and win.right < w
        cover[win.top : win.bottom + 1, win.left : win.right + 1] += 1
    assert cover.min() >= 1  # every pixel is seen
    assert positions(grid) == sorted(set(positions(grid)))  # row-major, no duplicates
    tops = sorted({t for t, _ in positions(grid)})
    assert all(b - a <= wh - oy for a, b in zip(tops, tops[1:]))  # stride never exceeded


def test_blend_weights():
    c = blend_weights(8, 6, "constant")
    assert c.dtype == np.float32 and (c == 1).all()
    g = blend_weights(33, 17, "gaussian")
    assert g.shape == (33, 17) and g.max() == pytest.approx(1.0) and g.min() > 0
    assert g[16, 8] == g.max()
    np.testing.assert_allclose(g, g[::-1, ::-1])
    assert g[0, 0] < g[16, 0] < g[16, 8]
    with pytest.raises(ValueError):
        blend_weights(4, 4, "median")


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(4, 40), w=st.integers(4, 40), wh=st.integers(2, 12), ww=st.integers(2, 12),
    oy=st.integers(0, 11), ox=st.integers(0, 11), k=st.integers(1, 4), blend=st.sampled_from(["constant", "gaussian"]),
    seed=st.integers(0, 1000),
)  # fmt: skip
def test_band_stitcher_equals_full_accumulation(h, w, wh, ww, oy, ox, k, blend, seed):
    wh, ww = min(wh, h), min(ww, w)
    oy, ox = min(oy, wh - 1), min(ox, ww - 1)
    grid = window_grid(h, w, wh, ww, oy, ox)
    rng = np.random.default_rng(seed)
    weight = blend_weights(wh, ww, blend)
    total = np.zeros((k, h, w)), np.zeros((h, w))
    st_ = BandStitcher(h, w, k, wh, keep_probabilities=True)
    tops = sorted({win.top for win in grid})
    for i, top in enumerate(tops):
        for win in (x for x in grid if x.top == top):
            p = rng.random((k, wh, ww)).astype(np.float32)
            st_.add(win.top, win.left, p, weight)
            total[0][:, win.top : win.bottom + 1, win.left : win.right + 1] += p * weight
            total[1][win.top : win.bottom + 1, win.left : win.right + 1] += weight
        st_.advance(tops[i + 1] if i + 1 < len(tops) else h)
    mask, probs = st_.finish()
    mean = total[0] / total[1]
    np.testing.assert_allclose(probs.astype(np.float32), mean.transpose(1, 2, 0), atol=2e-3)
    expected = mean.argmax(axis=0)
    # identical except where two classes tie within float32 rounding
    top2 = np.sort(mean, axis=0)[-2:] if k > 1 else None
    ambiguous = (top2[1] - top2[0] < 1e-5) if k > 1 else np.zeros((h, w), bool)
    assert (mask[~ambiguous] == expected[~ambiguous]).all()


def test_stitcher_detects_uncovered_rows():
    st_ = BandStitcher(10, 10, 2, 5)
    st_.add(0, 0, np.ones((2, 5, 10), np.float32), np.ones((5, 10), np.float32))
    with pytest.raises(SlidingWindowError, match="implementation error"):
        st_.advance(8)  # rows 5..7 were never covered


def test_large_image_sliding_window_bounded_memory(tmp_path):
    """A 4096×4096 image through sliding_window: numpy peak stays under 4 bytes/pixel.

    A per-class float32 accumulator alone would need 8 bytes/pixel for 2 classes (the original's float64
    sums 16); the band stitcher keeps a window-high band plus a uint8 mask.
    """
    ckpt = make_checkpoint(tmp_path / "c", input_size=(32, 32), seed=3)
    predictor = Predictor.from_checkpoint(ckpt)
    n = 4096
    image = np.zeros((n, n, 3), np.uint8)
    image[::7] = 200
    image[:, ::11] = 90
    mode = build_runner(
        {"name": "sliding_window", "window": {"width": 256, "height": 256}, "min_overlap": {"x": 16, "y": 16},
         "batch_size": 4},
        None, predictor,
    )  # fmt: skip
    tracemalloc.start()
    try:
        ann = mode.apply(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * n * n, f"peak {peak / 1e6:.1f} MB"
    covered = np.zeros((n, n), np.int32)
    for label in ann.labels:
        label.geometry.draw(covered, 1 + covered.max())
    assert (covered > 0).all()  # the class bitmaps tile the whole image
    assert sum(int(lbl.geometry.area()) for lbl in ann.labels) == n * n
