"""``ldlpose search`` end to end: load the space, make sure its data exists, search, track, report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ldlpose.report import metric_key, table
from ldlpose.search.space import SearchSpace, load_search_space
from ldlpose.search.tuning import SearchOutcome, TrialSummary, TrackingCallback, run_search, smoke_test_space


def _format_value(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _key_params(trial: TrialSummary) -> str:
    parts = []
    for name, value in sorted(trial.assignment.items()):
        if name in ("method", "grid_point", "model.backbone"):
            continue
        parts.append(f"{name.split('.')[-1]}={_format_value(value)}")
    return " ".join(parts)


def results_table(outcome: SearchOutcome, space: SearchSpace, limit: int = 10) -> str:
    benchmarks = space.base_run.data.benchmarks
    headers = ["trial", "method", "backbone", "parameters", "val MAE", *(f"{b} MAE" for b in benchmarks), "epochs"]
    rows = []
    for trial in outcome.ranked()[:limit]:
        run = space.run_config(trial.assignment)
        maes = [trial.metrics.get(metric_key(name, "mae")) for name in ["val", *benchmarks]]
        rows.append([trial.trial_id, run.method.name, run.model.backbone, _key_params(trial),
                     *("-" if v is None else f"{v:.2f}" for v in maes), str(trial.metrics.get("epoch", "-"))])
    return table(headers, rows)


def failures(outcome: SearchOutcome) -> str:
    return "\n".join(f"  {t.trial_id}: {t.error}" for t in outcome.trials if t.status == "ERROR")


def _manifests(space: SearchSpace) -> dict[str, dict]:
    from ldlpose.data import benchmarks
    from ldlpose.data.shards import read_manifest

    run = space.base_run
    root = Path(run.data.root).expanduser()
    folders = {"train": root / run.data.train, **({"val": root / run.data.val} if run.data.val else {})}
    folders.update({name: benchmarks.get(name).path(root) for name in run.data.benchmarks})
    return {name: read_manifest(folder) for name, folder in folders.items()}


def tracking_callback(space: SearchSpace, yaml_text: str, uri: str) -> TrackingCallback:
    from ldlpose.schema import to_dict

    search = space.search
    start = {"space_yaml_text": yaml_text, "resolved_space": {"base": space.base, "search": to_dict(search)},
             "sampler": search.sampler.name, "seed": search.sampler.seed, "manifests": _manifests(space)}
    return TrackingCallback(uri, space, start)


def register(outcome: SearchOutcome, space: SearchSpace, callback: TrackingCallback) -> dict:
    """Register the search's best trial (by its objective, never by a test benchmark) per benchmark."""
    from ldlpose.tracking import register_champions

    for trial in outcome.ranked():
        logged = callback.models.get(trial.trial_id)
        if logged is None:
            continue
        run = space.run_config(trial.assignment)
        best = {"trial_id": trial.trial_id, "run_id": logged["run_id"], "model_uri": logged["model_uri"],
                "method": run.method.name, "backbone": run.model.backbone, "metrics": logged["metrics"]}
        return register_champions(callback.uri, space.name, [best], run.data.benchmarks)
    return {}


def study_of(outcome: SearchOutcome, space: SearchSpace):
    """An Optuna study rebuilt from the finished trials (for importance and parallel-coordinate plots)."""
    import optuna

    study = optuna.create_study(direction=space.search.metric.goal)
    for trial in outcome.ranked():
        params = {k: v for k, v in trial.assignment.items() if k != "grid_point"}
        dists = space.distributions(params)
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                                  value=trial.metrics[outcome.metric]))
    return study


def search_and_report(path: str, *, overrides=(), resume=False, smoke_test=False, storage="ldlpose-results",
                      address=None, tracking_uri=None) -> int:
    from ldlpose.cluster import ensure_ray
    from ldlpose.data.ensure import ensure_training_data
    from ldlpose.tracking import resolve_tracking_uri

    space = load_search_space(path, list(overrides))
    # Trials run in their own working directories: relative data paths must not depend on that.
    root = str(Path(space.base_run.data.root).expanduser().resolve())
    space = dataclasses.replace(space, base={**space.base, "data": {**space.base.get("data", {}), "root": root}})
    if smoke_test:
        space = smoke_test_space(space)
    ensure_training_data(space.base_run)
    uri = resolve_tracking_uri(tracking_uri)
    callback = tracking_callback(space, Path(path).read_text(), uri)
    ensure_ray(address)
    outcome = run_search(space, storage=storage, resume=resume, tracking=callback)
    best = outcome.ranked()
    print(f"\nsearch {space.name}: {len(best)} of {len(outcome.trials)} trials reported "
          f"{space.search.metric.name}; best first:\n")
    print(results_table(outcome, space))
    failed = failures(outcome)
    if failed:
        print(f"\nfailed trials:\n{failed}")
    if len(best) >= 2:
        callback._safely("search plots", callback.tracker.log_search_plots, study_of(outcome, space))
    champions = register(outcome, space, callback)
    callback._safely("search end", callback.tracker.finish, "FINISHED" if best else "FAILED")
    for benchmark, info in sorted(champions.items()):
        verdict = "now the champion" if info["moved"] else f"champion stays version {info['champion']}"
        print(f"registered {info['model']} version {info['version']} ({benchmark} MAE {info['mae']:.2f}): {verdict}")
    for problem in callback.errors:
        print(f"tracking problem: {problem}")
    print(f"\nresults: {outcome.path}")
    print(f"MLflow:  {uri}\n  open the UI with: mlflow ui --backend-store-uri {uri}")
    if champions:
        first = sorted(champions)[0]
        print(f"  predict with:     ldlpose predict --model models:/headpose-{first}@champion IMAGE...")
    return 0 if best else 1
