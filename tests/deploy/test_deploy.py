"""`ldlpose export`: a checkpoint and the same model registered in MLflow (SQLite store, no Ray)
go to ONNX and pt2; onnxruntime's and torch.export's angles match the PyTorch model's on a batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ldlpose.cli import main

pytestmark = pytest.mark.slow
SIZE = 32
BATCH = 7  # not the batch of 2 the export traces with: the batch must stay dynamic


def write_checkpoint(directory: Path, data_root: Path, method_name: str = "gldl", seed: int = 0) -> Path:
    """A checkpoint as training writes it (random ResNet-18 at 32 px) of a run trained on ``data_root``."""
    from ldlpose import methods
    from ldlpose.config import run_config_from_dict
    from ldlpose.models import build_model

    torch.manual_seed(seed)
    run = run_config_from_dict({"name": "tiny", "method": {"name": method_name},
                                "model": {"backbone": "resnet18", "weights": "none"},
                                "data": {"root": str(data_root), "train": "synthhead/train", "image_size": SIZE}})
    net = build_model(methods.create(method_name), "resnet18", "none")
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict(), "run": run.to_dict(), "metrics": {"val_mae": 30.0}, "epoch": 0},
               directory / "checkpoint.pt")
    return directory


@pytest.fixture(scope="module")
def checkpoint(synth_root, tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "gldl", synth_root)


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.rand(BATCH, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module")
def reference(checkpoint, batch) -> np.ndarray:
    """The PyTorch model's angles, straight from the checkpoint."""
    from ldlpose.inference.predictor import predictor_from_checkpoint

    predictor, _ = predictor_from_checkpoint(checkpoint)
    with torch.no_grad():
        return predictor(batch).double().numpy()


@pytest.fixture(scope="module")
def registered(checkpoint, tmp_path_factory) -> str:
    """A SQLite tracking store holding the checkpoint as version 1 of headpose-synth, alias champion."""
    from ldlpose import tracking

    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    tracker = tracking.SearchTracker(uri, "export-search")
    tracker.start("space: {}\n", {}, "random", 0, {})
    run_id = tracker.trial_started("trial_0", {"method": "gldl"})
    model_uri = tracker.log_trial_model("trial_0", checkpoint)
    best = {"trial_id": "trial_0", "run_id": run_id, "model_uri": model_uri, "method": "gldl",
            "backbone": "resnet18", "selected_epoch": 0, "scores": {"val_mae": 30.0, "synth_mae": 31.0},
            "selection": {"metric": "val_mae", "value": 30.0, "split": "synthhead/val", "rows": 32,
                          "content_hash": "rows-a"}}
    out = tracking.register_champions(uri, "export-search", best, ["synth"])
    assert out["synth"] == {**out["synth"], "model": "headpose-synth", "version": "1", "champion": "1"}
    return uri


def onnxruntime_angles(path: Path, batch: torch.Tensor) -> np.ndarray:
    """The exported file run by onnxruntime itself, fed as its description says."""
    import onnxruntime

    description = json.loads(path.with_suffix(".json").read_text())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run([description["output"]["name"]], {description["input"]["name"]: batch.numpy()})
    return np.asarray(output, dtype=np.float64)


