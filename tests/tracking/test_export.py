"""The inference module without a tracking server: export of every method, preprocessing, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from trackfixtures import make_checkpoint, synth_samples

from ldlpose import methods, tracking
from ldlpose.cli import main
from ldlpose.errors import DataError
from ldlpose.inference.predictor import IMAGENET_MEAN, IMAGENET_STD, load_image, predictor_from_checkpoint, preprocess


@pytest.mark.slow
@pytest.mark.parametrize("method_name", methods.available())
def test_every_method_exports_with_a_dynamic_batch(method_name, tmp_path):
    predictor, info = predictor_from_checkpoint(make_checkpoint(tmp_path, method_name, seed=3))
    assert info["method"] == method_name and info["image_size"] == 32
    example = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    # As mlflow's pt2 logging does: Dim.AUTO on the batch dimension of an example of batch 2.
    exported = torch.export.export(predictor, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},)).module()
    for batch in (1, 3):
        images = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = predictor(images)
        got = exported(images)
        assert got.shape == (batch, 3) and got.dtype == torch.float32
        torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-4)


def test_preprocess_matches_the_evaluation_pipeline():
    from PIL import Image

    from ldlpose.data.augment import Preprocess

    images, angles = synth_samples(1, size=48)
    image = np.ascontiguousarray(images[0][:, 4:44])  # not square: both take the centred square
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    expected, _ = Preprocess(size=32)(buffer.getvalue(), angles[0])
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    got = (preprocess([image], 32)[0] - mean) / std
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_unreadable_inputs_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"no checkpoint at .*missing"):
        predictor_from_checkpoint(tmp_path / "missing")
    bad = tmp_path / "face.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match=r"cannot read image .*face\.jpg"):
        load_image(bad)
    with pytest.raises(DataError, match=r"cannot read image .*absent\.png"):
        load_image(tmp_path / "absent.png")


def test_tracking_uri_comes_from_the_flag_then_the_environment_then_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.resolve_tracking_uri(None) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert tracking.resolve_tracking_uri(None) == "http://tracking:5000"
    assert tracking.resolve_tracking_uri("postgresql://db/mlflow") == "postgresql://db/mlflow"


def test_read_commands_do_not_create_a_database(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["registry"]) == 2
    assert main(["predict", "--model", "models:/headpose-synth@champion", "face.png"]) == 2
    err = capsys.readouterr().err
    assert err.count(f"no tracking database at {tmp_path.resolve()}/mlflow.db") == 2
    assert not (tmp_path / "mlflow.db").exists()


def test_label_distribution_plot_only_for_bin_methods(tmp_path):
    from ldlpose.report import figures as plots

    images, angles = synth_samples(3)
    for name, expected in (("gldl", True), ("sixdrepnet", False)):
        predictor, _ = predictor_from_checkpoint(make_checkpoint(tmp_path / name, name))
        figures = plots.trial_figures(predictor, images, angles, "synth")
        names = plots.save_figures(figures, tmp_path / f"{name}-plots")
        assert ("synth_label_distributions.png" in names) == expected
        assert {"synth_error_vs_angle.png", "synth_pose_samples.png"} <= set(names)
        assert all((tmp_path / f"{name}-plots" / n).stat().st_size > 5000 for n in names)


def _loaded_by(call: str, modules: list[str]) -> tuple[list[str], list[str], str]:
    """In a fresh interpreter: which of ``modules`` were loaded before and after ``call``, and what it printed."""
    import json
    import subprocess
    import sys

    code = (f"import json, sys; import ldlpose.tracking as t; import ldlpose.tracking.models as m; "
            f"names = {modules!r}; before = [n for n in names if n in sys.modules]; {call}; "
            "print(json.dumps([before, [n for n in names if n in sys.modules], t.export_worker.worker_pid()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, after, _ = json.loads(out.strip().splitlines()[-1])
    return before, after, out


def test_warm_up_loads_what_the_first_finalisation_needs():
    """The search driver's warm-up thread: in a fresh interpreter, after it, torchvision and matplotlib
    are loaded (for the plots, none of them before) and the export worker is running; the worker's
    own warm-up loads torch.export's tracing and saving and MLflow's PyTorch flavour."""
    import json

    here = ["torchvision", "matplotlib.pyplot"]
    before, after, out = _loaded_by("t.warm_up()", here)
    assert before == [] and after == here, out
    assert json.loads(out.strip().splitlines()[-1])[2] is not None, out  # the worker was started
    worker = ["torch._dynamo", "torch.export.pt2_archive._package", "mlflow.pytorch"]
    before, after, out = _loaded_by("m.warm_up_export()", worker)
    assert before == [] and after == worker, out
