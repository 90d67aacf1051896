"""``ldlpose search`` end to end: load the space, make sure its data exists, search, confirm, register, report.

Everything that decides the champion is read back from stored state (Tune's results on storage and
the trials' MLflow runs) after Tune returns, so a search whose driver was killed outright and then
resumed registers exactly what an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from ldlpose.infra.locations import DEFAULT_STORAGE, redact
from ldlpose.infra.storage import resolve as resolve_location
from ldlpose.metrics import metric_key
from ldlpose.report.tables import table
from ldlpose.search import confirm, fingerprint, story, trials
from ldlpose.search.callback import TrackingCallback
from ldlpose.search.space import SearchSpace, load_search_space
from ldlpose.search.tuning import (
    CONFIRM_SUFFIX,
    SearchOutcome,
    clear_smoke_test,
    run_confirmation,
    run_search,
    smoke_test_space,
)


def results_table(ranked: list[dict], space: SearchSpace, limit: int = 10) -> str:
    """The best trials by the validation objective, with the test scores of their selected checkpoints."""
    benchmarks = space.base_run.data.benchmarks
    objective = trials.objective_name(space)
    headers = ["trial", "method", "backbone", "parameters", f"selected {objective}",
               *(f"{b} MAE (test)" for b in benchmarks), "epoch"]
    rows = []
    for c in ranked[:limit]:
        tests = [c["scores"].get(metric_key(b, "mae")) for b in benchmarks]
        rows.append([c["trial_id"], c["method"], c["backbone"], trials.sampled_values(c["assignment"]),
                     f"{c['objective']:.2f}",
                     *("-" if v is None else f"{v:.2f}" for v in tests), str(c["selected_epoch"])])
    return table(headers, rows)


def confirmation_table(rows: list[dict], space: SearchSpace) -> str:
    objective = trials.objective_name(space)
    lines = [table(["configuration", "method", "parameters", "search", f"mean {objective}", "std", "95% CI", "n"],
                   [[r["trial_id"], r["method"], trials.sampled_values(r["assignment"]), f"{r['original']:.2f}",
                     f"{r['stats'].mean:.2f}", f"{r['stats'].std:.2f}",
                     f"[{r['stats'].ci_low:.2f}, {r['stats'].ci_high:.2f}]", str(r["stats"].n)] for r in rows])]
    methods = confirm.per_method(rows)
    if methods:
        lines.append(table(["method", f"mean {objective}", "std", "95% CI", "n"],
                           [[m, f"{s.mean:.2f}", f"{s.std:.2f}", f"[{s.ci_low:.2f}, {s.ci_high:.2f}]", str(s.n)]
                            for m, s in methods.items()]))
    return "\n\n".join(lines)


def measured_on(run) -> str:
    """What the test scores were measured on: each benchmark's protocol and prepared data's content hash."""
    from ldlpose.train.data import benchmark_identities

    return "\n".join(f"{name}: protocol {i['protocol']}, {i['rows']} rows, data {i['content_hash']}"
                     for name, i in benchmark_identities(run).items())


def failures(outcome: SearchOutcome) -> str:
    return "\n".join(f"  {t.trial_id}: {t.error}" for t in outcome.trials if t.status == "ERROR")


def _manifests(space: SearchSpace) -> dict[str, dict]:
    from ldlpose.train.data import run_manifests

    return run_manifests(space.base_run)


def check_identity(space: SearchSpace, storage: str, resume: bool, space_file: str, overrides) -> None:
    """Before anything trains: record a new search's fingerprint, or refuse a resume whose
    fingerprinted settings changed (:mod:`ldlpose.search.fingerprint`)."""
    from ray import tune

    from ldlpose import config as run_configs
    from ldlpose.infra.storage import join, resolve

    location = resolve(storage)
    written = run_configs.apply_overrides(run_configs.read_yaml(space_file), list(overrides))
    if tune.Tuner.can_restore(join(location, space.name)):
        if resume:
            fingerprint.check_resume(space, location, _manifests(space), space_file, written)
        return  # without --resume the stored search is not touched (ldlpose.search.tuning)
    fingerprint.record(space, location, _manifests(space), written)


def _eval_samples(space: SearchSpace, count: int = 32) -> dict:
    """A few images per benchmark (uint8 RGB, true angles) for the trials' plots."""
    from ldlpose.data import benchmarks
    from ldlpose.data.shards import sample_rows

    run = space.base_run
    data = {}
    for name in run.data.benchmarks:
        bench = benchmarks.get(name)
        folder = bench.resolve(run.data.root)
        data[name] = sample_rows(folder, count, rows=bench.row_indices(folder))
    return data


