"""A search whose tracking server is stopped for 60 s mid-search and started again (issue 11, item 3).

A real ``mlflow server`` (SQLite) on 127.0.0.1, a real search on a local Ray, the server killed
once the first epoch is in MLflow and started again 60 s later on the same port and store. The
search must go on meanwhile, and MLflow must end up holding exactly what Tune saw: every trial's
params, every epoch's metrics once, one model per trial, its tags, and a champion.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import _free_port, _wait_for_health

pytestmark = pytest.mark.slow

OUTAGE_S = 60


class RestartableServer:
    """``mlflow server`` on a fixed port over one SQLite store and artifact folder, stopped and started at will."""

    def __init__(self, root: Path):
        self.root, self.port = root, _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        self.starts += 1
        log = self.root / f"server-{self.starts}.log"
        with open(log, "w") as out:  # the server writes to its own copy of the descriptor
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
                 f"sqlite:///{self.root / 'db.sqlite'}", "--artifacts-destination", str(self.root / "artifacts"),
                 "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        _wait_for_health(self.uri, self.process, log)

    def stop(self) -> None:
        """Gone at once, as a crashed or restarted server is: its whole process group, SIGKILL."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture()
def server(tmp_path):
    server = RestartableServer(tmp_path / "mlflow")
    server.root.mkdir()
    server.start()
    yield server
    server.stop()


def write_space(tmp_path: Path, synth_root: Path) -> Path:
    space = {
        "name": "outage",
        "method": {"name": "gldl"},
        "model": {"backbone": "resnet18", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 96},
        "train": {"epochs": 5, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": "outage", "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": 3, "concurrency": 2},
                   "parameters": {"method.hparams.sigma": {"distribution": "log_uniform", "min": 1.0, "max": 4.0}}},
    }
    path = tmp_path / "outage.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def first_epoch_logged(uri: str) -> bool:
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("outage")
    if experiment is None:
        return False
    return bool(client.search_runs([experiment.experiment_id], "metrics.val_mae >= 0", max_results=1))


def interrupt(server: RestartableServer, window: dict) -> None:
    """Once the first epoch is in MLflow: stop the server for OUTAGE_S seconds, then start it again."""
    deadline = time.monotonic() + 600
    while not first_epoch_logged(server.uri):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    server.stop()
    window["down"] = time.time()
    time.sleep(OUTAGE_S)
    window["up"] = time.time()
    server.start()


def tune_results(storage: Path) -> dict[str, list[dict]]:
    """Trial id -> every result Tune recorded for it, in order (result.json, one JSON per line)."""
    results = {}
    for file in (storage / "outage").glob("trial_*/result.json"):
        rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
        results[file.parent.name.removeprefix("trial_")] = rows
    return results


def test_a_search_outlives_a_60_s_mlflow_outage_and_mlflow_ends_up_with_everything(
        tmp_path, synth_root, ray_local, server, capsys, caplog):
    import mlflow

    from ldlpose.search.callback import run_params
    from ldlpose.search.driver import search_and_report
    from ldlpose.search.space import load_search_space
    from ldlpose.tracking import list_champions
    from ldlpose.tracking._common import _mlflow_key, _param_value
    from ldlpose.tracking.runs import _numbers
    from ldlpose.train.checkpoints import select_checkpoint

    space_file, storage, window = write_space(tmp_path, synth_root), tmp_path / "results", {}
    controller = threading.Thread(target=interrupt, args=(server, window), daemon=True)
    controller.start()
    started = time.monotonic()
    code = search_and_report(str(space_file), storage=str(storage), tracking_uri=server.uri, verbose=False)
    controller.join(timeout=OUTAGE_S + 120)
    printed = capsys.readouterr()
    print(f"search took {time.monotonic() - started:.0f} s with a {OUTAGE_S} s outage", file=sys.stderr)
    assert code == 0, printed.out[-3000:]
    assert window.get("up"), "the server was never stopped and started again"
    assert "tracking problem" not in printed.out, printed.out[-3000:]
    assert printed.err.count("is unreachable") == 1 and printed.err.count("reachable again") == 1, printed.err[-3000:]
    assert not [r for r in caplog.records if r.getMessage().startswith("Retrying")]  # not one per request

    results = tune_results(storage)
    assert len(results) == 3
    # Training went on while MLflow was down: Tune received epochs inside the outage.
    during = [r for rows in results.values() for r in rows if window["down"] + 1 <= r["timestamp"] <= window["up"]]
    assert during, "no epoch was reported while MLflow was down: training stalled"

    client = mlflow.MlflowClient(server.uri)
    experiment = client.get_experiment_by_name("outage")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert [r.data.tags["ldlpose.role"] for r in runs].count("search") == 1
    trials = {r.data.tags["ldlpose.trial_id"]: r for r in runs if r.data.tags["ldlpose.role"] == "trial"}
    assert sorted(trials) == sorted(results)  # one run per trial, none duplicated
    space = load_search_space(str(space_file))
    for trial_id, rows in results.items():
        run = trials[trial_id]
        assert run.info.status == "FINISHED" and run.data.tags["ldlpose.status"] == "FINISHED"
        # Params: the trial's whole run config, as Tune sampled it.
        config = {k: v for k, v in rows[-1]["config"].items() if not k.startswith("_")}
        expected = {_mlflow_key(k): _param_value(v) for k, v in run_params(space, config).items()}
        assert run.data.params == expected
        # Every epoch's metrics, each exactly once, with Tune's values.
        assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
        # (selected_* are left out: finalisation logs the selected epoch's scores once more.)
        reported = [_numbers(r) for r in rows]
        keys = {k for r in reported for k in r if not k.startswith("selected_")}
        assert {"val_mae", "train_loss", "epoch"} <= keys
        for key in sorted(keys):
            history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
            assert [m.step for m in history] == [r["epoch"] for r in reported if key in r], key
            assert [m.value for m in history] == pytest.approx([r[key] for r in reported if key in r]), key
        # The model of the selected checkpoint, once, and the tags that say which it is.
        selected = select_checkpoint(storage / f"outage-{trial_id}", "val_mae")
        assert run.data.tags["ldlpose.selected_epoch"] == str(selected.epoch)
        assert run.data.metrics["selected_val_mae"] == pytest.approx(selected.metrics["val_mae"])
        models = client.search_logged_models([experiment.experiment_id],
                                             filter_string=f"tags.`ldlpose.trial_id` = '{trial_id}'")
        ready = [m for m in models if str(m.status).endswith("READY")]
        assert len(ready) == 1 and run.data.tags["ldlpose.model_uri"] == f"models:/{ready[0].model_id}"
    (champion,) = list_champions(server.uri)
    best = min(trials.values(), key=lambda r: r.data.metrics["selected_val_mae"])
    assert champion["trial_id"] == best.data.tags["ldlpose.trial_id"]
