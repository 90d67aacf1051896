"""A search's fingerprint: the settings its trials were started under, checked when it resumes.

A resumed search continues its unfinished trials from checkpoints made under the stored settings
and ranks every trial against the others; a changed YAML would train the rest under other settings
and file models under validation rows they were never measured on. So the settings that decide
what a trial trains and how trials are compared are fingerprinted when a search starts, in
``<storage>/<search>/ldlpose-search.json`` (beside Tune's state, which it describes), and
``--resume`` with other settings stops before anything trains.

Fingerprinted: ``method``, ``model``, ``train``, ``data`` (its folders by the content hash of the
prepared data, not by path), and ``search.metric``, ``parameters``, ``sampler``, ``scheduler``,
``champion``, ``confirm``, ``start_from``. Free to change on resume (:data:`FREE`): the budget (to
extend a finished search), the resources, ``data.loader_workers``.

Neither file holds a password: they lie in shared storage that others read. The fingerprint shows
a URI's password as ``***`` (so a resume never compares passwords); ``search.yaml`` keeps each URI
without its credentials (``s3://bucket/...``), so that the search resumed as stored reads them from
the environment (``AWS_*``, ``PGPASSWORD``; docs/cluster.md), as a job on the cluster does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import yaml

from ldlpose.errors import ConfigError
from ldlpose.infra import storage as stores
from ldlpose.infra.locations import redact, without_credentials
from ldlpose.search.space import SearchSpace

__all__ = ["FILE", "FREE", "check_resume", "record", "settings"]

FILE = "ldlpose-search.json"
SPACE_FILE = "search.yaml"  # the space as it was started: what "resume as stored" runs
FREE = ("search.budget", "resources", "data.loader_workers", "data.root")
_BASE_KEYS = ("method", "model", "train", "data")
_SEARCH_KEYS = ("metric", "parameters", "sampler", "scheduler", "champion", "confirm", "start_from")
_FOLDERS = ("train", "val")  # data keys that name folders: fingerprinted by content, not by path


def settings(space: SearchSpace, manifests: Mapping[str, Mapping]) -> dict[str, Any]:
    """The fingerprinted settings as flat ``dotted.key -> value``; data folders by content hash."""
    from ldlpose.config.schema import to_dict

    base = {key: space.base.get(key) for key in _BASE_KEYS}
    data = dict(base.get("data") or {})
    for key in ("root", "loader_workers", *_FOLDERS):
        data.pop(key, None)
    for name, manifest in sorted(manifests.items()):  # train, val and every benchmark's test folder
        data[f"content.{name}"] = manifest.get("content_hash")
    base["data"] = data
    search = to_dict(space.search)
    chosen = {**base, "search": {key: search.get(key) for key in _SEARCH_KEYS}}
    flat = {key: value for key, value in _flat(chosen).items() if not key.startswith(FREE)}
    return json.loads(redact(json.dumps(flat, default=str)))  # as stored: no password, in any value


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _digest(flat: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()


def record(space: SearchSpace, storage: str, manifests: Mapping[str, Mapping], written: Mapping) -> str:
    """Write the fingerprint, and the space as ``written`` (the YAML's data with its overrides), into
    the search's folder; the fingerprint."""
    flat = settings(space, manifests)
    digest = _digest(flat)
    folder = stores.join(storage, space.name)
    fs, path = stores.filesystem(folder)
    fs.create_dir(path, recursive=True)  # a new search's folder (Tune makes it only when it starts)
    stores.write_bytes(stores.join(folder, FILE), json.dumps(
        {"search": space.name, "fingerprint": digest, "settings": flat}, indent=2, sort_keys=True,
        default=str).encode() + b"\n")
    # As started: its own name, and the data root it read (a relative root would move with the file).
    as_started = {**written, "search": {**written.get("search", {}), "name": space.name}}
    root = (space.base.get("data") or {}).get("root")
    if root is not None:
        as_started["data"] = {**(written.get("data") or {}), "root": root}
    text = without_credentials(yaml.safe_dump(dict(as_started), sort_keys=False, width=1 << 16))  # a URI per line
    stores.write_bytes(stores.join(folder, SPACE_FILE), text.encode())
    return digest


def stored(space: SearchSpace, storage: str) -> dict | None:
    """The recorded fingerprint of this search, or None (a search from before fingerprints)."""
    location = stores.join(storage, space.name, FILE)
    if not stores.exists(location):
        return None
    return json.loads(stores.read_bytes(location))


def check_resume(space: SearchSpace, storage: str, manifests: Mapping[str, Mapping], space_file: str,
                 written: Mapping) -> None:
    """Raise :class:`ConfigError` if the stored search was started under other fingerprinted settings.

    Where the search has no fingerprint yet (started before them), this attempt's is recorded.
    """
    old = stored(space, storage)
    now = settings(space, manifests)
    if old is None:
        record(space, storage, manifests, written)
        return
    if old["fingerprint"] == _digest(now):
        return
    raise ConfigError(_refusal(space, storage, old["settings"], now, space_file))


def _refusal(space: SearchSpace, storage: str, before: Mapping, now: Mapping, space_file: str) -> str:
    changed = sorted(set(before) | set(now), key=str)
    lines = [f"  {key}: {_show(before, key)} -> {_show(now, key)}" for key in changed
             if before.get(key, _MISSING) != now.get(key, _MISSING)]
    stored_space = stores.join(storage, space.name, SPACE_FILE)
    return (
        f"{space_file}: --resume: search {space.name!r} in {storage} was started with other settings, and its "
        f"trials would go on under settings they were not started with (nothing was changed, nothing trained).\n"
        f"Changed since it started ({len(lines)}):\n" + "\n".join(lines) + "\n"
        "Free to change on resume: search.budget.*, resources.*, data.loader_workers. Go on with one of:\n"
        f"  ldlpose search {stored_space} --resume --storage {storage}      # the search as it was started\n"
        f"  ldlpose search {space_file} --set search.name={space.name}-2 --storage {storage}   # a new search")


_MISSING = object()


def _show(flat: Mapping, key: str) -> str:
    value = flat.get(key, _MISSING)
    return "(absent)" if value is _MISSING else json.dumps(value, default=str)
