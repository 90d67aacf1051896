"""A photo too large for Pillow to decode safely (a decompression bomb) is one error naming the file;
the other photos are still predicted (it aborted them all with a traceback once)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from PIL import Image
from tinymodels import tiny_checkpoint

from ldlpose.cli import main


def blank_png(path: Path, width: int, height: int) -> Path:
    """A real, valid 1-bit PNG of ``width`` x ``height`` black pixels; blank rows compress to
    almost nothing, so 14000 x 14000 (more than Pillow's 2 x 89.5 Mpx limit) is about 24 kB."""
    row = b"\0" + bytes((width + 7) // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def test_a_huge_photo_is_reported_and_the_others_are_predicted(tmp_path, capsys):
    huge = blank_png(tmp_path / "huge.png", 14000, 14000)
    width, height = struct.unpack(">II", huge.read_bytes()[16:24])  # IHDR: the size Pillow checks
    assert width * height > 2 * Image.MAX_IMAGE_PIXELS and huge.stat().st_size < 100_000
    small = tmp_path / "small.png"
    Image.new("RGB", (80, 80), (120, 100, 90)).save(small)
    model = tiny_checkpoint(tmp_path)
    capsys.readouterr()
    status = main(["predict", str(huge), str(small), "--model", str(model), "--no-detect", "--json"])
    out, err = capsys.readouterr()
    assert status == 1  # some picture could not be read
    records = {Path(r["image"]).name: r for r in json.loads(out)["predictions"]}
    assert "too large to decode safely" in records["huge.png"]["error"]
    assert len(records["small.png"]["faces"]) == 1
    assert f"cannot read image {huge}: too large to decode safely" in err
