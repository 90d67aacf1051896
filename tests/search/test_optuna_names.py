"""One name per searched hyperparameter: the run-config key, in Tune's config, the assignment tag,
the run config and MLflow's params, and in Optuna's study wherever Optuna allows.

Where two methods declare distributions Optuna cannot keep under one name, exactly those keep their
method in the name inside the study (the rule is Optuna's own: its storage refuses them, shown here
too); the searcher hands Tune the public name. Assignments stored by searches from before this rule
(Optuna's name in Tune's config and the tag) still read.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from ldlpose.search import optuna_space, tuning
from ldlpose.search.callback import run_params
from ldlpose.search.names import public_names
from ldlpose.search.space import load_search_space, search_space_from_dict
from ldlpose.search.start_from import checked
from ldlpose.search.story import _row

REPO = Path(__file__).resolve().parents[2]
optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "name": "t",
    "method": {"name": "gldl"},
    "model": {"backbone": "resnet18"},
    "data": {"benchmarks": ["synth"]},
    "train": {"epochs": 2},
    "search": {"name": "names", "sampler": {"name": "tpe", "seed": 3, "n_startup_trials": 4}, "budget": {"trials": 4},
               "parameters": {"train.optimizer.lr": {"distribution": "log_uniform", "min": 1e-4, "max": 1e-2}}},
}


def space_with(methods: dict, sampler: str = "tpe", **shared):
    data = copy.deepcopy(SPACE)
    data["search"]["sampler"]["name"] = sampler
    data["search"]["parameters"].update(shared)
    data["search"]["parameters"]["method"] = {"values": methods}
    return search_space_from_dict(data)


def sample(space, trials: int = 30) -> optuna.Study:
    """A real study driven by the space's define-by-run function and sampler (every trial told)."""
    study = optuna.create_study(sampler=optuna_space.sampler(space))
    for i in range(trials):
        trial = study.ask()
        optuna_space.define_by_run(space)(trial)
        study.tell(trial, float(i % 7))
    return study


def test_the_quickstart_study_qualifies_only_the_incompatible_alphas_and_tune_sees_one_name_each():
    space = load_search_space(REPO / "search_spaces/quickstart.yaml")
    study = sample(space)
    seen = {name for trial in study.trials for name in trial.params}
    # sigma (gldl) and beta (dadl) have one method each; the three methods' alphas list different
    # values, which Optuna cannot hold under one name, so exactly they carry their method.
    assert seen == {"method", "train.optimizer.lr", "method.hparams.sigma", "method.hparams.beta",
                    "method.gldl.alpha", "method.dadl.alpha", "method.hopenet.alpha"}
    for trial in study.trials:
        run = space.run_config(trial.params)
        assert run.method.name == trial.params["method"]
        own = {k for k in trial.params if k.startswith("method.")}
        assert {k.rsplit(".", 1)[1] for k in own} == set(run.method.hparams.keys())
        assert run.train.optimizer.lr == trial.params["train.optimizer.lr"]
        for name in own & {"method.hparams.sigma", "method.hparams.beta"}:
            assert run.method.hparams[name.rsplit(".", 1)[1]] == trial.params[name]
    # What Tune's config (and so the ldlpose.assignment tag) gets: the run-config key, whatever Optuna's.
    searcher = tuning.searcher(space)
    configs = [searcher.suggest(f"t{i}") for i in range(30)]
    assert {name for c in configs for name in c} == {"method", "train.optimizer.lr", "method.hparams.sigma",
                                                     "method.hparams.beta", "method.hparams.alpha"}
    assert {c["method"] for c in configs if "method.hparams.alpha" in c} == {"gldl", "dadl", "hopenet"}
    for config in configs:
        params = run_params(space, config)  # the trial's MLflow params: the same keys
        own = {k for k in config if k.startswith("method.hparams.")}
        assert own <= set(params) and all(params[k] == config[k] for k in own), (config, params)
        assert space.run_config(config).method.hparams.given() == {k.rsplit(".", 1)[1]: config[k] for k in own}


