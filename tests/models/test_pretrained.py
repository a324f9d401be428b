"""ImageNet initialisation from a torchvision-layout vgg16_bn state dict (file, hub cache, offline error)."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from unetkit.errors import UnetkitError
from unetkit.models import create_model, pretrained
from unetkit.models.pretrained import VGG16_BN_URL, hub_weights_path, load_vgg16_bn_encoder

from .helpers import torchvision_vgg16_bn_state


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16_bn.pth"
    torch.save(torchvision_vgg16_bn_state(), path)
    return path


def _offline(*args, **kwargs):
    raise urllib.error.URLError("network is unreachable")


def test_unet_v2_encoder_gets_every_vgg_tensor(vgg_file):
    model = create_model("unet_v2", 2, encoder_weights=str(vgg_file))
    state = torchvision_vgg16_bn_state()
    own = model.state_dict()
    n = 0
    for key, value in state.items():
        idx, param = int(key.split(".")[1]), key.split(".", 2)[2]
        block = sum(idx > s for s in (5, 12, 22, 32))
        assert torch.equal(own[f"encoder_blocks.{block}.{idx}.{param}"], value), key
        n += 1
    assert n == 91  # all `features.*` entries of a current torchvision state dict
    # the decoder is untouched (still its random init, not copied from anywhere)
    assert not torch.equal(
        own["blocks.1.seq1.seq.0.weight"], torch.zeros_like(own["blocks.1.seq1.seq.0.weight"])
    )


def test_fcn_features_loaded_and_classifier_optional(vgg_file):
    model = create_model("fcn8s", 2, head_channels=16, encoder_weights=vgg_file)
    state = torchvision_vgg16_bn_state()
    assert torch.equal(model.features[40].weight, state["features.40.weight"])
    assert torch.equal(model.features[41].running_var, state["features.41.running_var"])


def test_fc_layers_become_convolutions():
    fc = torch.randn(8, 2 * 7 * 7)
    conv = pretrained.linear_to_conv(fc, torch.Size((8, 2, 7, 7)))
    x = torch.randn(1, 2, 7, 7)
    torch.testing.assert_close(torch.nn.functional.conv2d(x, conv).flatten(), fc @ x.flatten())


def test_grayscale_input_sums_rgb_filters():
    state = torchvision_vgg16_bn_state()
    model = create_model("unet_v2", 2, in_channels=1, compact=True)
    load_vgg16_bn_encoder(model, state=state)
    expected = state["features.0.weight"].sum(dim=1, keepdim=True)
    assert torch.equal(model.encoder_blocks[0][0].weight, expected)
    four = create_model("unet_v2", 2, in_channels=4, compact=True)
    load_vgg16_bn_encoder(four, state=state)
    w = state["features.0.weight"]
    torch.testing.assert_close(four.encoder_blocks[0][0].weight[:, 3], w[:, 0] * 0.75)


def test_not_a_vgg_file_is_a_clear_error(tmp_path):
    state = torchvision_vgg16_bn_state()
    del state["features.17.weight"]
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(UnetkitError, match=r"features\.17\.weight is missing"):
        create_model("unet_v2", 2, compact=True, encoder_weights=str(bad))
    with pytest.raises(UnetkitError, match="not found"):
        create_model("unet_v2", 2, compact=True, encoder_weights=str(tmp_path / "nope.pth"))


def test_offline_error_names_url_and_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    with pytest.raises(UnetkitError) as info:
        create_model("fcn32s", 2, head_channels=8, encoder_weights="imagenet")
    message = str(info.value)
    assert VGG16_BN_URL in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "vgg16_bn-6c64b313.pth") in message
    assert not hub_weights_path().exists()


def test_cached_hub_file_is_used_without_download(tmp_path, monkeypatch, vgg_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    target = hub_weights_path()
    target.parent.mkdir(parents=True)
    target.write_bytes(vgg_file.read_bytes())
    model = create_model("unet_v2", 2, compact=True, encoder_weights="imagenet")
    assert torch.equal(
        getattr(model.encoder_blocks[4], "40").weight, torchvision_vgg16_bn_state()["features.40.weight"]
    )


def test_download_goes_to_the_hub_cache(tmp_path, monkeypatch, vgg_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst, hash_prefix))
        with open(dst, "wb") as fh:
            fh.write(vgg_file.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    path = pretrained.resolve_vgg16_bn_weights("imagenet")
    assert calls == [(VGG16_BN_URL, str(path), "6c64b313")]
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / "vgg16_bn-6c64b313.pth"
