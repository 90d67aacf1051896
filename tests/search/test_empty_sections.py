"""An empty section of a search space (``train:``) means its defaults, as in a run config; a section
that is not a mapping is a ConfigError naming the file and the key (both were tracebacks once)."""

import pytest
import yaml

from ldlpose.cli import main
from ldlpose.errors import ConfigError
from ldlpose.search.space import load_search_space

SPACE = {
    "name": "empty",
    "method": {"name": "gldl", "hparams": {"sigma": 2.0}},
    "data": {"benchmarks": ["synth"]},
    "train": {"epochs": 3},
    "search": {"budget": {"trials": 2}, "parameters": {
        "train.optimizer.lr": {"distribution": "log_uniform", "min": 1e-4, "max": 1e-2},
        "method": {"values": {"gldl": {"alpha": {"values": [0.0, 0.1]}}, "dadl": {}}}}},
}


def _write(tmp_path, section, value):
    path = tmp_path / f"{section}.yaml"
    path.write_text(yaml.safe_dump({**SPACE, section: value}))
    return path


@pytest.mark.parametrize("section", ["train", "data", "method", "model", "resources"])
def test_an_empty_section_means_its_defaults(tmp_path, section):
    space = load_search_space(_write(tmp_path, section, None))
    for method in ("gldl", "dadl"):  # a trial's config is built from the base: the path that crashed
        config = space.run_config({"method": method, "train.optimizer.lr": 1e-3})
        assert config.method.name == method
        assert config.train.optimizer.lr == 1e-3
    if section == "train":
        assert config.train.epochs == 10  # TrainConfig's default
    if section == "data":
        assert config.data.train == "synthhead/train"


def test_empty_hparams_of_the_fixed_method(tmp_path):
    space = load_search_space(_write(tmp_path, "method", {"name": "gldl", "hparams": None}))
    assert space.run_config({"method": "gldl", "train.optimizer.lr": 1e-3}).method.name == "gldl"


def test_a_section_that_is_not_a_mapping_names_file_and_key(tmp_path, capsys):
    path = _write(tmp_path, "train", 3)
    with pytest.raises(ConfigError, match=r"train\.yaml: train: must be a mapping of settings, got int"):
        load_search_space(path)
    assert main(["search", str(path), "--storage", str(tmp_path / "runs")]) == 2
    assert "train: must be a mapping" in capsys.readouterr().err
