"""Confirmation over seeds: retrain the best configurations with new seeds and judge them by the mean.

Trials differ by tenths of a degree to degrees from the seed alone, so the best single trial of a
search is partly luck. With ``search.confirm: {top_k: K, seeds: S}`` the K best configurations are
trained again with S new seeds each (seeds never used by the search); each configuration's score is
the mean validation objective of its S confirmation runs. The original trial is left out of the mean:
it was picked *because* it scored well, so counting it would bias the mean downwards.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ldlpose.errors import LdlposeError
from ldlpose.search.space import SearchSpace
from ldlpose.search.trials import TrialSummary


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof 1)
    ci_low: float  # 95 % interval of the mean, Student's t
    ci_high: float

    def as_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean, "std": self.std, "ci95_low": self.ci_low, "ci95_high": self.ci_high}


def stats(values: list[float]) -> Stats:
    from scipy import stats as scipy_stats

    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    half = float(scipy_stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else math.nan
    return Stats(n, mean, std, mean - half, mean + half)


def points(space: SearchSpace, ranked: list[TrialSummary]) -> list[dict]:
    """The confirmation runs: each of the ``top_k`` best distinct configurations with each new seed."""
    confirm = space.search.confirm
    chosen, seen = [], set()
    for trial in ranked:
        key = repr(sorted(trial.assignment.items()))
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
        if len(chosen) == confirm.top_k:
            break
    result = []
    for trial in chosen:
        base_seed = space.run_config(trial.assignment).train.seed
        for offset in range(1, confirm.seeds + 1):
            seed = base_seed + offset  # never the seed the search trained this configuration with
            result.append({"assignment": {**trial.assignment, "train.seed": seed}, "confirms": trial.trial_id,
                           "seed": seed})
    return result


def summarise(space: SearchSpace, originals: dict[str, dict], confirmations: list[dict]) -> list[dict]:
    """One row per confirmed configuration, best mean first.

    ``originals``: trial id -> the candidate of the search's trial; ``confirmations``: the candidates
    of the confirmation runs, each with ``confirms``. A row holds the configuration's statistics and
    its runs (the original included), best objective first.
    """
    rows = []
    for trial_id, original in originals.items():
        runs = [c for c in confirmations if c.get("confirms") == trial_id]
        if len(runs) < 2:
            continue
        row_stats = stats([c["objective"] for c in runs])
        rows.append({"trial_id": trial_id, "method": original["method"], "backbone": original["backbone"],
                     "assignment": original["assignment"], "original": original["objective"], "stats": row_stats,
                     "runs": sorted([original, *runs], key=lambda c: c["objective"])})
    return sorted(rows, key=lambda r: r["stats"].mean)


def per_method(rows: list[dict]) -> dict[str, Stats]:
    """The statistics of every confirmation run of each method, pooled over its configurations."""
    values: dict[str, list[float]] = {}
    for row in rows:
        values.setdefault(row["method"], []).extend(c["objective"] for c in row["runs"] if c.get("confirms"))
    return {method: stats(v) for method, v in sorted(values.items()) if len(v) >= 2}


POINTS_FILE = "ldlpose-points.json"  # the (configuration, seed) pairs a confirmation was started with


def point_of(config: dict, points: list[dict]) -> dict:
    """A confirmation trial's point: its own config's (a state from before points were carried: by index)."""
    point = config["_point"]
    return points[point] if isinstance(point, int) else point


def check_points(path: str, points: list[dict]) -> None:
    """Record the confirmation's (configuration, seed) pairs; refuse to resume it with other pairs."""
    from ldlpose.infra.storage import exists, filesystem, join, read_bytes, write_bytes

    keys = sorted([p["confirms"], p["seed"]] for p in points)
    location = join(path, POINTS_FILE)
    if exists(location):
        stored = json.loads(read_bytes(location))
        if stored != keys:
            gone = [k for k in stored if k not in keys]
            new = [k for k in keys if k not in stored]
            raise LdlposeError(
                f"the confirmation at {path} was started for other (configuration, seed) pairs: now also "
                f"{new or 'none'}, no longer {gone or 'none'} (the top configurations changed, e.g. after a "
                "raised budget); its runs stay where they are. Confirm the new ones as a new search: "
                "--set search.name=<another name>")
        return
    fs, local = filesystem(path)
    fs.create_dir(local, recursive=True)
    write_bytes(location, json.dumps(keys).encode())
