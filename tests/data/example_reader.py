"""An example dataset reader, as a user would add one: a folder of face crops plus ``labels.csv``.

``labels.csv`` has a header and the columns ``file, yaw, pitch, roll, subject`` (angles in degrees,
in ldlpose's convention already). Every image is stored whole. It is one module with the readers'
one prepare signature; ``tests/data/test_readers.py`` registers it with one line.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ldlpose.data import preparation, records
from ldlpose.data.readers import argument
from ldlpose.data.records import BadSample, Problem
from ldlpose.data.shards import ShardWriter

NAME = "example-csv"
ARGUMENTS = (argument("--source", type=Path, required=True, help="folder with labels.csv and the images it names"),)


def read_chunk(payload: tuple) -> list:
    """Worker entry point: the rows of some lines of labels.csv."""
    source, lines, options = payload
    out = []
    for file, yaw, pitch, roll, subject in lines:
        try:
            image = records.open_rgb(Path(source) / file)
            out.append(records.make_row(image, (float(yaw), float(pitch), float(roll)), subject=subject,
                                        source=NAME, key=file, box=(0, 0, image.width, image.height),
                                        options=options))
        except (BadSample, ValueError) as bad:
            out.append(Problem(file, getattr(bad, "kind", "angle"), str(bad)))
    return out


def prepare(out_dir: Path, settings, *, source: Path) -> dict[str, dict]:
    with open(Path(source) / "labels.csv", newline="") as handle:
        lines = list(csv.reader(handle))[1:]
    writer = ShardWriter(out_dir, dataset=NAME, image_format=settings.image.format,
                         shard_rows=settings.shard_rows, overwrite=settings.overwrite)
    task = preparation.Task("", (str(source), lines, settings.image), items=len(lines))
    preparation.run(read_chunk, [task], {"": writer}, workers=settings.workers)
    return {"": writer.close(source={"dataset": NAME, "path": str(source)},
                             crop={"name": "example-whole-image", "box": "the whole picture"},
                             image=settings.image.as_dict(), subject_rule="the csv's subject column",
                             command=settings.command)}
