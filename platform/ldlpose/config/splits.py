"""Training, validation and test data kept apart, and the same validation rows for every trial.

A model is chosen on its validation rows and judged on a benchmark's test rows; both numbers mean
something only while the three sets are distinct, and a search's ranking only while every trial is
scored on the same validation rows. Three rules hold that:

* **Paths, at load** (:func:`check_split_paths`): ``data.val`` is neither ``data.train`` nor the test
  folder of any registered benchmark (a test set chooses nothing, whichever benchmark it belongs
  to), and ``data.train`` is not the test folder of any benchmark in ``data.benchmarks``. Training on
  another benchmark's test folder stays allowed: cross-dataset experiments do that on purpose. Two
  benchmarks may share a test folder (AFLW2000 under two input protocols): both are test sets.
* **Content, at start** (:func:`check_split_content`): the same rules by the prepared folders'
  manifest ``content_hash``, so a copy of a test set under another name is found too. It reads the
  manifests only; the images are never hashed again.
* **Searches** (:func:`unsearchable`): the keys that decide which validation rows a trial is scored
  on cannot vary between trials.

With ``data.val: null`` the validation rows are a subject-disjoint split of ``data.train`` drawn with
a fixed seed (:data:`ldlpose.data.splits.VAL_SPLIT_SEED`), never ``train.seed``: a confirmation seed
or a searched seed changes training only.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ldlpose.errors import ConfigError
from ldlpose.infra.locations import is_uri

__all__ = ["DataKeys", "check_split_content", "check_split_paths", "unsearchable"]


class DataKeys(Protocol):
    """The keys of a run config's ``data`` section that place its folders (``RunConfig.data``)."""

    @property
    def root(self) -> str: ...
    @property
    def train(self) -> str: ...
    @property
    def val(self) -> str | None: ...
    @property
    def benchmarks(self) -> Sequence[str]: ...


_SAME_ROWS = "every trial must be ranked on the same validation rows"
_NULL_SPLIT = "with data.val: null the validation rows are a subject-disjoint split of data.train"
_SET_ONCE = "set it once in the run config (or as {value: ...}) and search other keys"

# Run-config key -> (why a search may not vary it, the fix); ldlpose.search.space refuses it.
_ALWAYS = {
    "data.root": (f"it is where every folder lies, so trials would validate on other data; {_SAME_ROWS}", _SET_ONCE),
    "data.val": (f"it is the validation folder; {_SAME_ROWS}", _SET_ONCE),
    "data.val_fraction": (f"it sets how many training subjects are held out for validation; {_SAME_ROWS}",
                          _SET_ONCE),
    "data.max_eval_samples": ((f"it caps the validation rows, so trials would be scored on different subsets; "
                              f"{_SAME_ROWS}"), _SET_ONCE),
    "data.max_abs_angle_deg": ((f"it filters the validation rows too: a trial that drops the large angles would win on "
                               f"easier faces; {_SAME_ROWS}"), _SET_ONCE),
}
_WITH_NULL_VAL = {
    "data.train": (f"{_NULL_SPLIT}, so each training folder would be ranked on its own validation rows",
                   "give data.val a prepared folder to compare training sets"),
    "train.seed": (f"{_NULL_SPLIT}, and a seed must change training only; a searched seed ranks luck, not settings",
                   ("use search.confirm (top_k, seeds) to retrain the best configurations with new seeds, or give "
                   "data.val a prepared folder")),
}


def unsearchable(key: str, val: str | None) -> str | None:
    """Why a search may not vary run-config ``key`` (given the base's ``data.val``) and the fix, or None."""
    rules = {**_ALWAYS, **(_WITH_NULL_VAL if val is None else {})}
    for name, (why, fix) in rules.items():
        if key == name:
            return f"cannot be searched: {why}; {fix}"
        if name.startswith(key + "."):  # a whole section (data, train) replaced at once
            return f"cannot be searched: it holds {name}, and {why}; search keys inside it instead"
    return None


# --- paths, at load ---------------------------------------------------------------------------

def _place(root: str, folder: str) -> str:
    """Where ``folder`` lies, comparable between keys: absolute, normalised, links followed (a URI root
    is compared by its text)."""
    folder = os.path.expanduser(folder)
    if os.path.isabs(folder):
        return os.path.realpath(folder)
    if is_uri(root):
        return root.rstrip("/") + "/" + posixpath.normpath(folder)
    return os.path.realpath(os.path.join(os.path.expanduser(root), folder))


