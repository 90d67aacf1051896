"""facegen is versioned: a folder made by another version of the generator is refused (with the command
that makes it again) by training and by the benchmark, never silently mixed; its manifest records the
version and every ingredient; the quickstart trains on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ldlpose.config import load_run_config
from ldlpose.data import benchmarks, facegen
from ldlpose.data.ensure import ensure_training_data
from ldlpose.data.shards import manifest_path, read_manifest
from ldlpose.errors import DataError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def facegen_root(tmp_path_factory):
    from ldlpose.cli import main

    root = tmp_path_factory.mktemp("facegen-data")
    assert main(["prepare", "facegen", "--out", str(root / "facegen"), "--train", "16", "--val", "8", "--test", "8",
                 "--size", "32", "--workers", "1"]) == 0
    return root


def _age(folder: Path, protocol: str | None) -> dict:
    """Rewrite a folder's manifest as another generator version would have written it; the original."""
    path = manifest_path(folder)
    original = json.loads(path.read_text())
    aged = json.loads(path.read_text())
    if protocol is None:
        del aged["source"]["generator"]["protocol"]
    else:
        aged["source"]["generator"]["protocol"] = protocol
    path.write_text(json.dumps(aged))
    return original


def test_the_manifest_names_the_generator_version_and_its_ingredients(facegen_root):
    generator = read_manifest(facegen_root / "facegen" / "train")["source"]["generator"]
    assert generator["protocol"] == facegen.PROTOCOL == benchmarks.get("facegen").protocol.name
    assert generator["ingredients"] == facegen.Recipe().as_dict() and all(generator["ingredients"].values())


@pytest.mark.parametrize("old", ["facegen-v1", None])
def test_training_refuses_a_folder_of_another_generator_version(facegen_root, tmp_path, old):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"name": "t", "data": {"root": str(facegen_root), "train": "facegen/train",
                                                            "val": "facegen/val", "benchmarks": ["facegen"]}}))
    train = facegen_root / "facegen" / "train"
    original = _age(train, old)
    try:
        before = sorted(p.name for p in train.iterdir())
        with pytest.raises(DataError) as refused:
            ensure_training_data(load_run_config(config))
        message = str(refused.value)
        assert str(train) in message and (old or "unversioned") in message and facegen.PROTOCOL in message
        assert f"ldlpose prepare facegen --out {facegen_root / 'facegen'} --overwrite" in message
        assert sorted(p.name for p in train.iterdir()) == before  # nothing the user had is touched
    finally:
        manifest_path(train).write_text(json.dumps(original))
    ensure_training_data(load_run_config(config))  # the current version is accepted


def test_the_benchmark_refuses_a_test_folder_of_another_generator_version(facegen_root):
    test = facegen_root / "facegen" / "test"
    assert benchmarks.get("facegen").resolve(facegen_root) == test
    original = _age(test, "facegen-v1")
    try:
        with pytest.raises(DataError, match=r"made by facegen-v1.*ldlpose prepare facegen --out .* --overwrite"):
            benchmarks.get("facegen").resolve(facegen_root)
    finally:
        manifest_path(test).write_text(json.dumps(original))


def test_the_quickstart_and_predict_use_the_facegen_benchmark():
    import argparse

    from ldlpose.commands import predict

    space = yaml.safe_load((REPO / "search_spaces" / "quickstart.yaml").read_text())
    assert space["data"]["train"] == "facegen/train" and space["data"]["val"] == "facegen/val"
    assert space["data"]["benchmarks"] == ["facegen"]
    parser = argparse.ArgumentParser()
    predict.add_arguments(parser)
    assert parser.parse_args(["photo.jpg"]).model == "models:/headpose-facegen@champion"
