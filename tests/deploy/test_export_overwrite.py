"""`ldlpose export` refuses to replace an existing model file or its description without --force
(it overwrote both silently once)."""

from __future__ import annotations

from tinymodels import tiny_checkpoint

from ldlpose.cli import main


def test_export_refuses_to_overwrite_without_force(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "model.onnx"
    out.with_suffix(".json").write_text('{"edited": "by hand"}\n')  # only the description exists
    assert main(["export", str(checkpoint), "--out", str(out)]) == 2
    assert f"{out.with_suffix('.json')} exists already; pass --force" in capsys.readouterr().err
    assert out.with_suffix(".json").read_text() == '{"edited": "by hand"}\n' and not out.exists()

    assert main(["export", str(checkpoint), "--out", str(out), "--force"]) == 0
    first = out.read_bytes()
    assert '"format": "ldlpose-onnx-preprocessing/1"' in out.with_suffix(".json").read_text()
    out.write_bytes(b"deployed")
    assert main(["export", str(checkpoint), "--out", str(out)]) == 2
    assert f"{out} and {out.with_suffix('.json')} exist already" in capsys.readouterr().err
    assert out.read_bytes() == b"deployed"
    assert main(["export", str(checkpoint), "--out", str(out), "--force"]) == 0
    assert out.read_bytes() == first  # same checkpoint, same export