def _test_sets(d: DataKeys) -> list[tuple[str, str]]:
    """(benchmark name, how the error names it): the run's benchmarks first, then every other
    registered one (a test set whichever run lists it)."""
    from ldlpose.data import benchmarks

    listed = [(name, f" (data.benchmarks[{i}])") for i, name in enumerate(d.benchmarks)]
    others = [(name, " (a registered test set, though not in data.benchmarks)") for name in benchmarks.available()
              if name not in d.benchmarks]
    return listed + others


def _error(file: str | None, key: str, message: str) -> ConfigError:
    return ConfigError(f"{file + ': ' if file else ''}{key}: {message}")


def _val_is_train(d: DataKeys, what: str, file: str | None) -> ConfigError:
    return _error(file, "data.val", f"{what} the training folder (data.train: {d.train!r}): a model would be "
                                    "chosen on the faces it trained on; give a prepared folder of other subjects, "
                                    "or data.val: null to hold out data.val_fraction of the training subjects")


def _val_is_test(name: str, where: str, what: str, file: str | None) -> ConfigError:
    from ldlpose.data import benchmarks

    bench = benchmarks.get(name)
    use = f"its validation folder ({bench.val_folder!r})" if bench.val_folder else "a prepared folder of other subjects"
    return _error(file, "data.val", f"{what} the test folder of benchmark {name!r}{where}: models would be chosen on "
                                    f"test data while every tag says validation; use {use}, or data.val: null to "
                                    "hold out data.val_fraction of the training subjects")


def _train_is_test(name: str, where: str, what: str, file: str | None) -> ConfigError:
    from ldlpose.data import benchmarks

    bench = benchmarks.get(name)
    return _error(file, "data.train", f"{what} the test folder of benchmark {name!r}{where}: the model would be "
                                      f"tested on faces it trained on; train on {bench.train_folder!r} (the "
                                      f"benchmark's training data), or drop {name!r} from data.benchmarks")


def check_split_paths(d: DataKeys, file: str | None = None) -> None:
    """Training, validation and the test folders are distinct places (ConfigError naming the keys)."""
    from ldlpose.data import benchmarks

    train = _place(d.root, d.train)
    tests = [(name, where, _place(d.root, benchmarks.get(name).folder)) for name, where in _test_sets(d)]
    if d.val is not None:
        val = _place(d.root, d.val)
        if val == train:
            raise _val_is_train(d, f"{d.val!r} is", file)
        for name, where, folder in tests:
            if folder == val:
                raise _val_is_test(name, where, f"{d.val!r} is", file)
    for name, where, folder in tests[:len(d.benchmarks)]:
        if folder == train:
            raise _train_is_test(name, where, f"{d.train!r} is", file)


# --- content, at start ------------------------------------------------------------------------

def check_split_content(d: DataKeys, file: str | None = None) -> None:
    """The same rules by the prepared data's content hash (from each folder's manifest), before
    anything trains. A benchmark the run lists must be prepared; another registered one is compared
    where it is."""
    from ldlpose.data import benchmarks
    from ldlpose.data.shards import manifest_path, read_manifest

    root = benchmarks.data_root(d.root)  # a URI root: this node's copy, as the trials read it

    def local(folder: str) -> Path:
        path = Path(folder).expanduser()
        return path if path.is_absolute() else root / path

    def content(path: Path) -> str | None:
        return read_manifest(path).get("content_hash")

    train = content(local(d.train))
    tests = []
    for i, (name, where) in enumerate(_test_sets(d)):
        bench = benchmarks.get(name)
        folder = bench.resolve(d.root) if i < len(d.benchmarks) else root / bench.folder
        if i < len(d.benchmarks) or manifest_path(folder).is_file():
            tests.append((name, where, content(folder)))
    same = "holds the same prepared data (content hash {}) as"
    if d.val is not None:
        val = content(local(d.val))
        if val is not None and val == train:
            raise _val_is_train(d, f"{local(d.val)} {same.format(val)}", file)
        for name, where, test in tests:
            if val is not None and test == val:
                raise _val_is_test(name, where, f"{local(d.val)} {same.format(val)}", file)
    for name, where, test in tests[:len(d.benchmarks)]:
        if train is not None and test == train:
            raise _train_is_test(name, where, f"{local(d.train)} {same.format(train)}", file)