def test_one_name_for_compatible_distributions_of_several_methods_and_each_keeps_its_own_range():
    # Float bounds may differ under one name in Optuna; every value stays inside its method's range.
    ranges = {"gldl": (0.0, 0.1), "hopenet": (0.5, 2.0), "whenet": (1.0, 3.0)}
    space = space_with({m: {"alpha": {"distribution": "uniform", "min": lo, "max": hi}}
                        for m, (lo, hi) in ranges.items()})
    assert set(optuna_space.names(space).values()) == {"method.hparams.alpha"}
    study = sample(space, trials=40)
    assert {name for trial in study.trials for name in trial.params} == {"method", "train.optimizer.lr",
                                                                         "method.hparams.alpha"}
    for trial in study.trials:
        low, high = ranges[trial.params["method"]]
        assert low <= trial.params["method.hparams.alpha"] <= high
        run = space.run_config(trial.params)
        assert run.method.hparams.given() == {"alpha": trial.params["method.hparams.alpha"]}
    assert {t.params["method"] for t in study.trials} == set(ranges)


@pytest.mark.parametrize("other", [{"values": [1.0, 2.0]},  # categoricals with other choices
                                   {"distribution": "log_uniform", "min": 0.01, "max": 1.0},  # another scale
                                   {"distribution": "uniform", "min": 0.0, "max": 1.0}])  # another kind
def test_incompatible_distributions_keep_their_method_in_the_name_and_optuna_would_refuse_them(other):
    gldl = {"values": [0.0, 0.01, 0.1]}
    if other.get("distribution") == "log_uniform":
        gldl = {"distribution": "uniform", "min": 0.0, "max": 0.1}
    space = space_with({"gldl": {"alpha": gldl, "sigma": {"distribution": "log_uniform", "min": 1, "max": 4}},
                        "hopenet": {"alpha": other}})
    assert optuna_space.names(space) == {"method.gldl.alpha": "method.gldl.alpha",
                                         "method.hopenet.alpha": "method.hopenet.alpha",
                                         "method.gldl.sigma": "method.hparams.sigma"}
    study = sample(space, trials=20)
    assert {t.params["method"] for t in study.trials} == {"gldl", "hopenet"}
    # The rule is Optuna's: both under the run-config key, its storage refuses the second.
    alphas = {m: next(p for p in own if p.key == "method.hparams.alpha") for m, own in space.method_params.items()}
    refusing = optuna.create_study()
    first = refusing.ask()
    optuna_space.suggest(alphas["gldl"], first, "method.hparams.alpha")
    refusing.tell(first, 1.0)
    with pytest.raises(ValueError, match=r"distribution kind|dynamic value space|log configuration"):
        optuna_space.suggest(alphas["hopenet"], refusing.ask(), "method.hparams.alpha")


def test_a_fixed_method_and_a_searched_one_give_the_same_names_so_their_studies_line_up():
    searched = load_search_space(REPO / "search_spaces/quickstart.yaml")
    data = copy.deepcopy(SPACE)
    data["search"]["parameters"]["method.hparams.sigma"] = {"distribution": "log_uniform", "min": 1, "max": 8}
    fixed = search_space_from_dict(data)
    names = [{n for t in sample(s, 12).trials for n in t.params if n != "method"} for s in (searched, fixed)]
    assert {"train.optimizer.lr", "method.hparams.sigma"} <= names[0] & names[1]
    # A study rebuilt from both searches' trials accepts them side by side, under the same names.
    rows = [(dict(t.params), 1.0) for s in (searched, fixed) for t in sample(s, 6).trials
            if s is fixed or t.params["method"] == "gldl"]
    merged = optuna.create_study()
    for params, value in rows:
        space = fixed if "method" not in params else searched
        merged.add_trial(optuna.trial.create_trial(params=params, value=value,
                                                   distributions=optuna_space.distributions(space, params)))
    assert {"method.hparams.sigma", "train.optimizer.lr"} <= set(merged.best_trial.params)


def test_constants_reach_the_assignment_under_their_key():
    space = space_with({"gldl": {"sigma": {"value": 2.5}}, "hopenet": {"alpha": {"values": [1.0, 2.0]}}},
                       **{"data.augment.flip": {"value": 0.25}})
    study = optuna.create_study(sampler=optuna_space.sampler(space))
    for _ in range(12):
        trial = study.ask()
        returned = optuna_space.define_by_run(space)(trial) or {}
        # What Tune's OptunaSearch makes the trial's config: the sampled values and the returned ones.
        run = space.run_config({**trial.params, **returned})
        assert run.data.augment.flip == 0.25
        if trial.params["method"] == "gldl":
            assert returned["method.hparams.sigma"] == 2.5 and run.method.hparams.given() == {"sigma": 2.5}
        study.tell(trial, 1.0)


