"""`ldlpose prepare synthhead` with the real generator: splits, determinism across workers."""

import io
import subprocess
import sys

import numpy as np
from PIL import Image

from ldlpose.cli import main
from ldlpose.data import synthhead
from ldlpose.data.shards import read_manifest, read_table


def test_synthhead_splits_match_the_generator_and_do_not_depend_on_workers(tmp_path):
    args = ["--train", "24", "--val", "8", "--test", "0", "--size", "32", "--format", "png"]
    assert main(["prepare", "synthhead", "--out", str(tmp_path / "a"), "--workers", "2", *args]) == 0
    assert main(["prepare", "synthhead", "--out", str(tmp_path / "b"), "--workers", "1", *args]) == 0
    assert not (tmp_path / "a" / "test").exists()  # --test 0 writes nothing
    for split in ("train", "val"):
        first, second = (read_manifest(tmp_path / run / split)["content_hash"] for run in ("a", "b"))
        assert first == second
    table = read_table(tmp_path / "a" / "train")
    assert table.num_rows == 24
    expected = list(synthhead.generate("train", 3, size=32, start=20))
    for sample, i in zip(expected, range(20, 23)):
        assert table.column("key")[i].as_py() == sample.key
        assert table.column("subject")[i].as_py() == sample.subject
        got = [table.column(c)[i].as_py() for c in ("yaw", "pitch", "roll")]
        np.testing.assert_allclose(got, sample.angles_deg)
        image = np.asarray(Image.open(io.BytesIO(table.column("image")[i].as_py())))
        np.testing.assert_array_equal(image, sample.image)  # PNG: exact RGB
    val_subjects = set(read_table(tmp_path / "a" / "val").column("subject").to_pylist())
    assert not val_subjects & set(table.column("subject").to_pylist())
    assert read_manifest(tmp_path / "a" / "val")["source"]["generator"]["size"] == 32


def test_prepare_command_module_imports_only_the_standard_library():
    code = ("import sys; import ldlpose.commands.prepare; "
            "print(sorted(m for m in ('numpy', 'torch', 'pyarrow', 'PIL', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
