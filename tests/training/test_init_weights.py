import json
import shutil

import pytest
import torch

from conftest import make_project, tiny_config
from unetkit.errors import ConfigError
from unetkit.models import create_model
from unetkit.models.checkpoint import load_state_file, read_card
from unetkit.training import train
from unetkit.training.init_weights import continue_training, head_substrings, transfer_learning

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")
OPTS = {"base_channels": 8, "depth": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("init")
    proj = make_project(root / "p", n_train=2, n_val=1)
    res = train(proj, tiny_config(epochs=1, val_every=1), root / "run", progress=False)
    return res.last_checkpoint


def test_transfer_learning_copies_all_but_the_head(trained):
    state = load_state_file(trained / "model.pt")
    for n_cls in (2, 4):
        torch.manual_seed(123)
        model = create_model("unet", n_cls, **OPTS)
        head = head_substrings(model)
        assert head == ("outc.conv.",)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        transfer_learning(model, trained)
        for key, value in model.state_dict().items():
            if key.startswith("outc."):
                assert torch.equal(value, before[key]), key  # head keeps its init
            else:
                assert torch.equal(value, state[key]), key


def test_transfer_learning_reports_shape_mismatches_by_name(trained):
    model = create_model("unet", 2, base_channels=4, depth=2)
    with pytest.raises(
        ConfigError, match=r"inc\.double_conv\.0\.weight \(file \(8, 3, 3, 3\) vs model \(4, 3, 3, 3\)\)"
    ):
        transfer_learning(model, trained)


def test_continue_training_is_strict(trained, tmp_path):
    model = create_model("unet", 2, **OPTS)
    continue_training(model, trained)
    assert torch.equal(
        model.state_dict()["outc.conv.weight"], load_state_file(trained / "model.pt")["outc.conv.weight"]
    )
    with pytest.raises(ConfigError, match="Parameters found in the snapshot file, but not in the model"):
        continue_training(create_model("unet", 2, base_channels=8, depth=1), trained)
    with pytest.raises(ConfigError, match="Model parameters missing from the snapshot file"):
        continue_training(create_model("unet", 2, base_channels=8, depth=3), trained)


def test_continue_training_runs_with_the_checkpoint_map_and_model(trained, tmp_path):
    ck = tmp_path / "ck"
    shutil.copytree(trained, ck)
    proj = make_project(tmp_path / "p", n_train=2, n_val=1)
    cfg = tiny_config(epochs=1, val_every=1, weights_init_type="continue_training")
    del cfg["unetkit"]["model"]  # adopted from the checkpoint (unet, base 8)
    del cfg["unetkit"]["model_options"]
    res = train(proj, cfg, tmp_path / "run", init=ck, progress=False)
    info = read_card(res.last_checkpoint)
    assert info.model == "unet" and info.model_options["base_channels"] == 8

    other = make_project(tmp_path / "p2", classes=("lemon", "kiwi"), n_train=2, n_val=1)
    with pytest.raises(ConfigError, match="sets of classes for model and dataset do not match"):
        train(other, cfg, tmp_path / "run2", init=ck, progress=False)
    with pytest.raises(ConfigError, match="config for previous training wasn't found"):
        train(proj, cfg, tmp_path / "run3", progress=False)
    with pytest.raises(ConfigError, match="config for previous training wasn't found"):
        train(proj, cfg, tmp_path / "run4", init=ck / "model.pt", progress=False)
    conf = json.loads((ck / "config.json").read_text())
    conf["class_title_to_idx"] = {"bg": 1, "fg": 0}
    (ck / "config.json").write_text(json.dumps(conf))
    with pytest.raises(ConfigError, match="Effective integer id for class bg does not match"):
        train(proj, cfg, tmp_path / "run5", init=ck, progress=False)


def test_continue_training_keeps_a_permuted_class_map(tmp_path):
    proj = make_project(tmp_path / "p", classes=("lemon", "kiwi"), n_train=2, n_val=1)
    first = train(proj, tiny_config(epochs=1, val_every=1), tmp_path / "r1", progress=False).last_checkpoint
    conf = json.loads((first / "config.json").read_text())
    assert conf["class_title_to_idx"] == {"bg": 0, "kiwi": 1, "lemon": 2}
    conf["class_title_to_idx"] = {"bg": 0, "kiwi": 2, "lemon": 1}
    (first / "config.json").write_text(json.dumps(conf))
    cfg = tiny_config(epochs=1, val_every=1, weights_init_type="continue_training")
    res = train(proj, cfg, tmp_path / "r2", init=first, progress=False)
    assert read_card(res.last_checkpoint).classes.class_title_to_idx == {"bg": 0, "kiwi": 2, "lemon": 1}
