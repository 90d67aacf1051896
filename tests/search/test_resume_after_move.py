"""A search started before the package was split into layer packages resumes after the split.

Tune pickles its state (the searcher with the search space, the callbacks, the trial configs), and
a pickle names every class by its module path: ``ldlpose.hparams.GldlHparams`` before the split,
``ldlpose.config.hparams.GldlHparams`` after. Here the code of the last commit before the split
(``git archive``) starts a real search, which is stopped with Ctrl-C once a trial has finished; today's
code then resumes it with ``--resume``: the state names the search section's models at
``ldlpose.search.space``, which still exports them from their new home, ``ldlpose.search.sections``
(``ldlpose._moved`` answers the paths of modules that moved whole). Start, stop, move, resume: the
finished trial is not trained again, the others finish, a champion is registered.

The old code also named a hyperparameter whose distributions differ between methods by Optuna's
qualified name (``method.hopenet.alpha``) in Tune's config and the ``ldlpose.assignment`` tag; today's
names it ``method.hparams.alpha`` everywhere but inside Optuna's study (issue 21 item 6). The resumed
search keeps its study and Tune state under the old names, and the trials it starts again are tagged
under the new one.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import INTERRUPTED_EXIT_S, processes_under, training_frozen

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BEFORE_THE_SPLIT = "98e05ab72ae052cbf8c818a7d23208b57cee8e35"  # the last commit with a flat package root
NAME = "moved"
EPOCHS = 3


def _old_package(target: Path) -> Path:
    known = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{BEFORE_THE_SPLIT}^{{commit}}"],
                           capture_output=True, check=False)
    if known.returncode != 0:  # a shallow clone, or an unpacked archive: the old code is not here
        pytest.skip(f"needs commit {BEFORE_THE_SPLIT} in this clone's history (git fetch --unshallow)")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", BEFORE_THE_SPLIT, "platform"],
                             capture_output=True, check=False)
    assert archive.returncode == 0, archive.stderr.decode()[-500:]
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target / "platform"


def _space(tmp_path: Path, synth_root: Path) -> Path:
    space = {
        "name": NAME,
        "method": {"name": "gldl"},
        "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 96},
        "train": {"epochs": EPOCHS, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": NAME, "sampler": {"name": "tpe", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": 3, "concurrency": 1},
                   "parameters": {"method": {"values": {
                       # two alpha lists: Optuna qualifies both alphas by their method
                       "gldl": {"sigma": {"distribution": "log_uniform", "min": 1.0, "max": 4.0},
                                "alpha": {"values": [0.0, 0.01]}},
                       "hopenet": {"alpha": {"values": [0.1, 1.0]}}}}}},
    }
    path = tmp_path / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def _finished(storage: Path) -> dict[str, float]:
    """Trial id -> last-epoch val_mae of every run that trained all its epochs (older checkpoints are pruned)."""
    done = {}
    for metrics_file in storage.glob(f"{NAME}-*/checkpoint_epoch_*/metrics.json"):
        try:
            metrics = json.loads(metrics_file.read_text())
        except (OSError, ValueError):
            continue  # being written or pruned right now
        if metrics.get("epoch") == EPOCHS:
            done[metrics_file.parents[1].name.rsplit("-", 1)[-1]] = metrics["val_mae"]
    return done


def _classes_named_where_they_no_longer_live(storage: Path) -> set[str]:
    """``module.name`` of every class in Tune's pickled state whose module no longer defines it."""
    named: set[tuple[str, str]] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            named.add((module, name))
            return super().find_class(module, name)

    for path in [storage / NAME / "tuner.pkl", *(storage / NAME).glob("searcher-state-*.pkl")]:
        with path.open("rb") as f:
            Recorder(f).load()
    moved = set()
    for module, name in named:
        if module.startswith("ldlpose"):
            found = getattr(importlib.import_module(module), name.split(".")[0])
            if getattr(found, "__module__", module) != module:
                moved.add(f"{module}.{name}")
    return moved


def test_a_search_started_before_the_split_resumes_after_it(synth_root, tmp_path):
    from ldlpose.tracking import list_champions

    old_code = _old_package(tmp_path / "before")
    storage, uri = tmp_path / "results", f"sqlite:///{tmp_path / 'mlflow.db'}"
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "ldlpose", "search", str(_space(tmp_path, synth_root)),
               "--storage", str(storage), "--tracking-uri", uri]
    before = subprocess.Popen(command, cwd=work, env={**env, "PYTHONPATH": str(old_code)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 400
    while not _finished(storage) or not list((storage / NAME).glob("experiment_state*")):
        assert before.poll() is None, before.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.1)
    # Every other trial is frozen before the interrupt: none can finish while the driver takes it.
    with training_frozen(lambda: processes_under(before.pid)):
        os.killpg(before.pid, signal.SIGINT)  # what Ctrl-C does
        out, _ = before.communicate(timeout=INTERRUPTED_EXIT_S)
    first = _finished(storage)
    assert 1 <= len(first) < 3, out[-3000:]
    # The stored state names classes by paths that moved (the search section's models went from
    # search.space to search.sections): what resumes below is really a state from before the split.
    assert "ldlpose.search.space.SearchSection" in _classes_named_where_they_no_longer_live(storage)

    after = subprocess.run([*command, "--resume"], cwd=work, env=env, check=False, capture_output=True, text=True,
                           timeout=900)
    assert after.returncode == 0, (after.stdout + after.stderr)[-4000:]
    assert "registered headpose-synth version" in after.stdout, after.stdout[-3000:]
    final = _finished(storage)
    assert len(final) == 3
    for trial_id, val_mae in first.items():
        assert final[trial_id] == val_mae  # finished before the split, not trained again after it
    (champion,) = list_champions(uri)
    assert champion["search_id"] == NAME and champion["trial_id"] in final
    _assignments_read_under_one_name(uri, set(first))


def _assignments_read_under_one_name(uri: str, finished_before: set[str]) -> None:
    """The trial finished before the move keeps its tag under Optuna's names; the trials started again
    after it are tagged under the public name; every tag reads as the public one."""
    from mlflow import MlflowClient

    from ldlpose.search.names import public_names

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'trial'")
    tags = {r.data.tags["ldlpose.trial_id"]: json.loads(r.data.tags["ldlpose.assignment"]) for r in runs}
    assert len(tags) == 3
    for trial_id, assignment in tags.items():
        alpha = {k for k in assignment if k.endswith(".alpha")}
        expected = {f"method.{assignment['method']}.alpha"} if trial_id in finished_before else {"method.hparams.alpha"}
        assert alpha == expected, (trial_id, assignment)
        assert "method.hparams.alpha" in public_names(assignment)
