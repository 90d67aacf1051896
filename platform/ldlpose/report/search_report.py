"""The document of ``ldlpose report``: what a researcher puts in a paper or a pull request about one
search, from its story (:func:`ldlpose.search.story.tell`) and its stored record
(:func:`ldlpose.tracking.search_record.read_search`).

Sections: the summary; the space (searched dimensions and fixed settings); the budget, planned and
spent; the data; every trial's validation and test scores with the protocol and data hash they were
measured on; the confirmation (per configuration and per method: mean and 95 % interval); the
champion and its lineage; the figures. Rendered by :mod:`ldlpose.report.document`.
"""

from __future__ import annotations

import math
import re

__all__ = ["document"]

_SPEC_KEYS = ("distribution", "min", "max", "step", "values", "value", "log")
_FIGURE_CAPTIONS = {
    "best_vs_trial_epochs.png": "the best validation value so far against the trial-epochs spent, trials in the "
                                "order they finished: a curve still falling at its right end says more budget helps",
    "objective_per_method.png": "each trial's validation value per method, with the confirmation runs (new seeds) "
                                "and their mean and 95% interval",
    "param_importances.png": "Optuna's parameter importances (fANOVA) for the validation objective",
    "parallel_coordinate.png": "Optuna's parallel coordinates: each trial's parameters and objective",
}


def document(told: dict, record: dict) -> dict:
    params, tags = record["parent"]["params"], record["parent"]["tags"]
    notes = [(f"Search {told['search']}: status {record['parent']['status']}, {tags.get('ldlpose.attempts', '1')} "
             f"attempt(s); objective {told['objective']} (validation, lower is better; test benchmarks are "
             "measured, never used to choose)."),
             f"MLflow {record['uri']}, experiment {record['experiment_id']}, search run "
             f"{record['parent']['run_id']}; code {tags.get('mlflow.source.git.commit', '(not a git checkout)')}"
             + (" with uncommitted changes" if tags.get("ldlpose.git_dirty") == "True" else "") + "."]
    sections = [_summary(told), _space(params), _budget(params, told), _data(params), _trials(told),
                _confirmation(told), _champion(told, record), _figures(record)]
    return {"title": f"Search report: {told['search']}", "notes": notes, "sections": sections}