def tracking_callback(space: SearchSpace, yaml_text: str, uri: str, storage: str,
                      driver: str | None = None) -> TrackingCallback:
    from ldlpose.config.schema import to_dict

    search = space.search
    start = {"space_yaml_text": yaml_text, "resolved_space": {"base": space.base, "search": to_dict(search)},
             "sampler": search.sampler.name, "seed": search.sampler.seed, "manifests": _manifests(space)}
    return TrackingCallback(uri, space, start, resolve_location(storage), space.name,
                            eval_samples=_eval_samples(space), driver=driver)


def finalise_all(callback: TrackingCallback, outcome: SearchOutcome, space: SearchSpace) -> list[dict]:
    """Finalise every finished trial from stored state; their candidates, best objective first."""
    from ldlpose.tracking import TrackingError

    callback.drain()
    candidates = []
    for trial in outcome.trials:
        if trial.status == "ERROR":
            record = callback.safely("trial record", callback.tracker.trial_record, trial.trial_id)
            if record is None or record["status"] != "FAILED":
                callback.safely(f"trial {trial.trial_id} end", callback.tracker.trial_finished, trial.trial_id,
                                "FAILED", {}, trial.error, None, None)
            continue
        callback.safely(f"trial {trial.trial_id} finalisation", trials.finalise, callback.tracker, trial, space,
                        callback.eval_samples)
        found = callback.safely(f"trial {trial.trial_id} record", trials.candidate, callback.tracker, trial, space)
        if found is not None:
            candidates.append({**found, "confirms": trial.confirms})
        elif trial.metrics.get(outcome.objective) is not None:
            callback.problems.append(str(TrackingError(f"trial {trial.trial_id} has no logged model")))
    return sorted(candidates, key=lambda c: c["objective"])


def close_orphans(callback: TrackingCallback, outcome: SearchOutcome, role: str = "trial") -> list[str]:
    """Close the runs of ``role`` whose trials Tune does not know (a killed driver's; search.trials)."""
    known = {t.trial_id for t in outcome.trials}
    closed = callback.safely("orphaned runs", trials.close_orphans, callback.tracker, known, role,
                             callback.owner_tags()) or []
    if closed:
        print(f"closed {len(closed)} MLflow run(s) as KILLED whose trials a killed driver had started after "
              f"Tune last saved its state: {', '.join(closed)}")
    return closed


def _selection(space: SearchSpace, best: dict) -> dict:
    from ldlpose.train.data import validation_split

    split = validation_split(space.run_config(best["assignment"]))
    return {"metric": trials.objective_name(space), "value": best["objective"], "split": split["name"],
            "rows": split["rows"], "content_hash": split["content_hash"]}


def register(callback: TrackingCallback, space: SearchSpace, best: dict, confirmation: dict | None = None) -> dict:
    """Register the chosen trial (chosen on validation data, never a test benchmark) per benchmark."""
    from ldlpose.tracking import register_champions
    from ldlpose.train.data import benchmark_identities

    # The selection identity recorded at the trial's finalisation; computed here only for trials
    # finalised before it was recorded.
    entry = {**best, "selection": best.get("selection") or _selection(space, best),
             "benchmark_data": benchmark_identities(space.base_run)}
    if confirmation is not None:
        entry["confirmation"] = confirmation
    return register_champions(callback.uri, space.name, entry, space.base_run.data.benchmarks,
                              rule=space.search.champion.rule)


def _study(space: SearchSpace, ranked: list[dict]):
    from ldlpose.search import optuna_space

    return optuna_space.study_of(space, [(c["assignment"], c["objective"]) for c in ranked])


def _confirm(space: SearchSpace, ranked: list[dict], outcome: SearchOutcome, search: TrackingCallback,
             storage: str, verbose: bool = True) -> tuple[dict, dict | None, list[dict]]:
    """Run the confirmation; (the candidate to register, its confirmation statistics, the table rows)."""
    by_id = {t.trial_id: t for t in outcome.trials}
    points = confirm.points(space, [by_id[c["trial_id"]] for c in ranked])
    callback = TrackingCallback(search.uri, space, search.start_info, search.storage, space.name + CONFIRM_SUFFIX,
                                points, search.eval_samples, search.tracker, search.driver)
    callback.replay()
    views = [] if verbose else [console_view(space, space.name + CONFIRM_SUFFIX, len(points))]
    confirmed = run_confirmation(space, points, storage=storage, callbacks=[callback, *views], verbose=verbose)
    reruns = finalise_all(callback, confirmed, space)
    close_orphans(callback, confirmed, "confirmation")
    rows = confirm.summarise(space, {c["trial_id"]: c for c in ranked}, reruns)
    if not rows:
        return ranked[0], None, rows
    best_row = rows[0]
    chosen = best_row["runs"][0]  # the configuration's best run on validation, its model registered
    statistics = {**best_row["stats"].as_dict(), "configuration": best_row["trial_id"],
                  "seeds": ",".join(str(c["assignment"].get("train.seed", "")) for c in best_row["runs"])}
    return chosen, statistics, rows