def test_grid_points_carry_the_same_names():
    space = space_with({"gldl": {"alpha": {"values": [0.0, 0.1]}, "sigma": {"values": [1.0, 2.0]}},
                        "hopenet": {"alpha": {"values": [1.0, 2.0]}}}, sampler="grid",
                       **{"train.optimizer.lr": {"values": [0.001, 0.01]}})
    study = optuna.create_study(sampler=optuna_space.sampler(space))
    points = []
    study.optimize(lambda t: points.append(optuna_space.define_by_run(space)(t)) or 0.0, n_trials=space.num_trials)
    assert {name for p in points for name in p} == {"method", "train.optimizer.lr", "method.hparams.sigma",
                                                    "method.gldl.alpha", "method.hopenet.alpha"}
    for point in points:
        run = space.run_config(point)
        assert set(run.method.hparams.keys()) == {k.rsplit(".", 1)[1] for k in point if k.startswith("method.")}
    rebuilt = optuna_space.study_of(space, [(p, float(i)) for i, p in enumerate(points)])
    assert len(rebuilt.trials) == len(points)


# --- assignments stored before the rule ----------------------------------------------------------

# A quickstart trial as a search from before the rule stored it: Optuna's method-qualified name in
# Tune's config and in the ldlpose.assignment tag.
OLD = {"method": "hopenet", "method.hopenet.alpha": 1.0, "train.optimizer.lr": 5e-3}
NEW = {"method": "hopenet", "method.hparams.alpha": 1.0, "train.optimizer.lr": 5e-3}


def test_an_assignment_stored_under_optunas_names_still_reads_as_the_public_one():
    space = load_search_space(REPO / "search_spaces/quickstart.yaml")
    assert public_names(OLD) == NEW and public_names(NEW) == NEW
    assert space.run_config(OLD) == space.run_config(NEW)
    assert run_params(space, OLD) == run_params(space, NEW)
    # The report and the leaderboard read the tag back: the old trial's row carries the public names.
    run = {"name": "r", "trial_id": "t1", "run_id": "x", "role": "trial", "status": "FINISHED", "end_ms": 0,
           "tags": {"ldlpose.assignment": json.dumps(OLD)}, "metrics": {}, "params": {}}
    assert _row(run, "val_mae")["assignment"] == NEW
    # Tune's config of a resumed older search (its pickled searcher is Ray's own OptunaSearch) reaches the
    # callback, and from there the tag and the MLflow params, under the public names too.
    callback = tuning.TrackingCallback("file:unused", space, {}, "/tmp", "p")
    trial = SimpleNamespace(trial_id="t1", config={**OLD, "_internal": 1}, last_result={})
    assert callback.summary(trial).assignment == NEW
    # start_from takes an old assignment copied from a tag.
    section = space.search.model_copy(update={"start_from": [OLD]})
    assert checked(section, space.params, space.method_params, None) == \
        ({"method": "hopenet", "method.hopenet.alpha": 1.0, "train.optimizer.lr": 5e-3},)


def test_a_study_rebuilt_from_old_and_new_assignments_puts_both_under_optunas_names():
    space = load_search_space(REPO / "search_spaces/quickstart.yaml")
    gldl = {"method": "gldl", "method.hparams.sigma": 2.0, "method.hparams.alpha": 0.01, "train.optimizer.lr": 4e-3}
    assert optuna_space.optuna_names(space, NEW) == optuna_space.optuna_names(space, OLD) == OLD
    # sigma is gldl's alone: Optuna keeps the public name; the alphas are qualified in the study only.
    in_study = {"method": "gldl", "method.hparams.sigma": 2.0, "method.gldl.alpha": 0.01, "train.optimizer.lr": 4e-3}
    assert optuna_space.optuna_names(space, gldl) == in_study
    study = optuna_space.study_of(space, [(OLD, 2.0), (NEW, 3.0), (gldl, 1.0)])
    assert [t.params for t in study.trials] == [OLD, OLD, in_study]
    assert study.best_trial.params["method.hparams.sigma"] == 2.0
