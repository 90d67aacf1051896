"""The run config: one YAML schema for a training run (the search space extends it).

Loaded strictly by :func:`load_run_config`; see ``configs/`` for shipped examples and the README for
every key. Angles are degrees, learning rates are per step, epochs count passes over the training set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ldlpose.config.hparams import MethodConfig, default_method
from ldlpose.config.schema import FieldError, Strict, parse_override, set_dotted, validate
from ldlpose.config.splits import check_split_paths
from ldlpose.errors import ConfigError, closest, unknown
from ldlpose.infra.locations import resolve_data_root

__all__ = [
    "AccelConfig", "AugmentConfig", "DataConfig", "MethodConfig", "ModelConfig", "OptimizerConfig", "ResourcesConfig",
    "RunConfig", "ScheduleConfig", "TrainConfig", "load_run_config", "run_config_from_dict",
]


class ModelConfig(Strict):
    backbone: str = "resnet18"
    weights: str = "none"  # none | imagenet | <path to a state dict>
    # HopeNet keeps BatchNorm statistics at their pretrained values (BN in eval mode while training).
    frozen_bn: bool = False


class AugmentConfig(Strict):
    flip: float = Field(default=0.5, ge=0, le=1)  # probability of a mirror
    scale_min: float = Field(default=0.8, gt=0, le=1)  # smallest crop side / image side
    shift: float = Field(default=0.1, ge=0, le=1)  # crop centre moves by +/- this
    color: float = Field(default=0.25, ge=0, le=1)  # brightness/contrast/saturation
    blur: float = Field(default=0.1, ge=0, le=1)  # probability of a Gaussian blur


class DataConfig(Strict):
    # Prepared datasets and benchmarks live under it; left out, $LDLPOSE_DATA else ldlpose-data
    # (ldlpose.infra.locations), resolved when the config is loaded so the written config names it.
    root: str = Field(default_factory=resolve_data_root)
    train: str = "synthhead/train"  # a prepared dataset, relative to root or absolute
    # Model selection uses a subject-disjoint split: a prepared dataset given here, or else
    # val_fraction of the training subjects held out (drawn with a fixed seed, never train.seed).
    # Neither may be the training folder or a benchmark's test folder (ldlpose.config.splits).
    val: str | None = "synthhead/val"
    val_fraction: float = Field(default=0.1, gt=0, lt=1)
    benchmarks: list[str] = Field(default_factory=lambda: ["synth"])
    image_size: int = Field(default=64, ge=32, le=1024)
    # Drop training/validation rows with any |angle| above this (HopeNet-family training uses 99).
    max_abs_angle_deg: float | None = Field(default=None, gt=0)
    max_train_samples: int | None = Field(default=None, ge=1)
    max_eval_samples: int | None = Field(default=None, ge=1)
    loader_workers: int = Field(default=0, ge=0)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    # Benchmarks are test sets: by default scored once, on the selected (best-validation) epoch.
    # True adds a per-epoch test curve (<benchmark>_mae each epoch); it never chooses anything.
    benchmarks_every_epoch: bool = False


class OptimizerConfig(Strict):
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(default=1e-3, gt=0, le=10)
    head_lr_mult: float = Field(default=1.0, gt=0)  # HopeNet trains its heads at 5x
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)  # sgd only


class ScheduleConfig(Strict):
    name: Literal["cosine", "step", "exponential", "none"] = "cosine"
    step_size: int = Field(default=10, ge=1)  # epochs between decays (step)
    gamma: float = Field(default=0.1, gt=0, le=1)  # decay factor (step, exponential)
    warmup_epochs: int = Field(default=0, ge=0)


_SWITCH = ("auto", True, False)
_COMPILE = (False, True, "default", "reduce-overhead", "max-autotune")


class AccelConfig(Strict):
    """The GPU fast paths (ldlpose.train.accel). "auto" is on for CUDA and off on the CPU, where
    channels-last buys little and cuDNN does not exist: left at its defaults, a CPU run is unchanged."""

    channels_last: Literal["auto"] | bool = "auto"  # NHWC weights and images: tensor-core convolutions
    # cuDNN times its convolution algorithms per input shape and keeps the fastest; the pick may
    # differ between runs, so false where a GPU run must repeat bit for bit.
    cudnn_benchmark: Literal["auto"] | bool = "auto"
    # torch.compile the network: false, true (torch's "default" mode) or a mode by name. Compiling
    # costs seconds to minutes at the start of every run and needs a C/C++ compiler on the worker.
    compile: Literal["default", "reduce-overhead", "max-autotune"] | bool = False

    @field_validator("channels_last", "cudnn_benchmark", "compile", mode="before")
    @classmethod
    def _one_of(cls, value: object, info: ValidationInfo) -> object:
        # Checked here, not by the union: pydantic's union errors list each member apart, and
        # Literal[True] would take 1 (1 == True). YAML's true/false/on/off arrive as booleans.
        choices = _COMPILE if info.field_name == "compile" else _SWITCH
        if any(value is c or (isinstance(c, str) and value == c) for c in choices):
            return value
        spelt = ", ".join(str(c).lower() if isinstance(c, bool) else repr(c) for c in choices)
        hint = closest(value, [c for c in choices if isinstance(c, str)]) if isinstance(value, str) else ""
        raise FieldError("", f"must be one of {spelt}, got {value!r}{hint}")


class TrainConfig(Strict):
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=64, ge=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    grad_clip: float | None = Field(default=None, gt=0)  # max global L2 norm
    seed: int = 0
    # The validation metric that selects the run's checkpoint (lower is better); a search sets it to
    # its objective. Only validation metrics may choose a model, never a test benchmark's.
    select_metric: str = "val_mae"
    # Worker failures resumed from a checkpoint; -1: no limit, except that a run (either engine,
    # `ldlpose train` or a search's trial) stops after the same failure 3 times in a row at the same
    # checkpoint (ldlpose.train.failures.SAME_FAILURE_CAP says why).
    max_failures: int = Field(default=1, ge=-1)
    accel: AccelConfig = Field(default_factory=AccelConfig)  # GPU fast paths; off on the CPU by default


class ResourcesConfig(Strict):
    workers: int = Field(default=1, ge=1)
    gpus_per_worker: float = Field(default=0.0, ge=0)
    cpus_per_worker: float = Field(default=1.0, gt=0)
    # How the run is executed (ldlpose.train.run.engine): "auto" trains one CPU worker in the calling
    # process (a Tune trial, or `ldlpose train`) and anything larger on Ray Train's TorchTrainer.
    engine: Literal["auto", "ray_train", "in_process"] = "auto"

    @property
    def single_cpu_worker(self) -> bool:
        return self.workers == 1 and self.gpus_per_worker == 0


class RunConfig(Strict):
    name: str = "run"
    # A union discriminated on method.name: each method's own hyperparameter model (ldlpose.config.hparams).
    method: MethodConfig = Field(default_factory=default_method)
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> RunConfig:
        check_name(self.name)
        _check_backbone(self.model.backbone)
        _check_benchmarks(self.data.benchmarks)
        check_selection_metric("train.select_metric", self.train.select_metric)
        if self.resources.engine == "in_process" and not self.resources.single_cpu_worker:
            raise FieldError("resources.engine", "in_process trains one CPU worker; use ray_train or auto for "
                             f"workers={self.resources.workers}, gpus_per_worker={self.resources.gpus_per_worker}, "
                             "got 'in_process'")
        if self.train.schedule.warmup_epochs >= self.train.epochs:
            raise FieldError("train.schedule.warmup_epochs",
                             f"must be < train.epochs ({self.train.epochs}), got {self.train.schedule.warmup_epochs}")
        return self

    def to_dict(self) -> dict:
        """The resolved config as plain data; ``method.hparams`` holds the values the config gave
        (the method's defaults fill in the rest), so runs of different searches line up in MLflow."""
        data = self.model_dump(mode="json")
        data["method"]["hparams"] = self.method.hparams.given()
        return data


def check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise FieldError("name", f"must be letters, digits, '.', '_' or '-' (used in paths), got {name!r}")


def check_selection_metric(key: str, name: str) -> None:
    """``name`` must be a validation metric: ``val_`` plus one of the reported error metrics."""
    from ldlpose.metrics import METRIC_NAMES

    accepted = [f"val_{m}" for m in METRIC_NAMES]
    if name in accepted:
        return
    suffixes = [m for m in METRIC_NAMES if name.endswith(f"_{m}") and len(name) > len(m) + 1]
    if suffixes:
        metric = max(suffixes, key=len)
        raise FieldError(key, f"{name!r} is measured on a test benchmark; a model is chosen on the validation "
                              "split only (test benchmarks are measured and reported, never used to choose): "
                              f"use val_{metric}")
    raise FieldError(key, f"{name!r} is not a reported validation metric; accepted: {', '.join(accepted)}")


def _check_backbone(name: str) -> None:
    from ldlpose.models import backbones  # the registry itself, torch-free to import

    if name not in backbones.available():
        raise FieldError("model.backbone", str(unknown("backbone", name, backbones.available())))


def _check_benchmarks(names: list[str]) -> None:
    from ldlpose.data import benchmarks

    for i, name in enumerate(names):
        if name not in benchmarks.available():
            raise FieldError(f"data.benchmarks[{i}]", str(unknown("benchmark", name, benchmarks.available())))


def run_config_from_dict(data: dict, *, file: str | None = None) -> RunConfig:
    return validate(RunConfig, data, file=file)


def read_yaml(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(data, key, value)
    return data


def load_run_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a run-config YAML, apply ``--set dotted.key=value`` overrides, validate strictly, and check
    that its training, validation and test folders are distinct (ldlpose.config.splits). Stored run
    configs (checkpoints, trials) are rebuilt with :func:`run_config_from_dict`, without that check."""
    data = apply_overrides(read_yaml(path), list(overrides))
    run = run_config_from_dict(data, file=str(path))
    check_split_paths(run.data, str(path))
    return run
