"""The predictor's network seam: a caller-given network pass, with TTA applied around it; modes pass it on."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from unetkit.inference import Predictor
from unetkit.inference.modes import build_runner

SRC = Path(__file__).resolve().parents[2] / "src" / "unetkit"


class CountingNetwork:
    """The predictor's own network pass, recording the shape of every batch it is given."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        return self.predictor.backend.probabilities(batch)


def test_forward_calls_the_given_network_once_with_the_flips_around_it(random_ckpt, chase_images):
    tta = Predictor.from_checkpoint(random_ckpt, tta=True)
    network = CountingNetwork(tta)
    x = np.stack([tta.preprocess(im) for im in chase_images[:2]])
    np.testing.assert_array_equal(tta.forward(x, network), tta.forward(x))
    assert network.shapes == [(8, 3, 64, 64)]  # 2 images × 4 flips in one pass, averaged afterwards


def test_predict_uses_the_given_network(random_ckpt, chase_images):
    p = Predictor.from_checkpoint(random_ckpt)
    network = CountingNetwork(p)
    pred = p.predict(chase_images[0], network)
    np.testing.assert_array_equal(pred.probabilities, p.predict(chase_images[0]).probabilities)
    assert network.shapes == [(1, 3, 64, 64)]


def test_mode_runners_pass_the_network_on(random_ckpt, chase_images):
    p = Predictor.from_checkpoint(random_ckpt)
    image = chase_images[0]  # 100×96: a 2×2 grid of 64×64 windows
    for mode, passes in (
        (
            {"name": "sliding_window", "window": {"width": 64, "height": 64}, "batch_size": 8},
            [(2, 3, 64, 64)] * 2,
        ),
        ({"name": "roi", "bounds": {"top": "50%"}, "model_classes": {"add_suffix": "_u"}}, [(1, 3, 64, 64)]),
        (None, [(1, 3, 64, 64)]),
    ):
        network = CountingNetwork(p)
        seamed = build_runner(mode, None, p, network).apply(image)
        assert network.shapes == passes
        assert seamed.to_json() == build_runner(mode, None, p).apply(image).to_json()


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import statement of ``path`` (any level, TYPE_CHECKING included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_modes_do_not_import_the_predictor():
    """predictor → modes only: ``Predictor.predict`` runs the card's mode; the modes use a predictor they are
    given, not its module (``annotate`` lives in modes)."""
    assert "unetkit.inference.modes" in imported_modules(SRC / "inference" / "predictor.py")
    assert "unetkit.inference.predictor" not in imported_modules(SRC / "inference" / "modes.py")
    assert not hasattr(Predictor, "annotate")
