"""The registry on a production MLflow: ``mlflow server`` over a real PostgreSQL, two server workers.

SQLite serialises every writer, so the champion race of ``test_tracking.py`` never meets a real
concurrent transaction there. Here two searches register to the same registered model at once,
round after round (creating the model, their versions and the alias concurrently, or with the
worst interleaving forced), against a server whose two workers run requests in parallel on
PostgreSQL. One tiny search (a local Ray of its own) then tracks and registers through the same server.
"""

from __future__ import annotations

import threading

import pytest
from mlflow import MlflowClient
from trackfixtures import make_checkpoint

from ldlpose import tracking

pytestmark = pytest.mark.slow

ROUNDS = 5
BETTER_MAE, WORSE_MAE = 4.0, 9.0


def chosen_trial(run_id: str, model_uri: str, val_mae: float) -> dict:
    """A search's chosen trial as the search driver hands it to the registry."""
    return {"trial_id": "trial_0", "run_id": run_id, "model_uri": model_uri, "method": "gldl",
            "backbone": "resnet18", "selected_epoch": 1, "scores": {"val_mae": val_mae},
            "selection": {"metric": "val_mae", "value": val_mae, "split": "synthhead/val", "rows": 32,
                          "content_hash": "rows-pg"}}


@pytest.fixture(scope="module")
def searches(mlflow_server_postgres, tmp_path_factory) -> dict[str, dict]:
    """Two tracked searches, each with one trial and its logged model, on the PostgreSQL-backed server."""
    root = tmp_path_factory.mktemp("pg-checkpoints")
    out = {}
    for name, val_mae, seed in (("pg-better", BETTER_MAE, 1), ("pg-worse", WORSE_MAE, 2)):
        tracker = tracking.SearchTracker(mlflow_server_postgres, name)
        tracker.start(f"name: {name}\n", {}, "random", seed, {})
        run_id = tracker.trial_started("trial_0", {"method": "gldl"})
        tracker.trial_result("trial_0", {"epoch": 1, "val_mae": val_mae}, step=1)
        model_uri = tracker.log_trial_model("trial_0", make_checkpoint(root / name, seed=seed))
        tracker.trial_finished("trial_0", "TERMINATED", {"val": {"mae": val_mae}})
        tracker.finish("FINISHED")
        out[name] = {"best": chosen_trial(run_id, model_uri, val_mae)}
    return out


def race(uri: str, searches: dict, benchmark: str, schedule: str,
         rules: dict[str, str] | None = None) -> tuple[dict[str, dict], list]:
    """Both searches register to ``headpose-<benchmark>``; each one's outcome, and the alias writes.

    ``together``: a barrier releases both registrations at once, and a second one holds each
    search's first alias write until both have read the registry and decided, so that both writes
    reach the server at the same moment. ``stale``: the worse search reads first (it sees only its
    own version), the better one then registers completely, and only then does the worse search
    write its stale choice; it must notice and correct it itself.
    """
    start, decided = threading.Barrier(2, timeout=60), threading.Barrier(2, timeout=60)
    worse_decided, better_done = threading.Event(), threading.Event()
    outcomes, errors, writes = {}, [], []

    def before_alias_write(name, version, attempt):
        who = threading.current_thread().name
        writes.append((who, version, attempt))
        if attempt == 0 and schedule == "together":
            decided.wait()
        elif attempt == 0 and who == "pg-worse":
            worse_decided.set()
            assert better_done.wait(60), "the better search never finished"

    def register(name):
        try:
            if schedule == "together":
                start.wait()
            elif name == "pg-better":
                assert worse_decided.wait(60), "the worse search never decided"
            rule = (rules or {}).get(name, "validation")
            outcomes[name] = tracking.register_champions(uri, name, searches[name]["best"], [benchmark],
                                                         rule=rule)[benchmark]
        except BaseException as err:  # reported by the main thread
            errors.append(f"{name}: {type(err).__name__}: {err}")
            start.abort()
            decided.abort()
        finally:
            if name == "pg-better":
                better_done.set()

    threads = [threading.Thread(target=register, args=(name,), name=name) for name in searches]
    previous, tracking.registry._before_alias_write = tracking.registry._before_alias_write, before_alias_write
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        tracking.registry._before_alias_write = previous
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a registration hung"
    return outcomes, writes


