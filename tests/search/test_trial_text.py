"""How a trial's sampled values are written: one helper for the console and the search's tables."""

from __future__ import annotations

from ldlpose.search.console import _params
from ldlpose.search.trials import sampled_values

ASSIGNMENT = {"method": "gldl", "model.backbone": "resnet18", "train.optimizer.lr": 0.0031622,
              "method.hparams.sigma": 2.0, "method.gldl.alpha": 0.1, "train.batch_size": 32, "_point": 3}


def test_values_go_by_their_last_name_part_sorted_without_method_or_backbone():
    assert sampled_values(ASSIGNMENT) == "alpha=0.1 sigma=2 batch_size=32 lr=0.00316"
    assert sampled_values({"grid_point": 4, "train.epochs": 3}) == "epochs=3"


def test_the_console_adds_the_method_and_the_backbone_to_the_same_text():
    assert _params(ASSIGNMENT) == "gldl alpha=0.1 sigma=2 backbone=resnet18 batch_size=32 lr=0.00316"
    assert _params({}) == ""
