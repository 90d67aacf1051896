"""bench/sim2real.py's plumbing: arguments, the quickstart's start_from configuration, the zero
predictor on the real dev pairs (skipped, naming the folder, where they are absent), the table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sim2real():
    return _bench("sim2real")


def test_start_from_is_the_quickstarts_first_trial(sim2real):
    space, overrides = sim2real.start_from_config()
    assert "search" not in space and space["model"]["backbone"] == "shufflenet_v2_x0_5"
    assert space["method"] == {"name": "hopenet"} and space["data"]["image_size"] == 64
    assert sorted(o.split("=")[0] for o in overrides) == ["method.hparams.alpha", "train.optimizer.lr"]
    from ldlpose.config import apply_overrides, run_config_from_dict

    run = run_config_from_dict(apply_overrides({**space, "name": "x"}, overrides))  # valid as a run config
    assert run.train.epochs == 7 and abs(run.train.optimizer.lr - 6.4e-3) < 1e-12


def test_arguments_are_checked(sim2real, capsys):
    with pytest.raises(SystemExit):
        sim2real.parse_args(["--seeds", "0"])
    assert "--seeds must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sim2real.parse_args(["--generators", "nosuch"])
    args = sim2real.parse_args(["--epochs", "1", "--train", "10"])
    assert args.generators == ["synthhead", "facegen"] and args.seeds == 3 and args.epochs == 1


def test_absent_dev_folder_skips_naming_it(sim2real, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert sim2real.main(["--dev", str(missing), "--out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and str(missing) in out and not (tmp_path / "r.json").exists()


def test_summary_and_table(sim2real):
    runs = [{"seed": s, "yaw": y, "pitch": 5.0, "roll": 4.0, "mae": m, "val_mae": 7.0}
            for s, y, m in ((0, 10.0, 6.0), (1, 30.0, 13.0), (2, 20.0, 9.0))]
    summary = sim2real.summary(runs)
    assert summary["mae"] == {"median": 9.0, "min": 6.0, "max": 13.0} and summary["yaw"]["median"] == 20.0
    table = sim2real.markdown({"zero_predictor": {"yaw": 25.0, "pitch": 14.0, "roll": 14.0, "mae": 17.67,
                                                  "rows": 396},
                               "generators": {"g": {"runs": runs, "summary": summary}},
                               "size": {"train": 10, "val": 5, "epochs": 1}})
    assert "| g | 3 | 20.00 (10.00-30.00) |" in table and "**17.67**" in table and "396 real" in table


def test_zero_predictor_on_the_dev_pairs(sim2real, tmp_path, capsys):
    if not sim2real.DEFAULT_DEV.is_dir():
        pytest.skip(f"real AFLW2000 dev pairs not found at {sim2real.DEFAULT_DEV.resolve()}")
    out = tmp_path / "r.json"
    assert sim2real.main(["--zero-only", "--work", str(tmp_path / "w"), "--out", str(out)]) == 0
    import json

    zero = json.loads(out.read_text())["zero_predictor"]
    assert zero["rows"] == 396  # the aflw2000 benchmark's filter leaves out the 4 rows beyond 99 degrees
    assert 10 < zero["mae"] < 30 and zero["mae"] == pytest.approx((zero["yaw"] + zero["pitch"] + zero["roll"]) / 3)
    assert "zero predictor (0, 0, 0)" in capsys.readouterr().out


@pytest.fixture(scope="module")
def photos_check():
    return _bench("photos_check")


def test_the_ablation_generators_turn_one_ingredient_off_each(sim2real):
    from ldlpose.data.facegen import INGREDIENTS

    names = sim2real.generators()
    assert {f"facegen-no-{i}" for i in INGREDIENTS} <= set(names) and {"synthhead", "facegen"} <= set(names)
    assert names["facegen-no-human_eyes"].keywords == {"without": "human_eyes"}


def test_photos_check_scores_the_face_that_holds_the_annotated_landmarks(photos_check):
    faces = [{"box": [0, 0, 50, 50], "yaw_deg": 1.0}, {"box": [40, 40, 200, 200], "yaw_deg": 2.0},
             {"box": [60, 60, 120, 120], "yaw_deg": 3.0}]
    assert photos_check.match(faces, [100.0, 100.0])["yaw_deg"] == 2.0  # the largest of the two holding it
    assert photos_check.match(faces, [300.0, 10.0]) is None


def test_photos_check_skips_naming_the_folder(photos_check, tmp_path, capsys):
    assert photos_check.main(["--photos", str(tmp_path / "absent")]) == 0
    assert f"photos are absent: {tmp_path / 'absent'}" in capsys.readouterr().out


@pytest.fixture(scope="module")
def probes():
    return _bench("sim2real_probes")


def test_probes_cut_each_real_face_both_ways(probes, tmp_path):
    """The two framings of the same real faces: the benchmark's test crop shows the face smaller than
    300W-LP's training crop does, and the test crop is the one ``ldlpose evaluate`` feeds the model."""
    import numpy as np

    from ldlpose.data import benchmarks
    from ldlpose.data.inputs import benchmark_batches

    aflw = BENCH.parent.parent / "shared" / "realdata" / "aflw2000"
    if not aflw.is_dir():
        pytest.skip(f"real dataset samples not found at {aflw}")
    faces = probes.real_faces(aflw)
    views = probes.crops_of(faces, 64)
    assert {k: v.shape for k, v in views.items()} == {"aflw2000 test crop": (len(faces), 64, 64, 3),
                                                       "300w-lp training crop": (len(faces), 64, 64, 3)}
    lit = {k: (v.max(axis=-1) > 20).mean() for k, v in views.items()}  # black borders only on the test crop
    assert lit["300w-lp training crop"] > lit["aflw2000 test crop"]
    assert probes.rotation_response(lambda x: np.zeros((len(x), 3)), views["aflw2000 test crop"][:2]) == {
        "-20": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, "+20": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}}

    import subprocess
    import sys

    from ldlpose.data.shards import read_table

    out = tmp_path / "aflw2000"
    subprocess.run([sys.executable, "-m", "ldlpose", "prepare", "aflw2000", "--source", str(aflw), "--out", str(out)],
                   check=True, capture_output=True)
    keys = read_table(out, columns=["key"]).column("key").to_pylist()
    rows = np.array([keys.index(jpg.name) for jpg, *_ in faces])
    view = benchmarks.get("aflw2000").protocol.input
    evaluated = np.concatenate([b for b, _ in benchmark_batches(out, rows, view, 64)]).astype(float)
    assert np.abs(evaluated - views["aflw2000 test crop"]).mean() < 1.5  # the same pixels, rounding aside (0.4)
    assert np.abs(evaluated - views["300w-lp training crop"]).mean() > 20  # where a wrong crop lands (50)


def test_probes_skip_naming_the_folder(probes, tmp_path, capsys):
    assert probes.main(["unused", "--dev", str(tmp_path / "absent")]) == 0
    assert str(tmp_path / "absent") in capsys.readouterr().out
