"""``ldlpose submit`` refuses a search-space YAML that holds a password in a URI (issue 24, item 5): the
file travels to the cluster in the job's working_dir, so the password would too. The refusal comes
before anything reaches a cluster (the address here answers nothing), names the file and the key
(or line), never the password, and says where the job finds credentials instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ldlpose.cli import main

REPO = Path(__file__).resolve().parents[2]
SECRET = "Pa55-not-for-the-cluster"


def _working_dir(tmp_path: Path, root: str, comment: str = "") -> Path:
    space = yaml.safe_load((REPO / "search_spaces" / "quickstart.yaml").read_text())
    space["data"]["root"] = root
    (tmp_path / "space.yaml").write_text(comment + yaml.safe_dump(space))
    return tmp_path


@pytest.mark.parametrize(("root", "comment", "where", "shown"), [
    (f"s3://ldlpose-key:{SECRET}@bucket/data", "", "space.yaml: data.root: ", "s3://ldlpose-key:***@bucket/data"),
    ("data", f"# tracking: https://admin:{SECRET}@mlflow.example\n", "space.yaml:1: ",
     "https://admin:***@mlflow.example"),
], ids=["key", "comment"])
def test_a_space_file_with_a_password_is_not_submitted(tmp_path, capsys, root, comment, where, shown):
    working_dir = _working_dir(tmp_path, root, comment)
    code = main(["submit", "space.yaml", "--address", "http://127.0.0.1:9", "--working-dir", str(working_dir),
                 "--storage", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{working_dir / where}" in err and shown in err and "nothing was submitted" in err, err
    assert "AWS_ACCESS_KEY_ID" in err and "MLFLOW_TRACKING_PASSWORD" in err and "docs/cluster.md" in err
    assert SECRET not in err
    assert "no Ray job server answers" not in err  # refused before any connection was tried
