"""Backbones build offline from random init, a state-dict file, or torchvision's weight cache."""

import os
import urllib.error

import pytest
import torch
import torchvision

from ldlpose.errors import ConfigError, LdlposeError
from ldlpose.models import backbones


@pytest.mark.parametrize("name", backbones.available())
def test_every_backbone_gives_its_pooled_feature(name):
    torch.manual_seed(0)
    net = backbones.build_backbone(name, "none").eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, backbones.feature_dim(name))


def test_registry_lists_the_supported_family():
    assert set(backbones.available()) == {
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2",
        "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0",
    }
    with pytest.raises(ConfigError, match="did you mean 'resnet18'"):
        backbones.build_backbone("resnet81")


def _reference_state(seed=3):
    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None).state_dict()


def test_weights_from_a_state_dict_file(tmp_path):
    state = _reference_state()
    torch.save(state, tmp_path / "r18.pt")
    net = backbones.build_backbone("resnet18", str(tmp_path / "r18.pt"))
    assert torch.equal(net.conv1.weight, state["conv1.weight"])
    torch.save({"conv1.weight": state["conv1.weight"]}, tmp_path / "partial.pt")
    with pytest.raises(ConfigError, match="does not fit resnet18"):
        backbones.build_backbone("resnet18", str(tmp_path / "partial.pt"))
    with pytest.raises(ConfigError, match="does not exist"):
        backbones.build_backbone("resnet18", str(tmp_path / "missing.pt"))


def test_imagenet_weights_come_from_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    cached = tmp_path / "hub" / "checkpoints" / os.path.basename(url)
    cached.parent.mkdir(parents=True)
    state = _reference_state(seed=4)
    torch.save(state, cached)
    net = backbones.build_backbone("resnet18", "imagenet")
    assert torch.equal(net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_imagenet_offline_names_the_file_to_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):  # the network is outside the project's control
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(LdlposeError) as info:
        backbones.build_backbone("resnet18", "imagenet")
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert str(expected) in str(info.value)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0", "resnet18", "shufflenet_v2_x0_5"])
def test_random_init_batchnorm_tracks_a_short_schedule(name, tmp_path):
    """From scratch, every BatchNorm uses PyTorch's momentum (0.1), not torchvision's ImageNet 0.01:
    after 20 training steps the running mean has moved most of the way to the data's mean."""
    net = backbones.build_backbone(name, "none")
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.momentum == backbones.SCRATCH_BN_MOMENTUM for m in norms)
    first = norms[0]
    net.train()
    with torch.no_grad():
        for _ in range(20):
            net(torch.rand(4, 3, 32, 32) + 2.0)
        net.eval()
        batch_mean = first.running_mean.clone()
        net.train()
        first.reset_running_stats()
        first.momentum = None  # the cumulative average: the data's own statistic
        net(torch.rand(4, 3, 32, 32) + 2.0)
    assert torch.allclose(batch_mean, first.running_mean, rtol=0.2, atol=0.05)
    # Pretrained weights keep the recipe they were trained with.
    state = torchvision.models.get_model(name, weights=None).state_dict()
    torch.save(state, tmp_path / "w.pt")
    kept = backbones.build_backbone(name, str(tmp_path / "w.pt"))
    reference = torchvision.models.get_model(name, weights=None)
    assert [m.momentum for m in kept.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)] == \
        [m.momentum for m in reference.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
