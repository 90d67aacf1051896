"""Recorded learning curves for the replay benchmark (bench/replay.py): the table's format, checked on load.

A table is one JSON file (``bench/results/replay-*.json``)::

    {
      "schema": "ldlpose-replay-table/1",
      "metadata": {
        "commit": "98e05ab",                  # the ldlpose commit that trained the rows
        "machine": "2-core VM, shared",        # where, and how loaded
        "command": "python bench/record_table.py ...",
        "created": "2026-12-07T07:30:00Z",
        "metric": "val_mae",                   # what every row's "val_mae" holds (the search's objective)
        "test": "synth_mae",                   # what every row's "test_mae" holds
        "base": {...},                         # the run config every row shares (data root left out)
        "parameters": {...}                    # search.parameters: the recorded values, as lists
      },
      "rows": [
        {"config": {"method": "gldl", "method.hparams.sigma": 1.0, "train.optimizer.lr": 0.001},
         "seed": 0,                            # the training seed
         "val_mae": [21.4, 20.4, ...],         # per epoch, degrees, one per epoch of base.train.epochs
         "test_mae": [21.5, 20.4, ...],        # per epoch, on the test split (never used to choose)
         "epoch_s": [1.7, 1.1, ...],           # per epoch: training plus evaluation seconds
         "real_mae": [25.0, 19.1, ...]}        # optional, per epoch: metadata["real"] (real faces, measured only)
      ]
    }

``base`` plus ``parameters`` is an ldlpose search space (docs/search-spaces.md) whose every value is
a list: the search space restricted to what was recorded. A row's ``config`` names its values by
run-config key (a method's own hyperparameter as ``method.hparams.<name>``). Every point of that
space's grid has at least one row (a configuration recorded with several seeds has one row per
seed), and no row lies outside it, so any suggestion a searcher makes can be answered. A file that
breaks any rule is refused with :class:`TableError`, naming the file, the record and the fix.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "ldlpose-replay-table/1"
METADATA_KEYS = ("commit", "machine", "command", "created", "metric", "test", "base", "parameters")
ROW_KEYS = ("config", "seed", "val_mae", "test_mae", "epoch_s")
CURVES = ("val_mae", "test_mae", "epoch_s")
OPTIONAL_CURVES = ("real_mae",)  # present in every row or in none; metadata["real"] says what it holds


class TableError(ValueError):
    """A replay table that breaks its schema: the message names the file, the record and the fix."""


@dataclass(frozen=True)
class Row:
    config: dict[str, Any]
    seed: int
    val_mae: tuple[float, ...]
    test_mae: tuple[float, ...]
    epoch_s: tuple[float, ...]
    real_mae: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Table:
    path: str
    metadata: dict[str, Any]
    rows: tuple[Row, ...]

    @property
    def epochs(self) -> int:
        return int(self.metadata["base"]["train"]["epochs"])

    @property
    def best_val(self) -> float:
        """The best validation MAE any recorded configuration reaches at any epoch."""
        return min(min(r.val_mae) for r in self.rows)

    def configs(self) -> list[tuple]:
        """Every recorded configuration once (its key), in the order first recorded."""
        return list(dict.fromkeys(config_key(r.config) for r in self.rows))

    def rows_of(self, config: dict) -> list[Row]:
        """The rows (one per training seed) of the configuration a searcher suggested."""
        key = config_key(run_keys(config))
        found = [r for r in self.rows if config_key(r.config) == key]
        if not found:
            raise TableError(f"{self.path}: no row for the suggested configuration {run_keys(config)}; "
                             "the replay's space must be the table's (replay.replay_space)")
        return found


def run_keys(assignment: dict) -> dict:
    """A searcher's assignment by run-config key: ``method.gldl.alpha`` (a method-qualified Optuna
    name, ldlpose.search.optuna_space.names) becomes ``method.hparams.alpha``; ``grid_point`` goes."""
    out = {}
    for name, value in assignment.items():
        if name == "grid_point":
            continue
        parts = name.split(".")
        qualified = len(parts) == 3 and parts[0] == "method" and parts[1] != "hparams"
        out[f"method.hparams.{parts[2]}" if qualified else name] = value
    return out


def config_key(config: dict) -> tuple:
    """A hashable key of a configuration; floats to 12 significant digits (JSON round trips)."""
    return tuple(sorted((k, float(f"{v:.12g}") if isinstance(v, float) else v) for k, v in config.items()))


def load(path: str | Path) -> Table:
    """Read and check a replay table; :class:`TableError` names the file, the record and the fix."""
    path = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise TableError(f"{path}: cannot read a replay table: {err}") from None
    return parse(data, path)


def parse(data: Any, path: str = "<table>") -> Table:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise TableError(f"{path}: schema: must be {SCHEMA!r}, found {found!r}; record it with bench/record_table.py")
    metadata = _metadata(data.get("metadata"), path)
    raw_rows = data.get("rows")
    if not isinstance(raw_rows, list) or not raw_rows:
        raise TableError(f"{path}: rows: must be a non-empty list of recorded runs")
    epochs = int(metadata["base"]["train"]["epochs"])
    rows = tuple(_row(raw, f"{path}: rows[{i}]", epochs) for i, raw in enumerate(raw_rows))
    with_real = [r.real_mae is not None for r in rows]
    if any(with_real) and not all(with_real):
        i = with_real.index(False)
        raise TableError(f"{path}: rows[{i}]: missing real_mae, which other rows hold; record every row "
                         "with the same --real folder or none")
    if any(with_real) and "real" not in metadata:
        raise TableError(f"{path}: metadata.real: missing; rows hold real_mae, so the metadata names what it measures")
    table = Table(path, metadata, rows)
    from ldlpose.errors import LdlposeError

    try:
        _check_coverage(table)
    except LdlposeError as err:  # the loader names search.*: here that is metadata.base / metadata.parameters
        raise TableError(f"{err} (metadata.base with metadata.parameters as search.parameters)") from None
    return table


def _metadata(raw: Any, path: str) -> dict:
    if not isinstance(raw, dict):
        raise TableError(f"{path}: metadata: must be a mapping with {', '.join(METADATA_KEYS)}")
    missing = [k for k in METADATA_KEYS if k not in raw]
    if missing:
        raise TableError(f"{path}: metadata: missing {', '.join(missing)}; every table records "
                         "its commit, machine and command")
    epochs = raw["base"].get("train", {}).get("epochs") if isinstance(raw["base"], dict) else None
    if not isinstance(epochs, int) or epochs < 1:
        raise TableError(f"{path}: metadata.base.train.epochs: must be the recorded epochs (>= 1), found {epochs!r}")
    if not isinstance(raw["parameters"], dict) or not raw["parameters"]:
        raise TableError(f"{path}: metadata.parameters: must map each searched key to its recorded values")
    return raw


def _row(raw: Any, where: str, epochs: int) -> Row:
    if not isinstance(raw, dict):
        raise TableError(f"{where}: must be a mapping with {', '.join(ROW_KEYS)}")
    missing = [k for k in ROW_KEYS if k not in raw]
    unknown = sorted(set(raw) - set(ROW_KEYS) - set(OPTIONAL_CURVES))
    if missing or unknown:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
                   ([f"unknown {', '.join(unknown)}"] if unknown else [])
        raise TableError(f"{where}: {'; '.join(problems)} (a row holds {', '.join(ROW_KEYS)})")
    if not isinstance(raw["config"], dict) or not raw["config"]:
        raise TableError(f"{where}.config: must map run-config keys to the recorded values")
    curves = {name: _curve(raw[name], f"{where}.{name}", epochs) for name in CURVES + OPTIONAL_CURVES
              if name in raw}
    return Row(config=dict(raw["config"]), seed=int(raw["seed"]), **curves)


def _curve(raw: Any, where: str, epochs: int) -> tuple[float, ...]:
    if not isinstance(raw, list) or len(raw) != epochs:
        count = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise TableError(f"{where}: must hold one number per epoch ({epochs}, metadata.base.train.epochs), "
                         f"found {count}; record the run to its last epoch")
    bad = [i for i, v in enumerate(raw) if not isinstance(v, int | float) or not math.isfinite(v) or v < 0]
    if bad:
        raise TableError(f"{where}[{bad[0]}]: must be a finite number >= 0, found {raw[bad[0]]!r}")
    return tuple(float(v) for v in raw)


def space(table: Table, search: dict | None = None):
    """The table's search space (ldlpose's loader: the production validation), with ``search``
    settings (sampler, scheduler, budget, start_from) beside the recorded parameters."""
    from ldlpose.search.space import search_space_from_dict

    section = {**(search or {}), "parameters": table.metadata["parameters"]}
    return search_space_from_dict({**table.metadata["base"], "search": section}, file=table.path,
                                  default_name="replay")


def grid_configs(table: Table) -> list[dict]:
    """Every point of the table's space, by run-config key, as a grid search expands it."""
    return [run_keys(point) for point in space(table, {"sampler": {"name": "grid"}}).grid()]


def _check_coverage(table: Table) -> None:
    """Every grid point of the recorded space has a row, and every row is a grid point."""
    grid = {config_key(c) for c in grid_configs(table)}
    for i, row in enumerate(table.rows):
        if config_key(row.config) not in grid:
            raise TableError(f"{table.path}: rows[{i}].config: {row.config} is not a point of "
                             "metadata.parameters; add its values there or drop the row")
    recorded = {config_key(r.config) for r in table.rows}
    missing = [dict(k) for k in sorted(grid - recorded, key=str)]
    if missing:
        raise TableError(f"{table.path}: rows: {len(missing)} point(s) of metadata.parameters have no row, "
                         f"e.g. {missing[0]}; record them or remove their values")
