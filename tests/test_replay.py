"""The replay benchmark's bookkeeping (bench/replay.py) on a hand-made 3-configuration table whose
answer is worked out below, the table's schema checks (bench/replay_table.py), and one real Tune
run over the same table making the same decisions as the replay (bench/replay_check.py)."""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import replay  # noqa: E402  (bench modules, importable once bench/ is on the path)
import replay_table  # noqa: E402

A, B, C = 0.001, 0.003, 0.01  # the three configurations: learning rates
# A learns best and reaches each rung first when started first; B is worst from epoch 1; C is
# ahead of B at epoch 1 but behind A from epoch 2. Epoch times differ, so no two results tie.
CURVES = {A: ([10.0, 9.0, 8.0, 7.0], 1.0), B: ([12.0, 11.0, 10.0, 9.0], 1.5), C: ([10.8, 10.5, 10.2, 10.1], 1.2)}


def _table_data() -> dict:
    base = {"name": "hand", "method": {"name": "gldl"},
            "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
            "data": {"train": "synthhead/train", "val": "synthhead/val", "image_size": 64},
            "train": {"epochs": 4, "optimizer": {"name": "adam", "lr": 0.001}},
            "resources": {"workers": 1, "cpus_per_worker": 1}}
    rows = [{"config": {"train.optimizer.lr": lr}, "seed": 0, "val_mae": val, "test_mae": [v + 0.5 for v in val],
             "epoch_s": [secs] * 4} for lr, (val, secs) in CURVES.items()]
    return {"schema": replay_table.SCHEMA,
            "metadata": {"commit": "abc1234", "machine": "hand-made", "command": "none", "created": "2026-12-07",
                         "metric": "val_mae", "test": "synth_mae", "base": base,
                         "parameters": {"train.optimizer.lr": {"values": [A, B, C]}}},
            "rows": rows}


@pytest.fixture()
def table(tmp_path) -> replay_table.Table:
    path = tmp_path / "hand.json"
    path.write_text(json.dumps(_table_data()))
    return replay_table.load(path)


def _in_order(workers: int) -> replay.Settings:
    """ASHA (grace 1, factor 2, 4 epochs: rungs at 1, 2), TPE told to start from A, then B, then C."""
    start = tuple({"train.optimizer.lr": lr} for lr in (A, B, C))
    return replay.Settings(workers=workers, trials=3, grace_period=1, reduction_factor=2, start_from=start)


def _decisions(run: replay.Replay) -> list[tuple[float, int, str]]:
    lr = {t.trial_id: t.config["train.optimizer.lr"] for t in run.trials}
    return [(lr[e.trial_id], e.epoch, e.decision) for e in run.events]


def test_asha_on_one_worker_stops_b_at_its_first_rung_and_c_at_its_second(table):
    run = replay.replay(table, "tpe-asha", 0, _in_order(1))
    assert [(t.config["train.optimizer.lr"], t.epochs, t.stopped_early) for t in run.trials] == \
        [(A, 4, False), (B, 1, True), (C, 2, True)]
    # B (12) is behind A's 10 at rung 1; C (10.8) is ahead of the median of A and B (11) at rung 1,
    # then behind A's 9 at rung 2.
    assert [t.start_s for t in run.trials] == [0.0, 4.0, 5.5]
    assert run.trial_epochs == 7
    assert run.wall_s == pytest.approx(4 * 1.0 + 1.5 + 2 * 1.2)
    assert _decisions(run)[-1] == (C, 2, "STOP")


def test_two_workers_make_the_same_decisions_in_about_half_the_time(table):
    run = replay.replay(table, "tpe-asha", 0, _in_order(2))
    assert [(t.config["train.optimizer.lr"], t.epochs) for t in run.trials] == [(A, 4), (B, 1), (C, 2)]
    assert [(t.worker, t.start_s) for t in run.trials] == [(0, 0.0), (1, 0.0), (1, 1.5)]  # C takes B's worker
    assert [e.time_s for e in run.events] == pytest.approx([1.0, 1.5, 2.0, 2.7, 3.0, 3.9, 4.0])
    assert run.trial_epochs == 7 and run.wall_s == pytest.approx(4.0)


