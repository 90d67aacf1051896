"""Confirmation statistics and the confirmation runs a search plans (no Ray needed)."""

from __future__ import annotations

import math

import pytest
import yaml
from scipy import stats as scipy_stats

from ldlpose.search import confirm
from ldlpose.search.space import load_search_space
from ldlpose.search.trials import TrialSummary


def test_stats_match_scipys_t_interval():
    values = [7.1, 7.9, 7.4, 8.2]
    result = confirm.stats(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=scipy_stats.sem(values))
    assert result.n == 4 and result.mean == pytest.approx(7.65)
    assert result.std == pytest.approx(scipy_stats.tstd(values))
    assert (result.ci_low, result.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert math.isnan(confirm.stats([3.0]).std)


def _space(tmp_path, top_k=2, seeds=3):
    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump({
        "train": {"seed": 10}, "search": {"confirm": {"top_k": top_k, "seeds": seeds},
                                          "parameters": {"train.optimizer.lr": {"values": [0.1, 0.01, 0.001]}}}}))
    return load_search_space(file)


def _trial(trial_id, lr):
    return TrialSummary(trial_id, "TERMINATED", {"train.optimizer.lr": lr}, {}, None, "")


def test_points_take_the_top_distinct_configurations_with_seeds_never_used(tmp_path):
    space = _space(tmp_path)
    ranked = [_trial("a", 0.01), _trial("b", 0.01), _trial("c", 0.1), _trial("d", 0.001)]
    points = confirm.points(space, ranked)
    assert [(p["confirms"], p["seed"]) for p in points] == [("a", 11), ("a", 12), ("a", 13), ("c", 11), ("c", 12),
                                                           ("c", 13)]
    assert all(p["assignment"]["train.seed"] == p["seed"] for p in points)
    assert space.run_config(points[0]["assignment"]).train.seed == 11


def test_summary_ranks_configurations_by_the_mean_of_their_confirmation_runs_only():
    original = {"a": {"trial_id": "a", "method": "gldl", "backbone": "resnet18", "assignment": {}, "objective": 1.0},
                "c": {"trial_id": "c", "method": "hopenet", "backbone": "resnet18", "assignment": {}, "objective": 2.0}}
    reruns = [{"confirms": "a", "objective": v} for v in (6.0, 7.0)] + [{"confirms": "c", "objective": v}
                                                                        for v in (3.0, 4.0)]
    rows = confirm.summarise(None, original, reruns)
    # 'a' had the luckier search trial (1.0) but the worse mean over new seeds: 'c' wins.
    assert [r["trial_id"] for r in rows] == ["c", "a"]
    assert rows[0]["stats"].mean == 3.5 and rows[0]["runs"][0]["objective"] == 2.0
    assert set(confirm.per_method(rows)) == {"gldl", "hopenet"}


def test_confirmation_runs_are_known_by_configuration_and_seed_and_checked_on_restore(tmp_path):
    from ldlpose.errors import LdlposeError
    from ldlpose.search.confirm import POINTS_FILE, check_points, point_of

    points = [{"assignment": {"train.seed": s}, "confirms": t, "seed": s} for t in ("a", "b") for s in (1, 2)]
    folder = str(tmp_path / "search-confirm")
    check_points(folder, points)  # started: the pairs are stored beside the confirmation's state
    assert (tmp_path / "search-confirm" / POINTS_FILE).exists()
    check_points(folder, list(reversed(points)))  # the same pairs, in another order: the same confirmation
    with pytest.raises(LdlposeError, match=r"now also \[\['c', 1\]\], no longer \[\['b', 1\]\]"):
        check_points(folder, [*points[:2], {**points[2], "confirms": "c", "seed": 1}, points[3]])
    # A trial carries its own point; a state from before that names it by position.
    assert point_of({"_point": points[3]}, points[:1]) == points[3]
    assert point_of({"_point": 2}, points) == points[2]
