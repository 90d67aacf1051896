"""The compact console view of a search, driven by a real Ray Tune run."""

from __future__ import annotations

import io

import pytest

from ldlpose.search.console import ConsoleView

pytestmark = pytest.mark.slow


def _scripted(config: dict) -> None:
    from ray import tune

    if config["value"] < 0:
        raise ValueError("scripted failure: bad lr")
    for epoch in (1, 2):
        tune.report({"epoch": epoch, "selected_val_mae": config["value"] + 1.0 / epoch})


def _fit(view: ConsoleView, tmp_path, configs: list[dict]) -> None:
    import sys

    import ray.cloudpickle
    from ray import tune

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

    tuner = tune.Tuner(
        tune.with_resources(_scripted, {"CPU": 1}),
        param_space={"value": tune.grid_search([c["value"] for c in configs])},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),
        run_config=tune.RunConfig(name="view", storage_path=str(tmp_path), callbacks=[view], verbose=0))
    tuner.fit()


def test_a_log_gets_one_line_per_event_with_counts_best_and_failures(ray_local, tmp_path, capsys):
    out = io.StringIO()  # not a terminal: one line per change
    view = ConsoleView("demo", "selected_val_mae", total=3, epochs=2, concurrency=1, out=out)
    _fit(view, tmp_path, [{"value": 7.0}, {"value": 3.0}, {"value": -1.0}])
    text = out.getvalue()
    lines = text.splitlines()
    assert sum("started" in line for line in lines) == 3
    assert sum(" done after epoch 2" in line for line in lines) == 2
    assert any("epoch 2/2: val mae 3.50" in line for line in lines)
    assert lines[-1].endswith("[3 done, 0 running, 0 left; best 3.50 (" + view.best()[0] + ")]")
    assert view.best()[1]["value"] == pytest.approx(3.5)
    assert "\x1b[" not in text  # no cursor movement in a log
    # The failure is not drawn over: its reason goes to stderr as a line of its own.
    assert "failed: ValueError: scripted failure: bad lr" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_view_redrawn_in_place(ray_local, tmp_path):
    out = _Terminal()
    view = ConsoleView("demo", "selected_val_mae", total=2, epochs=2, concurrency=1, out=out)
    _fit(view, tmp_path, [{"value": 5.0}, {"value": 4.0}])
    text = out.getvalue()
    assert "\x1b[" in text and "F\x1b[J" in text  # moved up and cleared before each redraw
    final = view.lines()
    assert final[0].startswith("search demo: 2 done, 0 running, 0 left | elapsed ")
    assert "best val mae 4.50" in final[0]
    assert len(final) == 3 and all("epoch 2/2" in row and row.endswith("done") for row in final[1:])
    # Half the trial-epochs left at a known epoch time: the estimate is exactly that much.
    view.rows = {"a": {"params": "x", "epoch": 1, "value": 2.0, "state": "running"}}
    view.total, view.epoch_seconds = 2, [10.0]
    assert view.remaining_s() == pytest.approx((1 + 2) * 10.0)