def test_three_workers_stop_c_at_its_first_rung_because_b_has_not_reported_yet(table):
    run = replay.replay(table, "tpe-asha", 0, _in_order(3))
    # C reports epoch 1 at 1.2 s, when only A (10) is at rung 1: 10.8 is behind, so C stops there.
    assert [(t.config["train.optimizer.lr"], t.epochs) for t in run.trials] == [(A, 4), (B, 1), (C, 1)]
    assert _decisions(run)[:3] == [(A, 1, "CONTINUE"), (C, 1, "STOP"), (B, 1, "STOP")]
    assert run.trial_epochs == 6 and run.wall_s == pytest.approx(4.0)


def test_targets_are_reached_when_the_best_configuration_reports_its_best_epoch(table):
    assert table.best_val == 7.0
    one = replay.replay(table, "tpe-asha", 0, _in_order(1))
    two = replay.replay(table, "tpe-asha", 0, _in_order(2))
    assert one.reach(7.0 * 1.05) == (4, pytest.approx(4.0))  # A's 4th epoch is the 4th trial-epoch
    assert two.reach(7.0 * 1.01) == (7, pytest.approx(4.0))  # on two workers the 7th, at the same time
    assert two.reach(6.9) is None
    assert [b for _, b in one.curve()] == [10.0, 9.0, 8.0, 7.0, 7.0, 7.0, 7.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_trains_every_configuration_to_its_last_epoch(table, seed):
    for workers in (1, 2, 3):
        run = replay.replay(table, "grid", seed, replay.Settings(workers=workers))
        assert sorted(t.config["train.optimizer.lr"] for t in run.trials) == [A, B, C]
        assert all(t.epochs == 4 and not t.stopped_early for t in run.trials)
        assert run.trial_epochs == 12
        durations = [4 * CURVES[t.config["train.optimizer.lr"]][1] for t in run.trials]
        if workers == 1:
            assert run.wall_s == pytest.approx(sum(durations))
        elif workers == 2:  # the third starts on whichever worker frees first
            first, second, third = durations
            assert run.wall_s == pytest.approx(max(first, second, min(first, second) + third))
        else:
            assert run.wall_s == pytest.approx(max(durations))


def test_every_strategy_spends_its_budget_and_answers_from_the_table(table):
    for strategy in replay.STRATEGIES:
        run = replay.replay(table, strategy, 3, replay.Settings(workers=2, trials=3))
        assert len(run.trials) == 3
        for t in run.trials:
            assert t.row.val_mae == tuple(CURVES[t.config["train.optimizer.lr"]][0])
        assert sum(t.epochs for t in run.trials) == run.trial_epochs


def test_report_counts_unreached_seeds_as_infinitely_slow(table):
    import replay_report

    runs = {("tpe-asha", 2): [replay.replay(table, "tpe-asha", 0, _in_order(2))] * 3}
    summary = replay_report.summarise(table, runs)["tpe-asha@2"]
    assert summary["within_5pct"]["reached"] == 3
    assert summary["within_5pct"]["trial_epochs"]["median"] == 7
    assert summary["trial_epochs"]["median"] == 7
    curve = replay_report.anytime(runs["tpe-asha", 2], 9)
    assert curve["median"][-1] == 7.0 and len(curve["median"]) == 9


# --- the table's schema --------------------------------------------------------------------------

def _broken(tmp_path, change) -> str:
    data = _table_data()
    change(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(replay_table.TableError) as err:
        replay_table.load(path)
    assert str(path) in str(err.value)
    return str(err.value)


def test_schema_errors_name_the_record_and_the_rule(tmp_path):
    assert "metadata: missing commit" in _broken(tmp_path, lambda d: d["metadata"].pop("commit"))
    assert "schema: must be 'ldlpose-replay-table/1'" in _broken(tmp_path, lambda d: d.update(schema="v0"))

    def short(d):
        d["rows"][1]["val_mae"] = [12.0, 11.0, 10.0]
    assert "rows[1].val_mae: must hold one number per epoch (4" in _broken(tmp_path, short)

    def negative(d):
        d["rows"][2]["epoch_s"][3] = -1
    assert "rows[2].epoch_s[3]: must be a finite number >= 0" in _broken(tmp_path, negative)

    def extra(d):
        d["rows"][0]["notes"] = "x"
    assert "rows[0]: unknown notes" in _broken(tmp_path, extra)

    def outside(d):
        d["rows"][2]["config"] = {"train.optimizer.lr": 0.1}
    message = _broken(tmp_path, outside)
    assert "rows[2].config" in message and "not a point of metadata.parameters" in message

    def missing_point(d):
        d["rows"].pop(0)
    assert "1 point(s) of metadata.parameters have no row" in _broken(tmp_path, missing_point)


def test_a_file_that_is_not_json_is_refused_by_name(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("{not json")
    with pytest.raises(replay_table.TableError, match=r"t\.json: cannot read a replay table"):
        replay_table.load(path)


def test_method_qualified_optuna_names_map_to_run_config_keys():
    assignment = {"method": "gldl", "method.gldl.alpha": 0.1, "method.hparams.sigma": 2.0, "grid_point": 3}
    assert replay_table.run_keys(assignment) == {"method": "gldl", "method.hparams.alpha": 0.1,
                                                 "method.hparams.sigma": 2.0}


# --- a real Tune run makes the replay's decisions ------------------------------------------------

@pytest.mark.slow
def test_a_real_tune_run_over_the_table_stops_the_same_trials(table, ray_local):
    import replay_check

    settings = _in_order(2)
    results = replay_check.check(replay_check.scaled(copy.deepcopy(table), 0.5), "tpe-asha", [0], settings)
    assert results[0]["replay"] == [[{"train.optimizer.lr": A}, 4], [{"train.optimizer.lr": B}, 1],
                                    [{"train.optimizer.lr": C}, 2]]
    assert results[0]["same"], results[0]


# --- the control plane's table trial (bench/control_plane.py) -----------------------------------

def test_the_table_trial_reports_the_rows_curve_as_the_loop_does_then_continues_it(table):
    import control_plane

    row = table.rows_of({"train.optimizer.lr": A})[0]
    epochs = control_plane.curves(row, {"train.optimizer.lr": A}, 6, ["synth"], every_epoch=False)
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert [e["val_mae"] for e in epochs[:4]] == [10.0, 9.0, 8.0, 7.0]  # the recorded curve
    # Past epoch 4: its last step (-1) continued, shrinking by DECAY (0.8) per epoch.
    assert [e["val_mae"] for e in epochs[4:]] == pytest.approx([6.2, 5.56])
    assert [e["selected_epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert [e["selected_val_mae"] for e in epochs] == pytest.approx([e["val_mae"] for e in epochs])
    # The test benchmark: once, at the last epoch, scored at the selected epoch (as train.loop does).
    assert all("synth_mae" not in e and "selected_synth_mae" not in e for e in epochs[:-1])
    assert epochs[-1]["selected_synth_mae"] == pytest.approx(5.56 + 0.5)
    assert epochs[-1]["lr"] == pytest.approx(A * 0.5 * (1 + math.cos(math.pi * 5 / 6)))


def test_the_table_trial_selects_its_best_epoch_and_loops_the_epoch_times(table):
    import control_plane

    rising = replay_table.Row(config={"train.optimizer.lr": B}, seed=0, val_mae=(3.0, 2.0, 2.5),
                              test_mae=(3.5, 2.5, 3.0), epoch_s=(1.0, 2.0, 3.0))
    epochs = control_plane.curves(rising, rising.config, 5, ["synth"], every_epoch=True)
    assert [e["val_mae"] for e in epochs] == pytest.approx([3.0, 2.0, 2.5, 2.9, 3.22])  # rises ever less
    assert [e["selected_epoch"] for e in epochs] == [1, 2, 2, 2, 2]
    assert epochs[-1]["selected_val_mae"] == 2.0 and epochs[-1]["selected_synth_mae"] == 2.5
    assert [e["synth_mae"] for e in epochs] == pytest.approx([3.5, 2.5, 3.0, 3.4, 3.72])  # every epoch
    assert [e["train_time_s"] + e["eval_time_s"] for e in epochs] == pytest.approx([1.0, 2.0, 3.0, 1.0, 2.0])


@pytest.mark.slow
def test_the_control_plane_smoke_run_searches_finalises_and_registers(tmp_path):
    """The real driver (Tune, Optuna, ASHA, the MLflow outbox, registration) over the table trial."""
    import os

    import control_plane

    out = tmp_path / "out.json"
    assert control_plane.main(["--smoke", "--workdir", str(tmp_path / "work"), "--json", str(out),
                               "--figure", str(tmp_path / "fig.png")]) == 0
    result = json.loads(out.read_text())
    totals = result["totals"]
    assert totals["trials_completed"] == totals["finalised"] == 4  # every trial's model logged by the driver
    assert totals["delivered"] == totals["starts"] + totals["results"] == 4 + totals["results"]
    assert 4 <= totals["results"] <= 12  # 4 trials of at most 3 epochs, ASHA stopping some after 1
    assert result["timeline_s"]["registration_s"] > 0  # the champion was registered
    assert (tmp_path / "fig.png").stat().st_size > 0
    assert "LDLPOSE_TRIAL_FUNCTION" not in os.environ  # the seam is set for the benchmark's search only


def test_extending_a_table_trains_the_new_values_and_keeps_the_old_rows(tmp_path, monkeypatch):
    """bench/record_table.py --extend after the grid gained a value in front of the others: the new
    configuration is trained (not another one's finished run found under its moved grid position)."""
    import record_table

    out, work = tmp_path / "t.json", tmp_path / "work"
    argv = ["--smoke-test", "--out", str(out), "--workdir", str(work)]
    assert record_table.main(argv) == 0
    old = {row["config"]["train.optimizer.lr"]: row for row in json.loads(out.read_text())["rows"]}
    monkeypatch.setattr(record_table, "SMOKE_PARAMETERS", {"train.optimizer.lr": {"values": [3.0e-4, 1.0e-3, 3.0e-3]}})
    assert record_table.main([*argv, "--extend"]) == 0
    table = replay_table.load(out)
    rows = {row.config["train.optimizer.lr"]: row for row in table.rows}
    assert sorted(rows) == [3.0e-4, 1.0e-3, 3.0e-3] and len(table.rows) == 3
    for lr, row in old.items():
        assert list(rows[lr].val_mae) == row["val_mae"]
    new = rows[3.0e-4]
    assert len(new.val_mae) == 2 and all(list(new.val_mae) != r["val_mae"] for r in old.values())
    assert table.metadata["extended"][0]["command"].endswith("--smoke-test --out " + str(out) + " --extend")


def test_the_settings_sweep_reports_the_start_that_did_worst(table):
    import replay_report
    import replay_settings

    assert replay_settings.worst_config(table) == {"train.optimizer.lr": C}  # best val 10.1, the highest
    starts = {"best": ({"train.optimizer.lr": A},), "worst": ({"train.optimizer.lr": C},), "none": ()}
    task = {"workers": 1, "budget": None, "n_startup_trials": 2, "grace_period": 1, "reduction_factor": 2}
    entries = [replay_settings.run_task(table, {**task, "start": s}, 2, starts) for s in starts]
    medians = {e["start"]: e["within_5pct"]["trial_epochs"]["median"] for e in entries}
    # from A, A's 4th epoch (7.0) is the 4th trial-epoch; from C, C runs all 4 epochs first (ASHA
    # promotes the first trial at each rung), so A's best comes 4 trial-epochs later at the earliest
    assert medians["best"] == 4 and medians["worst"] >= 8
    worst, = replay_settings.worst_cases([*entries, {**entries[0], "workers": 2}])[:1]
    assert worst["start"] == max(medians, key=lambda s: medians[s])
    assert worst["within_5pct"]["trial_epochs"]["median"] == max(medians.values())
    small = [{**e, "budget": 3, "best_val": replay_report.quartiles([v]), "within_5pct": {"reached": 1}}
             for e, v in zip(entries, (7.0, 9.0, 8.0), strict=True)]
    assert replay_settings.worst_cases(small)[0]["best_val"]["median"] == 9.0  # a small budget: the poorest end
