"""Every registered dataset reader passes one conformance test through the real ``ldlpose prepare``.

Each reader brings a small fixture: the real samples in ``../shared/realdata`` for the readers the
other tests check against them (300W-LP, AFLW2000, raw BIWI), synthetic files otherwise. A reader
registered without a fixture fails :func:`test_every_reader_has_a_fixture`.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import example_reader
import numpy as np
import pytest
from datafixtures import bgr_npz, run_cli, two_colour_image

from ldlpose.cli import build_parser
from ldlpose.data import benchmarks, readers
from ldlpose.data.shards import read_labels, read_manifest, verify
from ldlpose.errors import ConfigError

REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"


def _real(folder: str):
    def arguments(tmp_path: Path) -> list:
        if not (REALDATA / folder).is_dir():
            pytest.skip(f"real dataset samples not found at {REALDATA / folder} (../shared/realdata)")
        return ["--source", REALDATA / folder]
    return arguments


def _npz(tmp_path: Path) -> list:
    bgr_npz(tmp_path / "AFLW2000.npz", [two_colour_image(64, 64)] * 3, [[40, -20, 10], [-5, 7, -3], [0, 0, 0]])
    return ["--source", tmp_path / "AFLW2000.npz"]


def _csv(tmp_path: Path) -> list:
    source = tmp_path / "faces"
    source.mkdir()
    lines = ["file,yaw,pitch,roll,subject"]
    for i, angles in enumerate(((10.0, -5.0, 2.0), (-30.0, 12.5, 0.0), (0.0, 0.0, -45.0))):
        two_colour_image(48, 40).save(source / f"face{i}.png")
        lines.append(f"face{i}.png,{angles[0]},{angles[1]},{angles[2]},person{i % 2}")
    lines.append("missing.png,0,0,0,person9")
    (source / "labels.csv").write_text("\n".join(lines) + "\n")
    return ["--source", source]


FIXTURES = {
    "300w-lp": _real("300w-lp"),
    "aflw2000": _real("aflw2000"),
    "biwi": _real("biwi/hpdb"),
    "fsanet-npz": _npz,
    "synthhead": lambda tmp_path: ["--train", 4, "--val", 2, "--test", 2, "--size", 16],
    "facegen": lambda tmp_path: ["--train", 4, "--val", 2, "--test", 2, "--size", 16],
}


def check_reader(name: str, arguments: list, tmp_path: Path) -> dict[str, dict]:
    """Prepare with ``ldlpose prepare NAME`` into the reader's default folder (else its first standard
    folder) and check what every reader owes: the one signature, complete manifests, the hints."""
    reader = readers.get(name)
    _check_signature(reader)
    root = tmp_path / "data"
    folder = reader.default_folder(vars(build_parser().parse_args(["prepare", name, *map(str, arguments)])))
    out = [] if folder else ["--out", root / next(iter(reader.folders))]
    assert run_cli(name, *arguments, *out, "--data-root", root, "--workers", 1) == 0
    made = list(root.iterdir())
    assert [p.name for p in made] == [folder or next(iter(reader.folders))]
    assert made[0].name in reader.folders  # the default is one of the reader's standard folders
    manifests = {("" if p.parent == made[0] else p.parent.relative_to(made[0]).as_posix()): read_manifest(p.parent)
                 for p in sorted(made[0].rglob("_manifest.json"))}  # by target, as prepare returns them
    assert manifests, f"{name} wrote no manifest under {made[0]}"
    for target, manifest in manifests.items():
        _check_manifest(name, reader, made[0] / target, manifest)
    _check_benchmarks(made[0].name, root)
    _check_hints(reader)
    return manifests


def _check_signature(reader: readers.Reader) -> None:
    parameters = list(inspect.signature(reader.prepare_function()).parameters.values())
    assert [p.name for p in parameters[:2]] == ["out_dir", "settings"]
    keywords = {p.name for p in parameters[2:] if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == {a.dest for a in reader.arguments}, (reader.name, keywords)


def _check_manifest(name: str, reader: readers.Reader, folder: Path, manifest: dict) -> None:
    assert manifest["rows"] > 0 and verify(folder) == manifest["content_hash"]
    assert manifest["command"].startswith(f"ldlpose prepare {name} ")
    assert manifest["crop"]["name"] and manifest["subject_rule"]
    assert manifest["image"]["format"] == ("png" if reader.test_set else "jpeg")
    angles = read_labels(folder)["angles_deg"]
    assert angles.shape == (manifest["rows"], 3) and np.isfinite(angles).all()


def _check_benchmarks(folder: str, root: Path) -> None:
    """Every benchmark that reads this folder accepts what the reader wrote (its crop recipe)."""
    for bench in map(benchmarks.get, benchmarks.available()):
        if bench.folder.split("/")[0] == folder:
            assert bench.resolve(root).is_dir()


def _check_hints(reader: readers.Reader) -> None:
    """Each standard folder's hint is a command the CLI parses (placeholders stand for a path)."""
    for folder in reader.folders:
        hint = readers.prepare_command(folder, Path("/data") / folder)
        assert hint.startswith(f"ldlpose prepare {reader.name}")
        words = re.sub(r"<[^>]*>", "/some/path", hint).split()[1:]
        args = build_parser().parse_args(words)
        assert args.dataset == reader.name
        assert reader.folder is None or reader.default_folder(vars(args)) in reader.folders


def test_every_reader_has_a_fixture():
    assert set(readers.available()) == set(FIXTURES)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_reader_conformance(name, tmp_path):
    check_reader(name, FIXTURES[name](tmp_path), tmp_path)


def test_every_benchmark_folder_has_a_reader_that_makes_it():
    for bench in map(benchmarks.get, benchmarks.available()):
        for folder in filter(None, (bench.folder, bench.train_folder, bench.val_folder)):
            assert readers.prepare_command(folder.split("/")[0], "/d").startswith("ldlpose prepare ")


def test_a_reader_is_one_module_plus_one_registration_line(tmp_path, capsys):
    readers.register(readers.Reader(example_reader.NAME, "face crops with labels.csv", example_reader.prepare,
                                    example_reader.ARGUMENTS, folder="example-csv",
                                    folders={"example-csv": "--source <folder with labels.csv>"}))
    try:
        manifests = check_reader(example_reader.NAME, _csv(tmp_path), tmp_path)
        assert manifests[""]["rows"] == 3 and manifests[""]["errors"]["count"] == 1  # missing.png reported
        labels = read_labels(tmp_path / "data" / "example-csv")
        np.testing.assert_allclose(labels["angles_deg"][2], (0.0, 0.0, -45.0))
        with pytest.raises(SystemExit):
            build_parser().parse_args(["prepare", "--help"])
        assert "face crops with labels.csv" in capsys.readouterr().out
        assert readers.prepare_command("example-csv", "/d") == \
            "ldlpose prepare example-csv --source <folder with labels.csv> --out /d"
    finally:
        readers.unregister(example_reader.NAME)


def test_a_name_or_folder_registered_twice_is_refused():
    with pytest.raises(ConfigError, match="'synthhead' is registered twice"):
        readers.register(readers.Reader("synthhead", "again", example_reader.prepare))
    with pytest.raises(ConfigError, match="folder 'aflw2000' is made by 'aflw2000' already"):
        readers.register(readers.Reader("other", "x", example_reader.prepare, folders={"aflw2000": ""}))
    with pytest.raises(ConfigError, match="unknown dataset reader 'synthead' \\(did you mean 'synthhead'\\?\\)"):
        readers.get("synthead")
