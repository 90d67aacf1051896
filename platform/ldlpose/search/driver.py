"""``ldlpose search`` end to end, as a pipeline of steps with one home each.

1. prepare (here): load the space, resolve the data root once, make sure its data exists, check its
   splits, take the search's lease, check or record its fingerprint;
2. run the search (:mod:`ldlpose.search.tuning`, the trials tracked by :mod:`ldlpose.search.callback`);
3. finalise the trials from stored state (:mod:`ldlpose.search.finalise`);
4. select (:mod:`ldlpose.search.choose`: the best trial, or the confirmation's best mean);
5. register (:mod:`ldlpose.search.registration`, through the tracking seam);
6. report (:mod:`ldlpose.search.console` prints, :mod:`ldlpose.search.story` logs the summary).

Data questions go to one :class:`ldlpose.data.identity.RunData`. Everything that decides the champion
is read back from stored state (Tune's results on storage and the trials' MLflow runs) after Tune
returns, so a search whose driver was killed outright and then resumed registers exactly what an
uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from ldlpose.data.identity import RunData
from ldlpose.infra.locations import DEFAULT_STORAGE, redact
from ldlpose.infra.storage import resolve as resolve_location
from ldlpose.search import console, fingerprint, story
from ldlpose.search.callback import TrackingCallback
from ldlpose.search.choose import choose, console_view, study
from ldlpose.search.finalise import close_orphans, finalise_all
from ldlpose.search.registration import register_chosen, registration_failed
from ldlpose.search.space import SearchSpace, load_search_space
from ldlpose.search.tuning import SearchOutcome, clear_smoke_test, run_search, smoke_test_space


def check_identity(space: SearchSpace, data: RunData, storage: str, resume: bool, space_file: str,
                   overrides) -> None:
    """Before anything trains: record a new search's fingerprint, or refuse a resume whose
    fingerprinted settings changed (:mod:`ldlpose.search.fingerprint`)."""
    from ray import tune

    from ldlpose import config as run_configs
    from ldlpose.infra.storage import join

    written = run_configs.apply_overrides(run_configs.read_yaml(space_file), list(overrides))
    if tune.Tuner.can_restore(join(storage, space.name)):
        if resume:
            fingerprint.check_resume(space, storage, data.manifests(), space_file, written)
        return  # without --resume the stored search is not touched (ldlpose.search.tuning)
    fingerprint.record(space, storage, data.manifests(), written)


def tracking_callback(space: SearchSpace, data: RunData, yaml_text: str, uri: str, storage: str,
                      driver: str | None = None) -> TrackingCallback:
    from ldlpose.config.schema import to_dict

    search = space.search
    start = {"space_yaml_text": yaml_text, "resolved_space": {"base": space.base, "search": to_dict(search)},
             "sampler": search.sampler.name, "seed": search.sampler.seed, "manifests": data.manifests()}
    return TrackingCallback(uri, space, start, storage, space.name,
                            eval_samples=data.eval_samples(), driver=driver)


def search_and_report(path: str, *, overrides=(), resume=False, smoke_test=False, storage=DEFAULT_STORAGE,
                      address=None, tracking_uri=None, verbose=True) -> int:
    """``verbose``: Ray's and Tune's own output; otherwise one compact view (ldlpose.search.console)."""
    from ldlpose.infra.storage import credentials_to_environment
    from ldlpose.search.console import quiet_logs
    from ldlpose.tracking import credentials_to_environment as tracking_credentials_to_environment
    from ldlpose.tracking import resolve_tracking_uri

    # Passwords into the environment before Ray, Tune or a file sees a URI: Tune pickles the storage
    # path and the tracking callback (with its URI) into the search's storage. Both are resolved here,
    # once: the steps below take them as they are.
    storage = resolve_location(credentials_to_environment(storage))  # a local path made absolute
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

    return Lease(join(storage, space.name), f"search {space.name!r} in {redact(storage)}")


def _search_held(space, path, overrides, resume, smoke_test, storage, address, uri, verbose, driver) -> int:
    """The search under its lease; ``storage`` and ``uri`` as search_and_report resolved them."""
    from ldlpose.tracking import RegistrationError, require_authenticated

    if smoke_test and clear_smoke_test(space, storage):
        console.say(f"smoke test {space.name}: the previous smoke test's results are replaced")
    data = RunData.of(space.base_run.data)  # the data root resolved once for every question below
    check_identity(space, data, storage, resume, path, overrides)
    # Refused credentials never heal (an outage may: the outbox waits for it), so stop before training.
    require_authenticated(uri)
    callback = tracking_callback(space, data, Path(path).read_text(), uri, storage, driver)
    replayed = callback.replay()  # what a killed driver never wrote to MLflow goes first
    if replayed:
        console.say(f"search {space.name}: {replayed} MLflow write(s) an earlier driver left undelivered are "
                    "written first")
    outcome = _run(space, callback, storage, resume, address, verbose)
    ranked = finalise_all(callback, outcome, space)
    close_orphans(callback, outcome)
    console.results(space, ranked, outcome, data.benchmark_identities())
    if len(ranked) >= 2:
        callback.safely("search plots", callback.tracker.log_search_plots, study(space, ranked))
    problems = list(callback.problems)
    try:
        champions = _select_and_register(space, ranked, outcome, callback, storage, verbose, smoke_test, data)
    except RegistrationError as err:  # the trials and their models are kept: --resume registers again
        raise registration_failed(callback, err, outcome.path) from err
    callback.safely("search summary", story.log_story, callback.tracker)  # metrics and figures, from MLflow
    callback.safely("search end", callback.tracker.finish, "FINISHED" if ranked else "FAILED")
    console.champions(champions, uri, callback.tracker.experiment_id)
    for problem in problems + callback.problems[len(problems):]:
        console.say(f"tracking problem: {problem}")
    console.say(f"\nresults: {redact(outcome.path)}")
    return 0 if ranked else 1


def _run(space: SearchSpace, callback: TrackingCallback, storage: str, resume: bool, address, verbose: bool
         ) -> SearchOutcome:
    """Start (or join) Ray and run the search with its tracking callback and, when quiet, its console view."""
    from ldlpose.infra.ray_cluster import ensure_ray
    from ldlpose.tracking import warm_up

    # Seconds of imports that the first finished trial would otherwise pay, done while Ray starts
    # (which imports only Ray's own modules). Joined before the search imports torch itself: two
    # threads importing one package at once can see it half initialised.
    warming = threading.Thread(target=warm_up, name="ldlpose-warm-up", daemon=True)
    warming.start()
    ensure_ray(address, log_to_driver=verbose, quiet=not verbose)
    warming.join()
    views = [] if verbose else [console_view(space, space.name, space.num_trials)]
    return run_search(space, storage=storage, resume=resume, callbacks=[callback, *views], verbose=verbose)


def _select_and_register(space, ranked, outcome, callback, storage, verbose, smoke_test, data) -> dict:
    """Select (confirming where the space asks for it), then register what the rule chose."""
    if not ranked:
        return {}
    best, statistics = choose(space, ranked, outcome, callback, storage, verbose)
    return register_chosen(callback, space, ranked, outcome, best, statistics, data, smoke_test)
