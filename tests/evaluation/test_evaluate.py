"""`ldlpose evaluate`, `export` and `leaderboard` end to end: a checkpoint, the same model as a
logged MLflow model (real server) and as ONNX give the same scores, logged with protocol and data hash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ldlpose.cli import main
from ldlpose.errors import ConfigError

pytestmark = pytest.mark.slow
SIZE = 32


def write_checkpoint(directory: Path, method_name: str = "gldl", seed: int = 0) -> Path:
    """A checkpoint as training writes it: ResNet-18 at 32 px from a seeded random init."""
    from ldlpose import methods
    from ldlpose.config import run_config_from_dict
    from ldlpose.models import build_model

    torch.manual_seed(seed)
    run = run_config_from_dict({"name": "tiny", "method": {"name": method_name},
                                "model": {"backbone": "resnet18", "weights": "none"},
                                "data": {"image_size": SIZE}})
    net = build_model(methods.create(method_name), "resnet18", "none")
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict(), "run": run.to_dict(), "metrics": {}, "epoch": 0},
               directory / "checkpoint.pt")
    return directory


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "gldl")


@pytest.fixture(scope="module")
def onnx_model(checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "gldl.onnx"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    return out


def evaluate_json(capsys, *argv) -> dict:
    capsys.readouterr()  # what came before (MLflow's own messages) is not ours to parse
    assert main(["evaluate", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_checkpoint_scores_carry_protocol_rows_and_data_hash(checkpoint, synth_root, tmp_path, capsys):
    from ldlpose.data import benchmarks
    from ldlpose.data.shards import read_labels

    out = evaluate_json(capsys, checkpoint, "--benchmark", "synth", "--data-root", synth_root, "--no-log",
                        "--out", tmp_path)
    result = out["results"][0]
    folder = benchmarks.get("synth").resolve(synth_root)
    assert result["protocol"] == "synth" and result["content_hash"] == benchmarks.get("synth").identity(folder)[
        "content_hash"]
    assert result["rows"] == result["rows_stored"] == len(read_labels(folder)["key"]) == 32
    metrics = result["metrics"]
    assert set(metrics) == {"mae_yaw", "mae_pitch", "mae_roll", "mae", "maev", "geodesic"}
    assert metrics["mae"] == pytest.approx((metrics["mae_yaw"] + metrics["mae_pitch"] + metrics["mae_roll"]) / 3)
    assert out["kind"] == "checkpoint" and out["model_id"].startswith("sha256:") and out["method"] == "gldl"
    plot, record = (Path(f) for f in result["files"])
    assert plot.suffix == ".png" and plot.stat().st_size > 1000
    assert json.loads(record.read_text())["metrics"] == metrics


def test_the_same_model_scores_the_same_through_checkpoint_registry_and_onnx(
        checkpoint, onnx_model, synth_root, mlflow_server, tmp_path, capsys):
    from ldlpose import tracking

    tracker = tracking.SearchTracker(mlflow_server, "evaluate-parity")
    tracker.start("space: {}\n", {}, "random", 0, {})
    tracker.trial_started("trial_0", {"method": "gldl"})
    model_uri = tracker.log_trial_model("trial_0", checkpoint)
    common = ["--benchmark", "synth", "--data-root", synth_root, "--tracking-uri", mlflow_server, "--out", tmp_path]
    scores = {kind: evaluate_json(capsys, model, *common)["results"][0]["metrics"]
              for kind, model in (("checkpoint", checkpoint), ("registry", model_uri), ("onnx", onnx_model))}
    for kind in ("registry", "onnx"):
        for key, value in scores["checkpoint"].items():
            assert scores[kind][key] == pytest.approx(value, abs=1e-3), (kind, key)
    assert main(["leaderboard", "synth", "--tracking-uri", mlflow_server, "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    assert sorted(e["kind"] for e in entries) == ["checkpoint", "onnx", "registry"]
    assert {e["protocol"] for e in entries} == {"synth"} and len({e["content_hash"] for e in entries}) == 1
    assert {e["method"] for e in entries} == {"gldl"}
    registry = next(e for e in entries if e["kind"] == "registry")
    assert registry["model"] == model_uri and registry["metrics"]["mae"] == pytest.approx(scores["registry"]["mae"])
    # Evaluating again reuses the model's run: still one line per model and data.
    evaluate_json(capsys, onnx_model, *common)
    assert main(["leaderboard", "synth", "--tracking-uri", mlflow_server]) == 0
    table = capsys.readouterr().out
    assert table.count("protocol synth, data sha256:") == 1  # one group: ranked together
    assert len([line for line in table.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]) == 3
    assert str(onnx_model) in table and model_uri in table


def test_an_external_onnx_model_is_fed_and_read_as_its_description_says(checkpoint, synth_root, tmp_path, capsys):
    """A model taking NHWC BGR pixels in [0, 255] and answering pitch, yaw, roll in radians."""
    from ldlpose.inference.predictor import predictor_from_checkpoint

    predictor, _ = predictor_from_checkpoint(checkpoint)

    class External(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = predictor

        def forward(self, bgr_nhwc):
            rgb = bgr_nhwc.flip(-1).permute(0, 3, 1, 2) / 255.0
            yaw, pitch, roll = self.inner(rgb).unbind(-1)
            return torch.deg2rad(torch.stack([pitch, yaw, roll], dim=-1))

    path = tmp_path / "external.onnx"
    torch.onnx.export(External().eval(), (torch.rand(2, SIZE, SIZE, 3) * 255,), str(path), dynamo=True,
                      dynamic_shapes={"bgr_nhwc": {0: torch.export.Dim("batch")}}, external_data=False)
    path.with_suffix(".json").write_text(json.dumps({
        "input": {"size": SIZE, "layout": "NHWC", "colour": "BGR", "scale": 1.0},
        "output": {"order": ["pitch", "yaw", "roll"], "units": "radians"}, "about": {"method": "someone's"}}))
    common = ["--benchmark", "synth", "--data-root", synth_root, "--no-log", "--out", tmp_path]
    external = evaluate_json(capsys, path, *common)
    reference = evaluate_json(capsys, checkpoint, *common)
    assert external["method"] == "someone's"
    for key, value in reference["results"][0]["metrics"].items():
        assert external["results"][0]["metrics"][key] == pytest.approx(value, abs=1e-3), key


def test_description_errors_name_the_file_and_the_key(tmp_path):
    from ldlpose.inference.onnx import read_description

    path = tmp_path / "m.json"
    for text, message in (
        ({"input": {"size": 64, "colour": "BRG"}}, r"m.json: input.colour: must be one of \['RGB', 'BGR'\], got 'BRG'"),
        ({"input": {"size": 64, "mean_rgb": [0, 0, 0]}}, "m.json: input.mean_rgb: unknown key"),
        ({"input": {"size": 64}, "output": {"order": ["yaw", "yaw", "roll"]}}, "output.order: must name yaw"),
        ({"input": {"size": 4}}, "input.size: must be an integer >= 8"),
    ):
        path.write_text(json.dumps(text))
        with pytest.raises(ConfigError, match=message):
            read_description(path)
    with pytest.raises(ConfigError, match="no preprocessing description"):
        read_description(tmp_path / "absent.json")


def test_asg_reports_its_own_maev_beside_the_uniform_one(synth_root, tmp_path, capsys):
    asg = write_checkpoint(tmp_path / "asg", "asg", seed=3)
    out = evaluate_json(capsys, asg, "--benchmark", "synth", "--data-root", synth_root, "--no-log", "--out", tmp_path)
    metrics = out["results"][0]["metrics"]
    assert "maev_asg" in metrics and np.isfinite(metrics["maev_asg"]) and metrics["maev_asg"] != metrics["maev"]
    assert main(["export", str(asg), "--out", str(tmp_path / "asg.onnx")]) == 2
    assert "SVD" in capsys.readouterr().err


def test_unknown_benchmark_and_missing_model_are_one_line_errors(synth_root, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing"), "--benchmark", "synth", "--no-log"]) == 2
    assert "neither a models:/ URI nor an existing checkpoint" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--benchmark", "aflw200", "--no-log"]) == 2
    assert "did you mean 'aflw2000'" in capsys.readouterr().err


def test_flip_tta_predictions_are_mirror_consistent_and_scored_beside_single_view(
        checkpoint, synth_root, tmp_path, capsys):
    """With flip TTA a mirrored crop gets exactly the mirrored pose (yaw and roll negated), which a
    single view of a random network does not; the CLI scores both and keeps the single-view ones."""
    from ldlpose.evaluation.harness import load_model

    model = load_model(str(checkpoint))
    images = np.random.default_rng(0).integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8)
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    signs = np.array([-1.0, 1.0, -1.0])
    np.testing.assert_allclose(model.predict_flip_tta(mirrored), model.predict_flip_tta(images) * signs, atol=1e-4)
    assert np.abs(model.predict(mirrored) - model.predict(images) * signs).max() > 1e-3
    plain = evaluate_json(capsys, checkpoint, "--benchmark", "synth", "--data-root", synth_root, "--no-log",
                          "--out", tmp_path)["results"][0]["metrics"]
    both = evaluate_json(capsys, checkpoint, "--benchmark", "synth", "--data-root", synth_root, "--no-log",
                         "--out", tmp_path, "--flip-tta")["results"][0]["metrics"]
    assert {k: both[k] for k in plain} == plain
    assert both["flip_tta_mae"] != plain["mae"] and both["flip_tta_mae"] == pytest.approx(
        np.mean([both["flip_tta_mae_yaw"], both["flip_tta_mae_pitch"], both["flip_tta_mae_roll"]]))
    assert main(["evaluate", str(checkpoint), "--benchmark", "synth", "--data-root", str(synth_root), "--no-log",
                 "--out", str(tmp_path), "--flip-tta"]) == 0
    assert "synth + flip TTA" in capsys.readouterr().out


def test_flip_tta_of_an_exported_graph_is_a_clear_error(onnx_model, synth_root, tmp_path, capsys):
    assert main(["evaluate", str(onnx_model), "--benchmark", "synth", "--data-root", str(synth_root),
                 "--no-log", "--out", str(tmp_path), "--flip-tta"]) == 2
    assert "raw outputs, which a onnx model" in capsys.readouterr().err


def test_bias_reports_the_methods_expectation_bias_on_the_benchmarks_angles(
        checkpoint, synth_root, tmp_path, capsys):
    from ldlpose import methods
    from ldlpose.data.shards import read_labels

    result = evaluate_json(capsys, checkpoint, "--benchmark", "synth", "--data-root", synth_root, "--no-log",
                           "--out", tmp_path, "--bias")["results"][0]
    true = read_labels(synth_root / "synthhead" / "test")["angles_deg"]
    expected = np.abs(methods.expectation_bias("gldl", true).numpy())
    assert result["expectation_bias"]["mean_abs"] == pytest.approx(expected.mean())
    assert result["expectation_bias"]["max_abs"] == pytest.approx(expected.max())
    assert result["expectation_bias"]["mean_abs_yaw"] == pytest.approx(expected[:, 0].mean())
    sixd = write_checkpoint(tmp_path / "sixd", "sixdrepnet")
    assert main(["evaluate", str(sixd), "--benchmark", "synth", "--data-root", str(synth_root), "--no-log",
                 "--out", str(tmp_path), "--bias"]) == 0
    assert "synth: expectation bias none (sixdrepnet regresses the pose directly" in capsys.readouterr().out


def _columns(table: dict, prefix: str) -> np.ndarray:
    return np.stack([np.asarray(table[f"{prefix}_{a}_deg"], dtype=np.float64) for a in ("yaw", "pitch", "roll")], 1)


def test_predictions_file_holds_each_rows_key_angles_and_errors(checkpoint, synth_root, tmp_path, capsys):
    import csv

    import pyarrow.parquet as pq
    from mlflow import MlflowClient

    from ldlpose.data import benchmarks
    from ldlpose.data.shards import read_labels

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = evaluate_json(capsys, checkpoint, "--benchmark", "synth", "--data-root", synth_root, "--tracking-uri", uri,
                        "--out", tmp_path / "eval", "--predictions", tmp_path / "rows.parquet")
    result, metrics = out["results"][0], out["results"][0]["metrics"]
    assert out["predictions"] == str(tmp_path / "rows.parquet")
    rows = pq.read_table(tmp_path / "rows.parquet").to_pydict()
    labels = read_labels(benchmarks.get("synth").resolve(synth_root))
    assert rows["key"] == [str(k) for k in labels["key"]] and rows["row"] == list(range(32))
    assert set(rows["benchmark"]) == {"synth"} and set(rows["protocol"]) == {"synth"}
    true, pred = _columns(rows, "true"), _columns(rows, "pred")
    np.testing.assert_allclose(true, labels["angles_deg"])
    np.testing.assert_allclose(_columns(rows, "abs_error"), np.abs(pred - true))
    # The rows are the ones the scores were computed from: their means are the logged metrics.
    for column, metric in (("abs_error_yaw_deg", "mae_yaw"), ("abs_error_roll_deg", "mae_roll"), ("mae_deg", "mae"),
                           ("maev_deg", "maev"), ("geodesic_deg", "geodesic")):
        assert np.mean(rows[column]) == pytest.approx(metrics[metric], rel=1e-6), column
    logged = [f.path for f in MlflowClient(uri).list_artifacts(result["run_id"])]
    assert "rows.parquet" in logged  # kept with the evaluation run, for error analysis later
    # CSV by the extension: the same rows.
    evaluate_json(capsys, checkpoint, "--benchmark", "synth", "--data-root", synth_root, "--no-log",
                  "--out", tmp_path / "eval", "--predictions", tmp_path / "rows.csv")
    with open(tmp_path / "rows.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["key"] for r in table] == rows["key"]
    np.testing.assert_allclose(_columns({k: [float(r[k]) for r in table] for k in table[0] if k.endswith("_deg")},
                                        "pred"), pred, rtol=1e-6)


def test_a_predictions_file_of_unknown_format_fails_before_anything_runs(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing"), "--benchmark", "synth", "--no-log",
                 "--predictions", str(tmp_path / "rows.txt")]) == 2
    err = capsys.readouterr().err
    assert "rows.txt" in err and ".csv" in err and ".parquet" in err and not (tmp_path / "rows.txt").exists()


def _register(uri: str, tracker, trial: str, model_uri: str, test_mae: float, data_hash: str, cap: int | None):
    """A search's chosen trial registered as the search driver does: test scores and their data as version tags."""
    from ldlpose import tracking

    params = {"method": {"name": "gldl"}, "data": {"max_eval_samples": cap}}
    run_id = tracker.trial_started(trial, params)
    scores = {"val_mae": 10.0, "synth_mae": test_mae, "synth_mae_yaw": test_mae - 1, "synth_geodesic": 2 * test_mae}
    best = {"trial_id": trial, "run_id": run_id, "model_uri": model_uri, "method": "gldl", "backbone": "resnet18",
            "selected_epoch": 1, "scores": scores,
            "selection": {"metric": "val_mae", "value": 10.0, "split": "synthhead/val", "rows": 32,
                          "content_hash": "val-rows"},
            "benchmark_data": {"synth": {"protocol": "synth", "content_hash": data_hash, "rows": 32}}}
    return tracking.register_champions(uri, tracker.search_name, best, ["synth"])["synth"]["version"]


