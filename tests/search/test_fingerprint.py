"""A search's fingerprint: --resume with changed settings stops before anything trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ldlpose.config import apply_overrides, read_yaml
from ldlpose.errors import ConfigError
from ldlpose.search import fingerprint
from ldlpose.search.space import load_search_space

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "search_spaces" / "quickstart.yaml"
MANIFESTS = {"train": {"content_hash": "sha256:train"}, "val": {"content_hash": "sha256:val"},
             "synth": {"content_hash": "sha256:test"}}


def _written(path: Path, overrides=()) -> dict:
    return apply_overrides(read_yaml(path), list(overrides))


def _resume(tmp_path: Path, overrides=(), manifests=MANIFESTS) -> None:
    space = load_search_space(QUICKSTART, list(overrides))
    fingerprint.check_resume(space, str(tmp_path), manifests, str(QUICKSTART), _written(QUICKSTART, overrides))


@pytest.fixture
def started(tmp_path):
    fingerprint.record(load_search_space(QUICKSTART), str(tmp_path), MANIFESTS, _written(QUICKSTART))
    return tmp_path


def test_the_same_search_resumes(started):
    _resume(started)


@pytest.mark.parametrize("free", ["search.budget.trials=40", "search.budget.concurrency=1", "resources.workers=2",
                                  "data.loader_workers=3", "data.root=/elsewhere"])
def test_budget_resources_and_loader_workers_are_free_to_change(started, free):
    _resume(started, [free])


@pytest.mark.parametrize(("change", "named"), [
    ("train.epochs=99", "train.epochs: 7 -> 99"),
    ("model.backbone=resnet50", 'model.backbone: "shufflenet_v2_x0_5" -> "resnet50"'),
    ("search.sampler.seed=7", "search.sampler.seed: 0 -> 7"),
    ("search.champion.rule=benchmark", 'search.champion.rule: "validation" -> "benchmark"'),
    ("data.image_size=96", "data.image_size:"),
])
def test_a_changed_setting_is_refused_naming_it_and_the_two_ways_on(started, change, named):
    with pytest.raises(ConfigError) as refused:
        _resume(started, [change])
    text = str(refused.value)
    assert named in text if change != "data.image_size=96" else "data.image_size" in text
    assert f"ldlpose search {started}/quickstart/search.yaml --resume --storage {started}" in text
    assert f"ldlpose search {QUICKSTART} --set search.name=quickstart-2 --storage {started}" in text
    assert "nothing was changed" in text


def test_data_is_fingerprinted_by_content_not_by_path(started):
    _resume(started, ["data.train=elsewhere/train"])  # the same prepared data under another path
    other = {**MANIFESTS, "train": {"content_hash": "sha256:prepared-again"}}
    with pytest.raises(ConfigError, match=r'data.content.train: "sha256:train" -> "sha256:prepared-again"'):
        _resume(started, manifests=other)


def test_a_search_from_before_fingerprints_gets_one_on_resume(tmp_path):
    _resume(tmp_path)  # nothing stored: this attempt's settings are recorded
    with pytest.raises(ConfigError, match=r"train\.epochs: 7 -> 3"):
        _resume(tmp_path, ["train.epochs=3"])


@pytest.mark.parametrize("space_file", sorted((REPO / "search_spaces").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_stored_space_loads_and_resumes_as_it_was_started(tmp_path, space_file):
    """The first of the two commands the refusal prints: the stored space is the same search."""
    space = load_search_space(space_file)
    fingerprint.record(space, str(tmp_path), MANIFESTS, _written(space_file))
    stored = tmp_path / space.name / fingerprint.SPACE_FILE
    again = load_search_space(stored)
    assert again.name == space.name
    fingerprint.check_resume(again, str(tmp_path), MANIFESTS, str(stored), _written(stored))
    assert yaml.safe_load(stored.read_text())["search"]["name"] == space.name
