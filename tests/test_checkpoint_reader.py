"""The one checkpoint reader (``ldlpose.train.checkpoints``): what export, evaluation and tracking load.

Reading a checkpoint must not import Ray: ``ldlpose evaluate`` and ``ldlpose export`` run where Ray is
neither wanted nor started.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ldlpose.errors import DataError
from ldlpose.train.checkpoints import CHECKPOINT_FILE, checkpoint_file, load_checkpoint, save_checkpoint


def _write(folder: Path) -> Path:
    net = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    folder.mkdir(parents=True)
    save_checkpoint(folder, model_state=net.state_dict(), optimizer=optimizer, scheduler=scheduler, epoch=0,
                    history=[{"epoch": 1, "val_mae": 3.0}], run={"method": {"name": "gldl"}})
    return folder


def test_a_checkpoint_reads_back_from_its_folder_or_its_file(tmp_path):
    folder = _write(tmp_path / "checkpoint_epoch_0001")
    assert checkpoint_file(folder) == folder / CHECKPOINT_FILE
    assert checkpoint_file(folder / CHECKPOINT_FILE) == folder / CHECKPOINT_FILE
    for path in (folder, folder / CHECKPOINT_FILE):
        state = load_checkpoint(path)
        assert state["metrics"] == {"epoch": 1, "val_mae": 3.0} and state["run"]["method"]["name"] == "gldl"


def test_bad_checkpoints_are_data_errors_naming_the_file(tmp_path):
    with pytest.raises(DataError, match=f"no checkpoint at {tmp_path / 'none'}"):
        load_checkpoint(tmp_path / "none")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"cannot read checkpoint .*broken\.pt"):
        load_checkpoint(tmp_path / "broken.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(DataError, match=r"foreign.pt lacks \['model', 'run'\]"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_export_evaluate_and_tracking_read_through_the_one_module_without_importing_ray(tmp_path):
    folder = _write(tmp_path / "checkpoint_epoch_0001")
    code = ("import sys; from ldlpose import export, evaluation; from ldlpose.train import checkpoints; "
            "assert export.load_checkpoint is checkpoints.load_checkpoint; "
            f"checkpoints.load_checkpoint({str(folder)!r}); "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
