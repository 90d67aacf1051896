"""One rule for where data and results live: explicit value, else the environment, else the default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ldlpose.infra.locations import DEFAULT_DATA_ROOT, DEFAULT_STORAGE, is_uri, resolve_data_root, resolve_storage


@pytest.mark.parametrize("resolve, env, default", [(resolve_data_root, "LDLPOSE_DATA", DEFAULT_DATA_ROOT),
                                                   (resolve_storage, "LDLPOSE_STORAGE", DEFAULT_STORAGE)])
def test_explicit_beats_environment_beats_default(resolve, env, default, monkeypatch, tmp_path):
    monkeypatch.delenv(env, raising=False)
    assert resolve() == resolve(None) == resolve("") == default
    monkeypatch.setenv(env, str(tmp_path / "from-env"))
    assert resolve() == str(tmp_path / "from-env")
    assert resolve(tmp_path / "given") == str(tmp_path / "given")  # a Path is accepted
    assert resolve("relative/stays") == "relative/stays"  # not made absolute: messages show what was written
    monkeypatch.setenv(env, "~/data")
    assert resolve() == str(Path.home() / "data")


@pytest.mark.parametrize("uri", ["s3://bucket/prefix", "gs://b/p/", "file:///abs/path", "s3://bucket/~user"])
def test_uris_come_back_exactly_as_given(uri, monkeypatch):
    assert is_uri(uri)
    assert resolve_data_root(uri) == uri and resolve_storage(uri) == uri
    monkeypatch.setenv("LDLPOSE_DATA", uri)
    assert resolve_data_root() == uri


def test_paths_are_not_uris():
    for path in ("ldlpose-data", "/shared/data", "C:/data", "C://data", "./s3:/x", Path("s3://x")):
        assert not is_uri(path)


def test_benchmarks_and_the_cli_use_the_same_rule(monkeypatch, tmp_path):
    from ldlpose.data import benchmarks

    monkeypatch.setenv("LDLPOSE_DATA", str(tmp_path))
    assert benchmarks.data_root() == tmp_path and benchmarks.get("synth").path() == tmp_path / "synthhead" / "test"
    monkeypatch.setenv("LDLPOSE_STORAGE", str(tmp_path / "results"))
    from ldlpose.cli import build_parser

    for command in (["train", "c.yaml"], ["search", "s.yaml"], ["submit", "s.yaml"]):
        assert build_parser().parse_args(command).storage == str(tmp_path / "results")


def test_the_module_imports_only_the_standard_library():
    code = ("import sys; import ldlpose.infra.locations; "
            "print(sorted(m for m in ('numpy', 'torch', 'pyarrow', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
