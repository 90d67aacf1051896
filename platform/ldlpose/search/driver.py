"""``ldlpose search`` end to end: load the space, make sure its data exists, search, report."""

from __future__ import annotations

from ldlpose.report import metric_key, table
from ldlpose.search.space import SearchSpace, load_search_space
from ldlpose.search.tuning import SearchOutcome, TrialSummary, run_search, smoke_test_space


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
    lines = [f"  {t.trial_id}: {t.error}" for t in outcome.trials if t.status == "ERROR"]
    return "\n".join(lines)


def search_and_report(path: str, *, overrides=(), resume=False, smoke_test=False, storage="ldlpose-results",
                      address=None, tracking_uri=None) -> int:
    from ldlpose.cluster import ensure_ray
    from ldlpose.data.ensure import ensure_training_data

    space = load_search_space(path, list(overrides))
    if smoke_test:
        space = smoke_test_space(space)
    ensure_training_data(space.base_run)
    ensure_ray(address)
    outcome = run_search(space, storage=storage, resume=resume)
    best = outcome.ranked()
    print(f"\nsearch {space.name}: {len(best)} of {len(outcome.trials)} trials reported "
          f"{space.search.metric.name}; best first:\n")
    print(results_table(outcome, space))
    failed = failures(outcome)
    if failed:
        print(f"\nfailed trials:\n{failed}")
    print(f"\nresults: {outcome.path}")
    return 0 if best else 1