def test_leaderboard_ranks_search_versions_with_evaluations_of_the_same_protocol_and_data(
        checkpoint, synth_root, tmp_path, capsys):
    from ldlpose import tracking
    from ldlpose.data import benchmarks

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data_hash = benchmarks.get("synth").identity(root=synth_root)["content_hash"]
    tracker = tracking.SearchTracker(uri, "lb-search")
    tracker.start("space: {}\n", {}, "random", 0, {})
    tracker.trial_started("t0", {})
    model_uri = tracker.log_trial_model("t0", checkpoint)
    current = _register(uri, tracker, "t0", model_uri, 5.0, data_hash, cap=16)  # scored 16 of the 32 rows
    older = _register(uri, tracker, "t1", model_uri, 3.0, "sha256:an-older-preparation", cap=None)

    # Right after the search, before any `ldlpose evaluate`: its versions are there, each in its own group.
    assert main(["leaderboard", "synth", "--tracking-uri", uri, "--json"]) == 0
    entries = {e["model"]: e for e in json.loads(capsys.readouterr().out)["entries"]}
    version = entries[f"models:/headpose-synth/{current}"]
    assert version["source"] == "search" and version["search_id"] == "lb-search" and version["trial_id"] == "t0"
    assert version["metrics"] == {"mae": 5.0, "mae_yaw": 4.0, "geodesic": 10.0}
    assert (version["protocol"], version["content_hash"], version["rows"]) == ("synth", data_hash, 16)
    assert entries[f"models:/headpose-synth/{older}"]["rows"] == 32
    assert {e["rank"] for e in entries.values()} == {1} and len({e["group"] for e in entries.values()}) == 2

    # An evaluated checkpoint on the same data is ranked with the current version, not with the older
    # data's version, whose MAE is lower but measured on other rows.
    evaluate_json(capsys, checkpoint, "--benchmark", "synth", "--data-root", synth_root, "--tracking-uri", uri,
                  "--out", tmp_path)
    assert main(["leaderboard", "synth", "--tracking-uri", uri, "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    same = [e for e in entries if e["content_hash"] == data_hash]
    assert [e["source"] for e in same] == ["search", "evaluate"]  # 5.0 beats the random network
    assert [e["rank"] for e in same] == [1, 2] and len({e["group"] for e in same}) == 1
    (other,) = [e for e in entries if e["content_hash"] != data_hash]
    assert other["rank"] == 1 and other["group"] != same[0]["group"] and other["metrics"]["mae"] == 3.0
    assert main(["leaderboard", "synth", "--tracking-uri", uri]) == 0
    text = capsys.readouterr().out
    assert f"protocol synth, data {data_hash}:" in text and "protocol synth, data sha256:an-older-preparation:" in text
    assert "search lb-search" in text and "rows are ranked only within one pair" in text

    # Evaluating the version itself: one line for it, the evaluation's, with its version named.
    evaluate_json(capsys, f"models:/headpose-synth/{current}", "--benchmark", "synth", "--data-root", synth_root,
                  "--tracking-uri", uri, "--out", tmp_path)
    assert main(["leaderboard", "synth", "--tracking-uri", uri, "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    registry = [e for e in entries if e.get("version") == current]
    assert len(registry) == 1 and registry[0]["source"] == "evaluate" and registry[0]["rows"] == 32
    assert len(entries) == 3
