"""A run name that is a path (`ldlpose train --name ../../x`) is refused before anything is trained,
so checkpoints (and the pruning of old ones) stay under --storage; they escaped it once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldlpose.cli import main
from ldlpose.config import run_config_from_dict
from ldlpose.errors import ConfigError
from ldlpose.train.run import fit

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "synth-mobilenet.yaml"


@pytest.mark.parametrize("name", ["../../x", "a/b", ".."])
def test_train_refuses_a_name_that_leaves_the_storage(tmp_path, capsys, name):
    storage = tmp_path / "deep" / "storage"
    status = main(["train", str(CONFIG), "--name", name, "--storage", str(storage), "--no-track",
                   "--set", f"data.root={tmp_path / 'no-data'}"])
    assert status == 2
    assert f"--name: must be letters, digits, '.', '_' or '-' (used in paths), got {name!r}" in capsys.readouterr().err
    assert list(tmp_path.rglob("*")) == []  # no data prepared, no folder made, inside or outside


def test_fit_itself_keeps_the_run_under_the_storage(tmp_path):
    config = run_config_from_dict({"data": {"root": str(tmp_path / "no-data")}})
    with pytest.raises(ConfigError, match=r"run name '\.\./x': must be one folder name under"):
        fit(config, storage_path=str(tmp_path / "storage"), name="../x")
    assert list(tmp_path.rglob("*")) == []