def console_view(space: SearchSpace, name: str, total: int):
    """The compact view of a search (or its confirmation) for this cluster's concurrency."""
    import ray

    from ldlpose.search.console import ConsoleView
    from ldlpose.search.tuning import trial_concurrency

    return ConsoleView(name, trials.objective_key(space), total, space.base_run.train.epochs,
                       trial_concurrency(space, ray.cluster_resources(), total))


def search_and_report(path: str, *, overrides=(), resume=False, smoke_test=False, storage=DEFAULT_STORAGE,
                      address=None, tracking_uri=None, verbose=True) -> int:
    """``verbose``: Ray's and Tune's own output; otherwise one compact view (ldlpose.search.console)."""
    from ldlpose.infra.storage import credentials_to_environment
    from ldlpose.search.console import quiet_logs
    from ldlpose.tracking import credentials_to_environment as tracking_credentials_to_environment
    from ldlpose.tracking import resolve_tracking_uri

    # Passwords into the environment before Ray, Tune or a file sees a URI: Tune pickles the storage
    # path and the tracking callback (with its URI) into the search's storage.
    storage = credentials_to_environment(storage)
    tracking_uri = tracking_credentials_to_environment(resolve_tracking_uri(tracking_uri))
    with quiet_logs(verbose):
        return _search_and_report(path, overrides, resume, smoke_test, storage, address, tracking_uri, verbose)


def check_splits(space: SearchSpace) -> None:
    """Every placement of the data a trial can have keeps training, validation and test apart by content
    (ldlpose.config.splits), checked before Ray, MLflow or any trial starts."""
    from ldlpose.config.splits import check_split_content

    for run in space.data_variants():
        check_split_content(run.data, space.file)


def _search_and_report(path, overrides, resume, smoke_test, storage, address, tracking_uri, verbose) -> int:
    from ldlpose.data.ensure import ensure_training_data

    space = load_search_space(path, list(overrides))
    # Trials run in their own working directories: relative data paths must not depend on that.
    root = resolve_location(space.base_run.data.root)  # a URI (s3://...) stays one
    space = dataclasses.replace(space, base={**space.base, "data": {**space.base.get("data", {}), "root": root}})
    if smoke_test:
        space = smoke_test_space(space)
    ensure_training_data(space.base_run)  # data under the data root, written atomically: no lease needed
    check_splits(space)  # a refused split leaves nothing behind, not even the search's folder
    with search_lease(space, storage) as lease:  # before the search's own files are read or written
        return _search_held(space, path, overrides, resume, smoke_test, storage, address, tracking_uri, verbose,
                            lease.holder)


def search_lease(space: SearchSpace, storage: str):
    """The search's lease (ldlpose.infra.lease): a second driver of it stops here, naming the first."""
    from ldlpose.infra.lease import Lease
    from ldlpose.infra.storage import join
    from ldlpose.tracking import redact

    location = resolve_location(storage)
    return Lease(join(location, space.name), f"search {space.name!r} in {redact(location)}")