@pytest.mark.parametrize("round_index", range(ROUNDS))
def test_concurrent_registrations_leave_the_true_best_champion(mlflow_server_postgres, searches, round_index):
    uri = mlflow_server_postgres
    benchmark = f"pgrace{round_index}"  # a new registered model per round: both create it at once too
    schedule = "stale" if round_index % 2 else "together"
    outcomes, writes = race(uri, searches, benchmark, schedule)

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = tracking.registered_model_name(benchmark)
    versions = {v.version: v.tags for v in client.search_model_versions(f"name = '{name}'")}
    assert len(versions) == 2, "each search adds exactly one version"
    assert {tags["search_id"] for tags in versions.values()} == {"pg-better", "pg-worse"}
    better, worse = outcomes["pg-better"]["version"], outcomes["pg-worse"]["version"]
    assert versions[better]["search_id"] == "pg-better"
    assert client.get_model_version_by_alias(name, tracking.CHAMPION).version == better
    assert outcomes["pg-better"]["champion"] == outcomes["pg-worse"]["champion"] == better
    if schedule == "stale":  # the schedule happened: the worse search's first write was the stale one
        assert ("pg-worse", worse, 0) in writes and ("pg-worse", better, 1) in writes


def test_registering_again_adds_no_version_and_keeps_the_champion(mlflow_server_postgres, searches):
    uri, benchmark = mlflow_server_postgres, "pgagain"
    race(uri, searches, benchmark, "together")
    again = tracking.register_champions(uri, "pg-worse", searches["pg-worse"]["best"], [benchmark])[benchmark]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = tracking.registered_model_name(benchmark)
    assert len(client.search_model_versions(f"name = '{name}'")) == 2
    assert not again["moved"]
    assert client.get_model_version_by_alias(name, tracking.CHAMPION).tags["search_id"] == "pg-better"


def tiny_space(tmp_path, synth_root, name: str) -> str:
    import yaml

    space = {
        "name": name,
        "method": {"name": "gldl"},
        "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 32},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": name, "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": 2}, "parameters": {"train.optimizer.lr": {"values": [0.002, 0.001]}}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space))
    return str(path)


@pytest.fixture
def local_ray():
    """The search starts its own local Ray; shut it down so that later tests start theirs."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    yield
    ray.shutdown()


def test_a_search_tracks_and_registers_on_postgresql(mlflow_server_postgres, tmp_path, synth_root, local_ray, capsys):
    from ldlpose.search.driver import search_and_report

    uri = mlflow_server_postgres
    assert search_and_report(tiny_space(tmp_path, synth_root, "pg-search"), storage=str(tmp_path / "results"),
                             tracking_uri=uri) == 0
    out = capsys.readouterr().out
    assert "tracking problem" not in out, out[-3000:]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("pg-search")
    runs = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'trial'")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" and "val_mae" in r.data.metrics for r in runs)
    champion = client.get_model_version_by_alias(tracking.registered_model_name("synth"), tracking.CHAMPION)
    assert champion.tags["search_id"] == "pg-search"
    best = min(runs, key=lambda r: r.data.metrics["val_mae"])  # one epoch: its validation MAE selects
    assert champion.tags["trial_id"] == best.data.tags["ldlpose.trial_id"]


def test_concurrent_registrations_under_different_rules_move_their_own_aliases_once(mlflow_server_postgres, searches):
    """Released together: each search writes its own rule's alias, once, and neither makes the other retry."""
    uri = mlflow_server_postgres
    rules = {"pg-better": "validation", "pg-worse": "benchmark"}
    outcomes, writes = race(uri, searches, "pgrules", "together", rules)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    model = client.get_registered_model(tracking.registered_model_name("pgrules"))
    better, worse = outcomes["pg-better"]["version"], outcomes["pg-worse"]["version"]
    # Each alias is on its own rule's only version, although the worse search's is worse on validation.
    assert model.aliases == {"champion": better, "champion-benchmark": worse}
    assert sorted((who, attempt) for who, _, attempt in writes) == [("pg-better", 0), ("pg-worse", 0)]
