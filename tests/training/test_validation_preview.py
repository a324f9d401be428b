"""Prediction images in TensorBoard: a fixed grid of validation images with ground truth and prediction."""

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import make_project, tiny_config
from unetkit.training import train
from unetkit.training.validation import ValidationPreview, display_image

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")


def test_display_image_stretches_any_normalisation():
    x = np.zeros((1, 4, 5), np.float32)
    x[0, :, 2:] = 1000.0  # one channel, far outside 0..255
    picture = display_image(x)
    assert picture.shape == (4, 5, 3) and picture.dtype == np.uint8
    assert (picture[:, :2] == 0).all() and (picture[:, 2:] == 255).all()
    four = np.random.default_rng(0).normal(size=(4, 3, 3)).astype(np.float32)
    assert display_image(four).shape == (3, 3, 3)  # the first three channels


def test_preview_rows_colours_and_count():
    preview = ValidationPreview({0: (34, 34, 34), 1: (255, 0, 0), 2: (0, 255, 0)}, neutral=3, count=3)
    images = torch.zeros(2, 3, 2, 2)
    targets = torch.tensor([[[0, 1], [2, 3]], [[1, 1], [1, 1]]])
    preds = torch.tensor([[[1, 1], [0, 0]], [[2, 2], [2, 2]]])
    preview.add(images, targets, preds)
    preview.add(images, targets, preds)  # only one more fits
    grid = preview.grid()
    assert grid.shape == (3 * 2, 3 * 2, 3)
    gt, pred = grid[0:2, 2:4], grid[0:2, 4:6]
    assert gt[0, 0].tolist() == [0, 0, 0]  # background: the (black) input as it is
    assert gt[0, 1].tolist() == [140, 0, 0] and gt[1, 0].tolist() == [0, 140, 0]  # 0.55 of the class colour
    assert gt[1, 1].tolist() == [70, 70, 70]  # neutral: grey
    assert pred[0].tolist() == [[140, 0, 0]] * 2 and pred[1].tolist() == [[0, 0, 0]] * 2
    assert (grid[4:6] == grid[0:2]).all()  # the third row is the first sample of the second batch
    preview.reset()
    assert preview.grid() is None


def test_training_writes_the_preview_at_each_validation(tmp_path):
    project = make_project(tmp_path / "project", n_train=4, n_val=3)
    run = tmp_path / "run"
    train(project, tiny_config(epochs=2, val_every=1), run, progress=False)
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    images = events.Images("val/predictions")
    assert [im.step for im in images] == [2, 4]  # 4 images / batch 2: validation after iterations 2 and 4
    assert (images[0].width, images[0].height) == (
        3 * 32,
        3 * 32,
    )  # 3 validation images: input | truth | pred
    pngs = sorted((run / "previews").glob("*.png"))
    assert [p.name for p in pngs] == ["00000002.png", "00000004.png"]  # the same pictures, for the studio
    assert Image.open(pngs[0]).size == (3 * 32, 3 * 32)
    assert not list((run / "previews").glob("*.tmp*"))