def _search_held(space, path, overrides, resume, smoke_test, storage, address, tracking_uri, verbose,
                 driver) -> int:
    from ldlpose.infra.ray_cluster import ensure_ray
    from ldlpose.tracking import require_authenticated, resolve_tracking_uri
    from ldlpose.tracking.models import warm_up
    from ldlpose.tracking.registry import RegistrationError

    if smoke_test and clear_smoke_test(space, storage):
        print(f"smoke test {space.name}: the previous smoke test's results are replaced")
    check_identity(space, storage, resume, path, overrides)
    uri = resolve_tracking_uri(tracking_uri)
    # Refused credentials never heal (an outage may: the outbox waits for it), so stop before training.
    require_authenticated(uri)
    yaml_text = Path(path).read_text()
    callback = tracking_callback(space, yaml_text, uri, storage, driver)
    replayed = callback.replay()  # what a killed driver never wrote to MLflow goes first
    if replayed:
        print(f"search {space.name}: {replayed} MLflow write(s) an earlier driver left undelivered are written first")
    # Seconds of imports that the first finished trial would otherwise pay, done while Ray starts
    # (which imports only Ray's own modules). Joined before the search imports torch itself: two
    # threads importing one package at once can see it half initialised.
    warming = threading.Thread(target=warm_up, name="ldlpose-warm-up", daemon=True)
    warming.start()
    ensure_ray(address, log_to_driver=verbose, quiet=not verbose)
    warming.join()
    views = [] if verbose else [console_view(space, space.name, space.num_trials)]
    outcome = run_search(space, storage=storage, resume=resume, callbacks=[callback, *views], verbose=verbose)
    ranked = finalise_all(callback, outcome, space)
    close_orphans(callback, outcome)
    print(f"\nsearch {space.name}: {len(ranked)} of {len(outcome.trials)} trials finished with a selected "
          f"checkpoint; best {trials.objective_name(space)} first (test benchmarks are measured, never used to "
          "choose):\n")
    print(results_table(ranked, space))
    print(measured_on(space.base_run))
    failed = failures(outcome)
    if failed:
        print(f"\nfailed trials:\n{failed}")
    if len(ranked) >= 2:
        callback.safely("search plots", callback.tracker.log_search_plots, _study(space, ranked))
    problems = list(callback.problems)
    try:
        champions = _choose(space, ranked, outcome, callback, storage, verbose, smoke_test) if ranked else {}
    except RegistrationError as err:  # the trials and their models are kept: --resume registers again
        raise registration_failed(callback, err, outcome.path) from err
    callback.safely("search summary", story.log_story, callback.tracker)  # metrics and figures, from MLflow
    callback.safely("search end", callback.tracker.finish, "FINISHED" if ranked else "FAILED")
    _print_champions(champions, uri, callback.tracker.experiment_id)
    for problem in problems + callback.problems[len(problems):]:
        print(f"tracking problem: {problem}")
    print(f"\nresults: {redact(outcome.path)}")
    return 0 if ranked else 1


def registration_failed(callback: TrackingCallback, err: Exception, results: str) -> Exception:
    """End the parent run FAILED with the registration's error in a tag (unless the server is gone:
    then it stays RUNNING until ``--resume``); the one-line error for the user."""
    from ldlpose.tracking import TrackingError, require_reachable

    try:
        require_reachable(callback.uri)  # a server gone would cost minutes of MLflow's own retries
        callback.safely("search end", callback.tracker.finish, "FAILED", str(err))
    except TrackingError:
        pass
    return type(err)(f"{err}; the search's runs and models are kept: run the same command with --resume "
                     f"to register again (results: {results})")


def _choose(space, ranked, outcome, callback, storage, verbose, smoke_test) -> dict:
    """Confirm the best configurations where the space asks for it, then register what the rule chose."""
    best, statistics = ranked[0], None
    if space.search.confirm.top_k:
        best, statistics, rows = _confirm(space, ranked, outcome, callback, storage, verbose)
        if rows:
            print(f"\nconfirmation over {space.search.confirm.seeds} new seeds (champion: best mean):\n")
            print(confirmation_table(rows, space))
    if smoke_test:
        print(f"\nsmoke test {space.name}: nothing registered (a smoke test never registers a model); "
              "the search itself runs without --smoke-test")
        return {}
    if space.search.objectives:  # several objectives: the whole Pareto front is registered
        from ldlpose.search import pareto

        pareto.report_front(callback, space, ranked, outcome)
        return {}
    return register(callback, space, best, statistics)


def _print_champions(champions: dict, uri: str, experiment_id: str | None = None) -> None:
    from ldlpose.tracking import experiment_page, resolve_tracking_uri

    for benchmark, info in sorted(champions.items()):
        alias = info["alias"]  # "champion" under rule validation; each other rule has its own
        if info["moved"]:
            verdict = f"now the {alias}"
        elif not info["comparable"]:
            verdict = (f"{alias} stays version {info['champion']}: it was selected on other validation rows, "
                       "so the two are not comparable (set search.champion.rule: benchmark to compare test MAEs)")
        else:
            verdict = f"{alias} stays version {info['champion']}"
        mae = "-" if info["mae"] is None else f"{info['mae']:.2f}"
        print(f"registered {info['model']} version {info['version']} ({benchmark} test MAE {mae}): {verdict}")
    page, uri = experiment_page(uri, experiment_id), redact(uri)
    if uri.startswith(("http://", "https://")):
        print(f"MLflow:  {uri}\n  the search's runs: {page}")
    else:
        # ldlpose ui picks a free port and prints this search's page there (the latest search).
        flag = "" if uri == resolve_tracking_uri(None) else f" --tracking-uri {uri}"
        print(f"MLflow:  {uri}\n  open it in MLflow's UI with: ldlpose ui{flag}")
    if champions:
        first = champions[sorted(champions)[0]]
        print(f"  predict with:     ldlpose predict --model models:/{first['model']}@{first['alias']} IMAGE...")
