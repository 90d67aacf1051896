"""The benchmark registry: names, folders, filters and the errors users see."""

import numpy as np
import pytest
from PIL import Image
from datafixtures import make_dataset  # noqa: F401 (fixture)

from ldlpose.data import benchmarks
from ldlpose.data.pipeline import benchmark_dataset
from ldlpose.errors import ConfigError, DataError


def test_registry_lists_and_finds_benchmarks():
    assert benchmarks.available() == ["aflw2000", "biwi", "biwi-p2", "synth"]
    assert benchmarks.get("aflw2000").max_abs_angle_deg == 99.0
    assert benchmarks.get("biwi").max_abs_angle_deg == 99.0
    assert benchmarks.get("biwi-p2").max_abs_angle_deg is None
    with pytest.raises(ConfigError, match=r"unknown benchmark 'aflw200' \(did you mean 'aflw2000'\?\)"):
        benchmarks.get("aflw200")
    with pytest.raises(ConfigError, match="registered twice"):
        benchmarks.register(benchmarks.get("synth"))


def test_folders_under_the_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("LDLPOSE_DATA", raising=False)
    assert benchmarks.get("synth").path() == benchmarks.Path("ldlpose-data/synthhead/test")
    monkeypatch.setenv("LDLPOSE_DATA", str(tmp_path))
    assert benchmarks.get("biwi").path() == tmp_path / "biwi-p1"
    assert benchmarks.get("biwi-p2").path("/x") == benchmarks.Path("/x/biwi-p2/test")


def test_missing_data_names_the_folder_and_the_command(tmp_path):
    with pytest.raises(DataError) as err:
        benchmarks.get("aflw2000").resolve(tmp_path)
    assert str(tmp_path / "aflw2000") in str(err.value)
    assert f"ldlpose prepare aflw2000 --source <AFLW2000 folder> --out {tmp_path / 'aflw2000'}" in str(err.value)
    with pytest.raises(DataError, match="ldlpose prepare 300w-lp"):
        benchmarks.get("biwi").resolve_train(tmp_path)
    with pytest.raises(DataError, match=f"ldlpose prepare synthhead --out {tmp_path / 'synthhead'}"):
        benchmarks.get("synth").resolve(tmp_path)


def test_filter_keeps_abs_angle_up_to_99_inclusive(make_dataset, tmp_path, monkeypatch):
    angles = [(0, 0, 0), (99.0, -99.0, 99.0), (99.5, 0, 0), (0, -120, 0), (0, 0, 100)]
    folder = make_dataset([(Image.new("RGB", (8, 8)), a, str(i)) for i, a in enumerate(angles)], name="aflw2000")
    bench = benchmarks.get("aflw2000")
    assert bench.keep(np.array(angles)).tolist() == [True, True, False, False, False]
    monkeypatch.setenv("LDLPOSE_DATA", str(tmp_path))
    assert bench.resolve() == folder
    assert bench.row_indices().tolist() == [0, 1]
    ds = benchmark_dataset("aflw2000", image_size=16)
    assert len(ds) == 2 and ds.transform.augment is None
    assert benchmarks.get("synth").keep(np.array(angles)).all()
