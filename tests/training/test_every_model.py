"""Every registered model trains end to end (one step, one validation, checkpoint that reloads)."""

import pytest

from conftest import make_project, tiny_config
from unetkit.models import list_models
from unetkit.models.checkpoint import load_checkpoint
from unetkit.training import train

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")
SMALL = {
    "unet": {"base_channels": 8, "depth": 2},
    "resunet": {"base_channels": 8, "depth": 2},
    "inception_unet": {"base_channels": 8, "depth": 2},
    "vnet": {"base_channels": 4},
    "fcn8s": {"head_channels": 16, "dropout": 0.0},
    "fcn16s": {"head_channels": 16, "dropout": 0.0},
    "fcn32s": {"head_channels": 16, "dropout": 0.0},
}
MODELS = [m for m in list_models() if m != "unet_v2"]  # unet_v2 (61 M params): test_extensions trains it


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("every") / "p", n_train=1, n_val=1, size=32)


@pytest.mark.parametrize("name", MODELS)
def test_every_registered_model_trains_and_checkpoints(name, project, tmp_path):
    size = 64 if name.startswith("u2net") else 32  # U²-Net's 1/32 stage needs > 1 value per BatchNorm channel
    cfg = tiny_config(epochs=1, val_every=1, batch_size={"train": 1, "val": 1}, lr=1e-4,
                      input_size={"width": size, "height": size})  # fmt: skip
    cfg["unetkit"] = {"model": name, "model_options": SMALL.get(name, {}), "seed": 0}
    res = train(project, cfg, tmp_path / "run", progress=False)
    assert res.last_val_metrics["loss"] == res.last_val_metrics["loss"]  # finite, not NaN
    loaded = load_checkpoint(res.last_checkpoint)
    assert loaded.card.model == name and loaded.card.classes.class_title_to_idx == {"bg": 0, "fg": 1}
