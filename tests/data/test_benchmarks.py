"""The benchmark registry: names, folders, filters and the errors users see."""

import numpy as np
import pytest
from datafixtures import make_dataset  # noqa: F401 (fixture)
from PIL import Image

from ldlpose.data import benchmarks
from ldlpose.data.pipeline import benchmark_dataset
from ldlpose.data.shards import read_manifest
from ldlpose.errors import ConfigError, DataError


def test_registry_lists_and_finds_benchmarks():
    assert benchmarks.available() == ["aflw2000", "aflw2000-6drepnet", "aflw2000-fsanet", "aflw2000-fsanet-npz",
                                      "aflw2000-rankpose", "biwi", "biwi-p2", "biwi-p2-fsanet", "biwi-raw", "facegen",
                                      "synth"]
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
    folder = make_dataset([(Image.new("RGB", (8, 8)), a, str(i)) for i, a in enumerate(angles)], name="aflw2000",
                          crop="hopenet-aflw2000-test")
    bench = benchmarks.get("aflw2000")
    assert bench.keep(np.array(angles)).tolist() == [True, True, False, False, False]
    monkeypatch.setenv("LDLPOSE_DATA", str(tmp_path))
    assert bench.resolve() == folder
    assert bench.row_indices().tolist() == [0, 1]
    ds = benchmark_dataset("aflw2000", image_size=16)
    assert len(ds) == 2 and ds.transform.augment is None
    assert benchmarks.get("synth").keep(np.array(angles)).all()


def test_every_benchmark_names_a_complete_protocol():
    for name in benchmarks.available():
        protocol = benchmarks.get(name).protocol
        described = protocol.as_dict()
        assert protocol.name in benchmarks.PROTOCOLS and protocol.crop and protocol.split and protocol.rows
        assert described["input"] in {"centre-square", "centre-square-0.875", "whole"}
        assert described["filter"] in ("every row", "rows with |yaw|, |pitch|, |roll| <= 99")
    assert {benchmarks.get(n).protocol.name for n in ("aflw2000", "aflw2000-6drepnet", "aflw2000-fsanet")} == {
        "hopenet-aflw2000", "6drepnet-aflw2000", "fsanet-aflw2000"}


def test_identity_is_the_protocol_and_the_manifest_hash(make_dataset):
    folder = make_dataset([(Image.new("RGB", (8, 8)), (0, 0, 0), "a")], name="aflw2000-fsanet", crop="fsanet-type1")
    identity = benchmarks.get("aflw2000-fsanet").identity(folder)
    assert identity == {"protocol": "fsanet-aflw2000", "content_hash": read_manifest(folder)["content_hash"]}
    assert identity["content_hash"].startswith("sha256:")


def test_a_folder_cropped_with_another_recipe_is_refused_with_both_names(make_dataset, tmp_path):
    make_dataset([(Image.new("RGB", (8, 8)), (0, 0, 0), "a")], name="aflw2000", crop="fsanet-type1")
    with pytest.raises(DataError) as err:
        benchmarks.get("aflw2000").resolve(tmp_path)
    message = str(err.value)
    assert "'hopenet-aflw2000-test'" in message and "'fsanet-type1'" in message
    assert "ldlpose prepare aflw2000 --source <AFLW2000 folder>" in message


def test_evaluation_input_follows_the_protocol(make_dataset, tmp_path):
    """A 40 x 20 crop: HopeNet's centred square, 6DRepNet's 7/8 of it, FSA-Net's whole crop squeezed."""
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :10] = 255  # a white band on the left quarter: outside the centred square
    rows = [(Image.fromarray(arr), (0, 0, 0), "a")]
    make_dataset(rows, name="aflw2000", crop="hopenet-aflw2000-test", image_format="png")
    make_dataset(rows, name="aflw2000-fsanet", crop="fsanet-type1", image_format="png")
    hopenet = benchmark_dataset("aflw2000", image_size=16, root=tmp_path)
    sixd = benchmark_dataset("aflw2000-6drepnet", image_size=16, root=tmp_path)
    fsanet = benchmark_dataset("aflw2000-fsanet", image_size=16, root=tmp_path)
    assert (hopenet.transform.view.name, sixd.transform.view.name, fsanet.transform.view.name) == (
        "centre-square", "centre-square-0.875", "whole")
    white = [float(ds[0]["image"][0, 8, :4].mean()) for ds in (hopenet, fsanet)]
    assert white[0] < 0 < white[1]  # the band is cut away by the square and kept by the whole crop
    assert sixd.transform.view.box(40, 20) == pytest.approx((11.25, 1.25, 28.75, 18.75))