def _number(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _summary(told: dict) -> dict:
    summary = told["summary"]
    rows = [[k, _number(v, 0 if k.startswith(("trials_", "trial_epochs", "confirmation_epochs")) else 2)]
            for k, v in summary.items()]
    return {"heading": "Summary", "notes": ["The metrics the search's MLflow run carries (degrees, seconds)."],
            "tables": [{"headers": ["metric", "value"], "rows": rows}]}


def _space(params: dict) -> dict:
    prefix = "space.search.parameters."
    dimensions: dict[str, dict[str, str]] = {}
    for key, value in sorted(params.items()):
        if not key.startswith(prefix):
            continue
        name, _, last = key[len(prefix):].rpartition(".")
        if last not in _SPEC_KEYS:
            name, last = key[len(prefix):], ""
        name = re.sub(r"^method\.values\.([^.]+)\.(.+)$", r"\2 (method \1)", name)
        dimensions.setdefault(name, {})[last] = value
    fixed = [[k[len("space."):], v] for k, v in sorted(params.items()) if k.startswith("space.")
             and not k.startswith((prefix, "space.search.budget.")) and v not in ("null", "[]")]
    return {"heading": "The space", "tables": [
        {"caption": "searched", "headers": ["dimension", "distribution"],
         "rows": [[k, _distribution(v)] for k, v in dimensions.items()] or [["(none)", "-"]]},
        {"caption": "fixed settings (the base run config and the search section)", "headers": ["key", "value"],
         "rows": fixed, "folded": True}]}


def _distribution(spec: dict[str, str]) -> str:
    """``log_uniform [1.0, 4.0]``, ``values [0.1, 1.0]``, ``value 2.0``: a dimension as its YAML reads."""
    if "distribution" in spec or "min" in spec:
        step = f" step {spec['step']}" if spec.get("step", "null") != "null" else ""
        return f"{spec.get('distribution', 'uniform')} [{spec.get('min')}, {spec.get('max')}]{step}"
    return ", ".join(f"{k} {v}".strip() for k, v in spec.items())


def _budget(params: dict, told: dict) -> dict:
    prefix = "space.search.budget."
    planned = [[k[len(prefix):], v] for k, v in sorted(params.items()) if k.startswith(prefix)]
    planned.append(["epochs per trial", params.get("space.base.train.epochs", "-")])
    summary = told["summary"]
    spent = [["trials run", str(sum(r["role"] == "trial" for r in told["rows"]))],
             *([k, _number(summary[k], 0)] for k in ("trial_epochs", "confirmation_epochs") if k in summary),
             ["wall time (s)", _number(summary.get("wall_time_s"), 0)]]
    return {"heading": "The budget", "tables": [{"caption": "planned", "headers": ["key", "value"], "rows": planned},
                                                {"caption": "spent", "headers": ["what", "value"], "rows": spent}]}


def _data(params: dict) -> dict:
    names = sorted({k.split(".")[1] for k in params if k.startswith("data.") and k.count(".") >= 2})
    rows = [[n, params.get(f"data.{n}.dataset", "-"), params.get(f"data.{n}.rows", "-"),
             params.get(f"data.{n}.content_hash", "-")] for n in names]
    return {"heading": "The data", "tables": [{"headers": ["set", "dataset", "rows", "content hash"], "rows": rows}]}


def _short_hash(value: str) -> str:
    """``sha256:61d9d4127f12``: enough to tell data sets apart in a wide table."""
    kind, _, digits = value.rpartition(":")
    return f"{kind}:{digits[:12]}" if kind and len(digits) > 12 else value


def _trials(told: dict) -> dict:
    benchmarks = sorted({b for r in told["rows"] for b in r["tests"]})
    headers = ["run", "trial", "role", "outcome", "method", "values", "epochs", "selected epoch",
               f"{told['objective']} (val)"]
    for b in benchmarks:
        headers += [f"{b} MAE (test)", f"{b} protocol", f"{b} data hash"]
    order = sorted(told["rows"], key=lambda r: (r["role"] != "trial", r["objective"] is None, r["objective"] or 0))
    rows = []
    for r in order:
        row = [r["name"], r["trial_id"], r["role"], r["outcome"], r["method"], r["values"] or "-",
               str(r["epochs"]), r["selected_epoch"] or "-", _number(r["objective"])]
        for b in benchmarks:
            row += [_number(r["tests"].get(b, {}).get("mae")), r["protocols"].get(b, "-"),
                    _short_hash(r["data_hashes"].get(b, "-"))]
        rows.append(row)
    notes = [("Validation values at each run's selected checkpoint (its best epoch); test scores of that checkpoint, "
             "with the protocol and the content hash of the test data they were measured on (its first 12 hex "
             "digits; in full under The data and the champion's lineage).")]
    failed = [f"{r['trial_id']}: {r['failure']}" for r in order if r["failure"]]
    return {"heading": "Every trial", "notes": notes + (["Failures: " + "; ".join(failed)] if failed else []),
            "tables": [{"headers": headers, "rows": rows}]}


def _confirmation(told: dict) -> dict:
    if not told["configurations"]:
        return {"heading": "Confirmation over seeds", "notes": [
            ("No confirmation ran (search.confirm.top_k is 0): each trial is one seed, so differences of a few "
            "tenths of a degree may be luck.")]}
    stats = ["n", "mean", "std", "95% interval"]

    def cells(s: dict) -> list[str]:
        interval = f"[{_number(s['ci95_low'])}, {_number(s['ci95_high'])}]"
        return [str(s["n"]), _number(s["mean"]), _number(s["std"]), interval]

    return {"heading": "Confirmation over seeds", "notes": [
        ("Each confirmed configuration trained again with new seeds; mean, sample std and the 95% interval of the "
        "mean (Student's t) of those runs, the searched trial left out (it was chosen for scoring well).")],
        "tables": [{"caption": "per configuration, best mean first", "headers": ["configuration", "method", "values",
                                                                               "search", *stats],
                    "rows": [[c["trial_id"], c["method"], c["values"], _number(c["original"]), *cells(c)]
                             for c in told["configurations"]]},
                   {"caption": "per method (its confirmation runs pooled)", "headers": ["method", *stats],
                    "rows": [[m["method"], *cells(m)] for m in told["methods"]]}]}


def _champion(told: dict, record: dict) -> dict:
    champion = told["champion"]
    if champion is None:
        return {"heading": "The champion", "notes": ["No trial finished with a selected checkpoint."]}
    versions = [f"{v['model']} version {v['version']}" + (f" ({', '.join(v['aliases'])})" if v["aliases"] else "")
                for v in record["versions"] if v["tags"].get("run_id") == champion["run_id"]]
    selection = champion["selection"]
    rows = [["run", f"{champion['name']} ({champion['run_id']})"], ["trial", champion["trial_id"]],
            ["role", champion["role"] + (f", confirms {champion['confirms']}" if champion["confirms"] else "")],
            ["method, backbone", f"{champion['method']}, {champion['backbone']}"],
            ["values", champion["values"] or "-"],
            [f"{told['objective']} (validation)", _number(champion["objective"])],
            ["selected epoch", champion["selected_epoch"] or "-"],
            ["checkpoint sha256", champion["checkpoint_sha256"] or "-"], ["logged model", champion["model_uri"] or "-"],
            ["registered", "; ".join(versions) or "not registered (a smoke test, or a Pareto search's non-member)"],
            ["validation rows", f"{selection['split']}, {selection['rows']} rows, {selection['content_hash']}"]]
    rows += [[f"{b} test", (f"MAE {_number(s.get('mae'))} on protocol {champion['protocols'][b]}, data "
              f"{champion['data_hashes'][b]}")] for b, s in sorted(champion["tests"].items())]
    rows += [["training data", record["parent"]["params"].get("data.train.content_hash", "-")],
             ["code", record["parent"]["tags"].get("mlflow.source.git.commit", "-")]]
    return {"heading": "The champion and its lineage", "tables": [{"headers": ["what", "value"], "rows": rows}]}


def _figures(record: dict) -> dict:
    names = sorted(record["figures"], key=lambda n: (n not in _FIGURE_CAPTIONS, list(_FIGURE_CAPTIONS).index(n)
                                                     if n in _FIGURE_CAPTIONS else 0, n))
    return {"heading": "Figures", "notes": [] if names else ["The search run has no figures."],
            "figures": [{"name": n, "caption": _FIGURE_CAPTIONS.get(n, "a figure of the search run"),
                         "png": record["figures"][n]} for n in names]}
