"""The shipped synthhead spaces in the README's order against one store: each registers, each rule keeps
its own alias on its own best version (quickstart: rule validation, @champion; pareto-backbones: its
written rule, @champion-min-val_mae-where-latency_ms-le-5). Shrunk with --set to seconds of training."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from ldlpose.search.driver import search_and_report
from ldlpose.selection.rules import alias_of, parse_rule

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHRINK = ["search.budget.trials=2", "search.budget.concurrency=1", "train.epochs=1", "data.max_train_samples=32",
          "data.max_eval_samples=32"]


def test_the_quickstart_then_the_pareto_space_keep_one_alias_each(synth_root, ray_local, tmp_path, capsys):
    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "results")
    for space, extra in (("quickstart", []),
                         ("pareto-backbones", ["search.budget.trials=4", "search.profile.warmup=1",
                                               "search.profile.repeats=2", "search.profile.batch_size=2"])):
        overrides = [f"data.root={synth_root}", *SHRINK, *extra]
        assert search_and_report(str(REPO / "search_spaces" / f"{space}.yaml"), overrides=overrides,
                                 storage=storage, tracking_uri=uri, verbose=False) == 0
        printed = capsys.readouterr().out
        assert "registered headpose-facegen version" in printed and "tracking problem" not in printed, printed[-3000:]

    client = MlflowClient(uri)
    versions = {str(v.version): v.tags for v in client.search_model_versions("name = 'headpose-facegen'")}
    model = client.get_registered_model("headpose-facegen")
    aliases = {alias: str(version) for alias, version in model.aliases.items()}
    quick = [v for v, tags in versions.items() if tags["search_id"] == "quickstart"]
    assert aliases["champion"] == quick[0] and len(quick) == 1  # the pareto search never moved it
    rule = parse_rule("min val_mae where latency_ms <= 5")
    front = {v: tags for v, tags in versions.items() if tags["search_id"] == "pareto-backbones"}
    assert len(front) >= 1 and all(tags["champion_rule"] == rule.text for tags in front.values())
    qualified = [v for v, tags in front.items() if rule.qualifies(tags)]
    expected = min(qualified, key=lambda v: (float(front[v]["val.mae"]), int(v))) if qualified else None
    assert aliases.get(alias_of(rule)) == expected  # the rule's pick from the recorded values (or none)
    assert set(aliases) <= {"champion", alias_of(rule)}
