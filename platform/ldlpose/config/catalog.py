"""The names a config is checked against, kept free of torch so that loading a config stays cheap.

The implementations own the behaviour (:mod:`ldlpose.models.backbones`, :mod:`ldlpose.metrics`,
:mod:`ldlpose.inference.profile`); tests/config/test_config_imports.py checks that these lists match them.
"""

from __future__ import annotations

BACKBONES = ("efficientnet_b0", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "resnet101",
             "resnet152", "resnet18", "resnet34", "resnet50", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0")
"""ldlpose.models.backbones.available(), sorted."""

METRIC_NAMES = ("mae_yaw", "mae_pitch", "mae_roll", "mae", "maev", "geodesic")
"""ldlpose.metrics.METRIC_NAMES: the error metrics every evaluation reports."""

COST_METRICS = ("latency_ms", "latency_p90_ms", "latency_batch_ms", "latency_batch_p90_ms", "params_m", "macs_m")
"""ldlpose.inference.profile.COST_METRICS: what a multi-objective search may minimise besides the error."""
