"""Splits cannot overlap, and every trial of a search is ranked on the same validation rows
(ldlpose.config.splits): the path rules at load, the content-hash rules at start, the keys a search
may not vary, and the validation split that no seed moves."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from ldlpose.config import load_run_config, run_config_from_dict
from ldlpose.config.splits import check_split_content
from ldlpose.errors import ConfigError
from ldlpose.search.space import load_search_space

ROOT = "/data/heads"  # paths are compared by text at load: the folders need not exist

VAL_IS_TEST = ("run.yaml: data.val: 'synthhead/test' is the test folder of benchmark 'synth' (data.benchmarks[0]): "
               "models would be chosen on test data while every tag says validation; use its validation folder "
               "('synthhead/val'), or data.val: null to hold out data.val_fraction of the training subjects")


def load(tmp_path: Path, data: dict, name: str = "run.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"data": {"root": ROOT, **data}}))
    try:
        return load_run_config(path)
    except ConfigError as err:  # the message without the temporary folder
        raise ConfigError(str(err).replace(f"{tmp_path}/", "")) from None


# --- paths, at load -----------------------------------------------------------------------------

def test_a_test_folder_as_validation_is_refused_naming_the_keys(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, {"val": "synthhead/test", "benchmarks": ["synth"]})
    assert str(err.value) == VAL_IS_TEST


def test_any_registered_test_set_is_refused_as_validation_even_when_not_benchmarked(tmp_path):
    with pytest.raises(ConfigError, match=r"^run.yaml: data.val: 'aflw2000' is the test folder of benchmark "
                                          r"'aflw2000' \(a registered test set, though not in data.benchmarks\)"):
        load(tmp_path, {"val": "aflw2000", "benchmarks": ["synth"]})
    # the same folder written another way (absolute, with ./ and ..) is the same place
    with pytest.raises(ConfigError, match=r"data.val: '/data/heads/./synthhead/../synthhead/test' is the test folder"):
        load(tmp_path, {"val": "/data/heads/./synthhead/../synthhead/test", "benchmarks": ["synth"]})


def test_validation_cannot_be_the_training_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"^run.yaml: data.val: 'synthhead/train' is the training folder "
                                          r"\(data.train: 'synthhead/train'\): a model would be chosen on the faces "
                                          r"it trained on"):
        load(tmp_path, {"val": "synthhead/train"})


def test_training_cannot_be_a_benchmarked_test_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"^run.yaml: data.train: 'synthhead/test' is the test folder of benchmark "
                                          r"'synth' \(data.benchmarks\[0\]\): the model would be tested on faces it "
                                          r"trained on; train on 'synthhead/train'"):
        load(tmp_path, {"train": "synthhead/test", "val": "synthhead/val", "benchmarks": ["synth"]})


def test_what_the_rules_allow(tmp_path):
    # two benchmarks sharing a test folder (AFLW2000 under two input protocols) are both test sets
    assert load(tmp_path, {"train": "300w-lp", "val": None, "benchmarks": ["aflw2000", "aflw2000-6drepnet"]})
    # training on another benchmark's test set is a cross-dataset experiment, not a leak
    assert load(tmp_path, {"train": "biwi-raw", "val": None, "benchmarks": ["aflw2000"]})
    # stored run configs (checkpoints, trials) are rebuilt without the check: old checkpoints still load
    stored = {"data": {"root": ROOT, "val": "synthhead/test", "benchmarks": ["synth"]}}
    assert run_config_from_dict(stored).data.val == "synthhead/test"


# --- search spaces ------------------------------------------------------------------------------

def write_space(tmp_path: Path, data: dict, parameters: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"data": {"root": ROOT, "benchmarks": ["synth"], **data},
                                    "search": {"parameters": parameters}}))
    return path


def space_error(tmp_path: Path, data: dict, parameters: dict) -> str:
    with pytest.raises(ConfigError) as err:
        load_search_space(write_space(tmp_path, data, parameters))
    return str(err.value).replace(f"{tmp_path}/", "")


def test_a_search_space_checks_its_base_and_every_searched_training_folder(tmp_path):
    assert space_error(tmp_path, {"val": "synthhead/test"}, {}) == VAL_IS_TEST.replace("run.yaml", "space.yaml")
    searched = {"data.train": {"values": ["synthhead/train", "synthhead/test"]}}
    assert space_error(tmp_path, {}, searched).startswith(
        "space.yaml: search.parameters.data.train: value 'synthhead/test' is invalid: data.train: 'synthhead/test' "
        "is the test folder of benchmark 'synth' (data.benchmarks[0])")


SAME_ROWS = "every trial must be ranked on the same validation rows"
SET_ONCE = "set it once in the run config (or as {value: ...}) and search other keys"
REFUSED = [
    # (base data section, searched key, its distribution, the reason in the error)
    ({}, "data.val", {"values": ["synthhead/val", "other/val"]}, f"it is the validation folder; {SAME_ROWS}"),
    ({"val": None}, "data.val_fraction", {"min": 0.05, "max": 0.2},
     f"it sets how many training subjects are held out for validation; {SAME_ROWS}"),
    ({}, "data.max_eval_samples", {"values": [100, 200]},
     f"it caps the validation rows, so trials would be scored on different subsets; {SAME_ROWS}"),
    ({}, "data.max_abs_angle_deg", {"distribution": "uniform", "min": 60, "max": 99},
     f"it filters the validation rows too: a trial that drops the large angles would win on easier faces; {SAME_ROWS}"),
    ({}, "data.root", {"values": ["/a", "/b"]}, "it is where every folder lies"),
    ({"val": None}, "train.seed", {"min": 0, "max": 9},
     ("with data.val: null the validation rows are a subject-disjoint split of data.train, and a seed must change "
     "training only; a searched seed ranks luck, not settings; use search.confirm (top_k, seeds)")),
    ({"val": None}, "data.train", {"values": ["synthhead/train", "other/train"]},
     ("with data.val: null the validation rows are a subject-disjoint split of data.train, so each training folder "
     "would be ranked on its own validation rows; give data.val a prepared folder")),
]


@pytest.mark.parametrize(("data", "key", "spec", "why"), REFUSED, ids=[f"{r[1]}" for r in REFUSED])
def test_keys_that_decide_the_validation_rows_cannot_be_searched(tmp_path, data, key, spec, why):
    message = space_error(tmp_path, data, {key: spec})
    assert message.startswith(f"space.yaml: search.parameters.{key}: cannot be searched: {why}"), message
    if key.startswith("data.") and data == {}:
        assert message.endswith(SET_ONCE)


def test_what_a_search_may_still_vary(tmp_path):
    varied = {"data.max_eval_samples": {"value": 64},  # one value for every trial
              "data.image_size": {"values": [32, 64]},  # changes inputs, not which rows
              "train.seed": {"values": [0, 1]}}  # with a validation folder no seed moves the rows
    space = load_search_space(write_space(tmp_path, {"val": "synthhead/val"}, varied))
    assert {p.key for p in space.params} == set(varied)
    message = space_error(tmp_path, {}, {"data": {"values": [{"val": "a"}, {"val": "b"}]}})
    assert "search.parameters.data: cannot be searched: it holds data.root" in message


# --- content, at start --------------------------------------------------------------------------

@pytest.fixture
def data_copy(tmp_path, synth_root) -> Path:
    """The tiny synthhead in a root of its own, with a copy of its test folder under another name."""
    root = tmp_path / "data"
    shutil.copytree(synth_root / "synthhead", root / "synthhead")
    shutil.copytree(root / "synthhead" / "test", root / "renamed")
    return root


def run_on(root: Path, **data):
    return run_config_from_dict({"data": {"root": str(root), "benchmarks": ["synth"], **data}})


def test_a_copy_of_a_test_set_under_another_name_is_found_by_its_content_hash(data_copy):
    check_split_content(run_on(data_copy).data, "run.yaml")  # the shipped layout passes
    with pytest.raises(ConfigError) as err:
        check_split_content(run_on(data_copy, val="renamed").data, "run.yaml")
    text = str(err.value)
    assert text.startswith(f"run.yaml: data.val: {data_copy / 'renamed'} holds the same prepared data (content hash "
                           "sha256:"), text
    assert text.endswith("as the test folder of benchmark 'synth' (data.benchmarks[0]): models would be chosen on "
                         "test data while every tag says validation; use its validation folder ('synthhead/val'), "
                         "or data.val: null to hold out data.val_fraction of the training subjects"), text
    with pytest.raises(ConfigError, match=r"^run.yaml: data.train: .*renamed holds the same prepared data .* as the "
                                          r"test folder of benchmark 'synth' \(data.benchmarks\[0\]\)"):
        check_split_content(run_on(data_copy, train="renamed", val=None).data, "run.yaml")
    shutil.copytree(data_copy / "synthhead" / "train", data_copy / "train-copy")
    with pytest.raises(ConfigError, match=r"^run.yaml: data.val: .*train-copy holds the same prepared data .* as the "
                                          r"training folder \(data.train: 'synthhead/train'\)"):
        check_split_content(run_on(data_copy, val="train-copy").data, "run.yaml")



def test_a_search_checks_the_content_of_every_training_folder_it_searches(tmp_path, data_copy):
    from ldlpose.search.driver import check_splits

    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({
        "data": {"root": str(data_copy), "benchmarks": ["synth"]},
        "search": {"parameters": {"data.train": {"values": ["synthhead/train", "renamed"]}}}}))
    space = load_search_space(path)  # two different paths: the load-time rule cannot tell
    with pytest.raises(ConfigError, match=rf"^{path}: data.train: .*renamed holds the same prepared data .* as the "
                                          r"test folder of benchmark 'synth'"):
        check_splits(space)


# --- one validation split whatever the seed --------------------------------------------------------

def test_the_subject_split_ignores_train_seed_so_confirmation_seeds_keep_the_validation_rows(tmp_path, synth_root):
    from ldlpose import methods
    from ldlpose.data.identity import RunData
    from ldlpose.data.splits import split_by_subject
    from ldlpose.search import confirm
    from ldlpose.search.trials import TrialSummary
    from ldlpose.train.data import build_loaders

    folder = synth_root / "synthhead" / "train"
    # the premise: on this data two seeds draw different subject splits
    assert not np.array_equal(split_by_subject(folder, 0.2, 0)[1], split_by_subject(folder, 0.2, 5)[1])
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({
        "data": {"root": str(synth_root), "val": None, "val_fraction": 0.2, "benchmarks": ["synth"]},
        "train": {"seed": 4}, "search": {"confirm": {"top_k": 1, "seeds": 3},
                                         "parameters": {"train.optimizer.lr": {"values": [0.1, 0.01]}}}}))
    space = load_search_space(path)
    trial = TrialSummary("a", "TERMINATED", {"train.optimizer.lr": 0.01}, {}, None, "")
    runs = [space.run_config(trial.assignment)] + [space.run_config(p["assignment"])
                                                  for p in confirm.points(space, [trial])]
    assert sorted({r.train.seed for r in runs}) == [4, 5, 6, 7]
    assert len({RunData.of(r.data).validation_split()["content_hash"] for r in runs}) == 1
    rows = [build_loaders(r, methods.create("gldl")).evaluation["val"].dataset.rows.tolist() for r in runs[:2]]
    assert rows[0] == rows[1] == split_by_subject(folder, 0.2, 0)[1].tolist()

