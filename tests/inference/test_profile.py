"""Cost metrics of a model (ldlpose.inference.profile): MACs against a hand count, latency fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ldlpose.inference.profile import (
    COST_METRICS,
    ProfileSettings,
    _percentile,
    count_macs,
    count_params_m,
    measure_latency,
    profile_checkpoint,
    profile_module,
)


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2),
                         nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


def test_macs_match_a_hand_count_per_image():
    # conv 1: 4 x 8 x 8 outputs, each over 3 channels x 3 x 3 = 27 products -> 6912
    # conv 2 (2 groups, stride 2): 4 x 4 x 4 outputs, each over 4/2 channels x 3 x 3 = 18 -> 1152
    # linear 64 -> 5: 5 outputs x 64 inputs -> 320 (BatchNorm and ReLU are not counted)
    net = small_net()
    assert count_macs(net, torch.zeros(1, 3, 8, 8)) == 6912 + 1152 + 320
    assert count_macs(net, torch.zeros(3, 3, 8, 8)) == 6912 + 1152 + 320  # per image, whatever the batch
    assert not any(m._forward_hooks for m in net.modules())  # the hooks are removed


def test_parameters_are_counted_in_millions_without_buffers():
    net = small_net()
    by_hand = (3 * 4 * 9 + 4) + (2 * 4 * 9 + 4) + (4 + 4) + (64 * 5 + 5)
    assert count_params_m(net) == pytest.approx(by_hand / 1e6)


def test_latency_runs_warmup_plus_repeats_and_reports_median_and_p90():
    calls = []

    class Counting(nn.Module):
        def forward(self, x):
            calls.append(x.shape[0])
            return x * 2

    median, p90 = measure_latency(Counting(), torch.zeros(2, 3), warmup=2, repeats=5)
    assert calls == [2] * 7
    assert 0 < median <= p90


def test_percentile_is_numpys_linear_interpolation():
    values = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 7.0]
    assert _percentile(values, 90) == pytest.approx(np.percentile(values, 90))
    assert _percentile([4.0], 90) == 4.0


def test_a_profile_has_every_cost_metric_for_the_device_it_ran_on():
    settings = ProfileSettings(batch_size=3, warmup=1, repeats=3)
    profile = profile_module(small_net(), 8, torch.device("cpu"), settings)
    assert set(COST_METRICS) <= set(profile)
    assert profile["latency_batch_size"] == 3 and profile["profile_device"] == "cpu"
    assert profile["profile_device_name"]
    assert profile["latency_ms"] <= profile["latency_p90_ms"]
    assert profile["latency_batch_ms"] <= profile["latency_batch_p90_ms"]
    assert profile["macs_m"] == pytest.approx((6912 + 1152 + 320) / 1e6)


def test_a_checkpoint_is_profiled_as_the_exported_predictor(tmp_path):
    from ldlpose import methods
    from ldlpose.config import run_config_from_dict
    from ldlpose.inference.predictor import predictor_from_checkpoint
    from ldlpose.models import build_model

    run = run_config_from_dict({"name": "tiny", "method": {"name": "gldl"}, "model": {"backbone": "resnet18"},
                                "data": {"image_size": 32}})
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"model": build_model(methods.create("gldl"), "resnet18").state_dict(), "run": run.to_dict(),
                "metrics": {}, "epoch": 0}, folder / "checkpoint.pt")
    profile = profile_checkpoint(folder, torch.device("cpu"), ProfileSettings(batch_size=2, warmup=0, repeats=2))
    predictor, _ = predictor_from_checkpoint(folder)
    assert profile["params_m"] == pytest.approx(count_params_m(predictor))
    assert profile["macs_m"] == pytest.approx(count_macs(predictor, torch.zeros(1, 3, 32, 32)) / 1e6)
    assert profile["params_m"] > 11  # ResNet-18 and its head
