"""Run configs load strictly: every bad input names the file and the dotted key."""

import pytest
import yaml

from ldlpose.config import load_run_config
from ldlpose.errors import ConfigError

GOOD = {
    "name": "demo",
    "method": {"name": "gldl", "hparams": {"sigma": 2.0, "alpha": 0.1}},
    "model": {"backbone": "resnet18", "weights": "none"},
    "data": {"root": "data", "train": "synthhead/train", "benchmarks": ["synth"], "image_size": 64},
    "train": {"epochs": 3, "batch_size": 32, "optimizer": {"name": "sgd", "lr": 0.01}},
    "resources": {"workers": 2},
}


def write(tmp_path, data, name="run.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_good_config_loads_with_defaults_filled(tmp_path):
    run = load_run_config(write(tmp_path, GOOD))
    assert dict(run.method.hparams) == {"sigma": 2.0, "alpha": 0.1}  # what the config gave
    assert run.method.hparams.target == "normalized"  # the method's defaults fill in the rest
    assert run.train.optimizer.name == "sgd" and run.train.optimizer.momentum == 0.9
    assert run.train.schedule.name == "cosine"
    assert run.resources.workers == 2
    assert run.to_dict()["train"]["optimizer"]["lr"] == 0.01


def test_overrides_by_dotted_key(tmp_path):
    run = load_run_config(write(tmp_path, GOOD), ["train.epochs=7", "method.hparams.sigma=3",
                                                   "train.optimizer.name=adamw", "data.benchmarks=[synth]"])
    assert run.train.epochs == 7 and run.method.hparams["sigma"] == 3
    assert run.train.optimizer.name == "adamw"


def _with(path, value):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("train.epoch", 3, r"train\.epoch: unknown key \(did you mean 'epochs'\?\)"),
        ("train.epochs", "three", r"train\.epochs: expected an integer"),
        ("train.epochs", 0, r"train\.epochs: must be >= 1, got 0"),
        ("train.optimizer.lr", -0.1, r"train\.optimizer\.lr: must be > 0"),
        ("train.optimizer.name", "adamm", r"train\.optimizer\.name: must be one of .*did you mean 'adam'"),
        ("train.schedule.name", "linear", r"train\.schedule\.name: must be one of"),
        ("train.grad_clip", 0, r"train\.grad_clip: must be > 0"),
        ("data.image_size", 8, r"data\.image_size: must be >= 32"),
        ("data.augment.flip", 1.5, r"data\.augment\.flip: must be <= 1"),
        ("data.augment.scale_min", 0, r"data\.augment\.scale_min: must be > 0"),
        ("data.benchmarks", ["synthh"],
         r"data\.benchmarks\[0\]: unknown benchmark 'synthh' \(did you mean 'synth'\?\)"),
        ("data.benchmarks", "synth", r"data\.benchmarks: expected a list"),
        ("model.backbone", "resnet19", r"model\.backbone: unknown backbone 'resnet19'"),
        ("model.frozen_bn", "yes", r"model\.frozen_bn: expected true or false"),
        ("method.name", "gldll", r"method\.name: .*'gldl'"),
        ("method.hparams", {"sigma": -1.0}, r"method\.hparams\.sigma: must be in \[0\.1, 20\.0\] \(Gaussian width"),
        ("method.hparams", {"sigmaa": 1.0},
         r"method\.hparams\.sigmaa: unknown hyperparameter 'sigmaa' of method 'gldl' \(did you mean 'sigma'\?\)"),
        ("resources.workers", 0, r"resources\.workers: must be >= 1"),
        ("name", "my run/1", r"name: must be letters"),
        ("train.schedule.warmup_epochs", 3, r"train\.schedule\.warmup_epochs: must be < train\.epochs"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, key, value, expected):
    path = write(tmp_path, _with(key, value))
    with pytest.raises(ConfigError, match=expected) as info:
        load_run_config(path)
    assert str(info.value).startswith(str(path))


def test_file_level_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_run_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_run_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_run_config(listy)
    with pytest.raises(ConfigError, match=r"--set train: expected dotted.key=value|--set 'train'"):
        load_run_config(write(tmp_path, GOOD), ["train"])
    with pytest.raises(ConfigError, match=r"train\.epochss: unknown key"):
        load_run_config(write(tmp_path, GOOD), ["train.epochss=3"])


def test_data_root_left_out_follows_ldlpose_data_and_an_explicit_root_wins(tmp_path, monkeypatch):
    without_root = {**GOOD, "data": {k: v for k, v in GOOD["data"].items() if k != "root"}}
    monkeypatch.delenv("LDLPOSE_DATA", raising=False)
    assert load_run_config(write(tmp_path, without_root)).data.root == "ldlpose-data"
    monkeypatch.setenv("LDLPOSE_DATA", str(tmp_path / "shared"))
    run = load_run_config(write(tmp_path, without_root))
    assert run.data.root == str(tmp_path / "shared")
    assert run.to_dict()["data"]["root"] == str(tmp_path / "shared")  # the written config names it
    assert load_run_config(write(tmp_path, GOOD)).data.root == "data"  # explicit beats the environment
    assert load_run_config(write(tmp_path, without_root), ["data.root=s3://bucket/data"]).data.root == \
        "s3://bucket/data"


def test_the_shipped_configs_leave_the_data_root_to_ldlpose_data(monkeypatch, tmp_path):
    from pathlib import Path

    from ldlpose.search.space import load_search_space

    monkeypatch.setenv("LDLPOSE_DATA", str(tmp_path))
    repo = Path(__file__).resolve().parents[2]
    assert load_run_config(repo / "configs" / "synth-resnet18.yaml").data.root == str(tmp_path)
    for space in ("quickstart.yaml", "synth-confirmed.yaml"):
        assert load_search_space(repo / "search_spaces" / space).base_run.data.root == str(tmp_path)