def test_a_checkpoint_exports_to_onnx_with_the_same_angles_and_its_description(checkpoint, batch, reference,
                                                                               tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 0
    assert f"wrote {out} and {out.with_suffix('.json')}" in capsys.readouterr().out
    got = onnxruntime_angles(out, batch)
    assert got.shape == (BATCH, 3)
    np.testing.assert_allclose(got, reference, atol=1e-3, rtol=0)
    assert np.ptp(reference, axis=0).max() > 0.01  # a batch of distinct answers, not one constant
    description = json.loads(out.with_suffix(".json").read_text())
    assert description["input"] == {"name": "images", "size": SIZE, "layout": "NCHW", "colour": "RGB",
                                    "scale": 255.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    assert description["about"] == {"method": "gldl", "backbone": "resnet18"}
    # The crop of the run's training data, from its manifest: what `ldlpose predict` crops with.
    assert description["crop"]["name"] == "synthhead-full-image"


def test_a_checkpoint_exports_to_pt2_with_the_same_angles(checkpoint, batch, reference, tmp_path):
    out = tmp_path / "model.pt2"
    assert main(["export", str(checkpoint / "checkpoint.pt"), "--out", str(out)]) == 0  # format from the suffix
    with torch.no_grad():
        got = torch.export.load(str(out)).module()(batch).double().numpy()
    np.testing.assert_allclose(got, reference, atol=1e-3, rtol=0)
    from ldlpose.inference.onnx import read_description

    description = read_description(out.with_suffix(".json"))
    assert description.size == SIZE and dict(description.about)["method"] == "gldl"


@pytest.mark.parametrize("uri", ["models:/headpose-synth@champion", "models:/headpose-synth/1"])
def test_a_registered_model_exports_to_onnx_with_the_checkpoints_angles(uri, registered, batch, reference,
                                                                        tmp_path):
    out = tmp_path / "registered.onnx"
    assert main(["export", uri, "--out", str(out), "--tracking-uri", registered]) == 0
    np.testing.assert_allclose(onnxruntime_angles(out, batch), reference, atol=1e-3, rtol=0)
    assert json.loads(out.with_suffix(".json").read_text())["crop"]["name"] == "synthhead-full-image"


def test_a_registered_model_exports_to_pt2(registered, batch, reference, tmp_path):
    out = tmp_path / "registered.pt2"
    assert main(["export", "models:/headpose-synth@champion", "--out", str(out), "--tracking-uri", registered]) == 0
    with torch.no_grad():
        got = torch.export.load(str(out)).module()(batch).double().numpy()
    np.testing.assert_allclose(got, reference, atol=1e-3, rtol=0)


def test_bad_inputs_are_one_line_errors_naming_the_path_or_uri(registered, checkpoint, tmp_path, capsys):
    missing = tmp_path / "no-such-checkpoint"
    cases = [
        (["export", str(missing), "--out", str(tmp_path / "m.onnx")],
         f"'{missing}' is neither a models:/ URI nor an existing checkpoint"),
        (["export", str(tmp_path / "empty"), "--out", str(tmp_path / "m.onnx")], "no checkpoint at"),
        (["export", "models:/headpose-nothing@champion", "--out", str(tmp_path / "m.onnx"),
          "--tracking-uri", registered], "cannot load model 'models:/headpose-nothing@champion'"),
        (["export", str(tmp_path / "model.onnx"), "--out", str(tmp_path / "m.pt2")],
         "model.onnx is an exported model already"),
        (["export", str(checkpoint), "--out", str(tmp_path / "m.onnx"), "--format", "pt2"],
         "--out must end in .pt2 for --format pt2"),
        (["export", str(checkpoint), "--out", str(tmp_path / "m.bin")], "name a .onnx or .pt2 file"),
    ]
    (tmp_path / "empty").mkdir()
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("ldlpose export: error: ") and message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err


def test_asg_goes_to_pt2_though_not_to_onnx(tmp_path, batch, capsys):
    """ASG decodes through an SVD: ONNX has no operator for it, torch.export keeps it."""
    from ldlpose.inference.predictor import predictor_from_checkpoint

    asg = write_checkpoint(tmp_path / "asg", tmp_path / "no-data", "asg", seed=3)
    assert main(["export", str(asg), "--out", str(tmp_path / "asg.pt2")]) == 0
    predictor, _ = predictor_from_checkpoint(asg)
    with torch.no_grad():
        expected = predictor(batch).double().numpy()
        got = torch.export.load(str(tmp_path / "asg.pt2")).module()(batch).double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)
    assert "crop" not in json.loads((tmp_path / "asg.json").read_text())  # its training data is not here
    # Another folder: asg.onnx would share asg.json with asg.pt2, and export does not overwrite it.
    assert main(["export", str(asg), "--out", str(tmp_path / "onnx" / "asg.onnx")]) == 2
    assert "SVD" in capsys.readouterr().err
