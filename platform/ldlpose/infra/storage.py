"""Where results and data live: a local path or a URI that pyarrow and Ray accept.

``--storage`` and ``data.root`` take a path (``/shared/ldlpose-results``, NFS on a cluster) or a URI
(``s3://bucket/prefix``, ``gs://bucket/prefix``, ``file:///abs/path``). A URI is never turned into a
local path: :func:`resolve` leaves it as given, :func:`join` appends with ``/``, and files under it
are reached through :func:`filesystem` (pyarrow's, which is also what Ray Train and Tune use, so
credentials and endpoints are set once for both: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL`` for an S3-compatible server such as MinIO, ``AWS_DEFAULT_REGION``; on GCS the
application-default credentials).

Training data under a URI is read through a node-local copy (:func:`local_copy`): the data loaders
read every shard once per epoch and seek into them, which object storage serves slowly and bills
per request; the copy is made once per node and made again when the listing under the URI changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

from ldlpose.infra.locations import is_uri  # the one rule for what is a URI

CACHE_ENV = "LDLPOSE_CACHE"
_COPY_MARKER = ".ldlpose-copy.json"


def resolve(location) -> str:
    """An absolute local path (``~`` expanded), or the URI unchanged: what travels to other processes
    and nodes, which do not share this one's working directory (ldlpose.infra.locations chose it)."""
    if is_uri(location):
        return location
    return str(Path(location).expanduser().resolve())


def join(location, *parts: str) -> str:
    if is_uri(location):
        return "/".join([str(location).rstrip("/"), *(str(p).strip("/") for p in parts)])
    return str(Path(location, *parts))


def name(location) -> str:
    """The last component, e.g. the search name of a search's storage folder."""
    return str(location).rstrip("/").rsplit("/", 1)[-1] if is_uri(location) else Path(location).name


def filesystem(location):
    """``(pyarrow filesystem, path inside it)`` for a URI or a local path."""
    import pyarrow.fs

    if is_uri(location):
        return pyarrow.fs.FileSystem.from_uri(location)
    return pyarrow.fs.LocalFileSystem(), resolve(location)


def listing(location, recursive: bool = False) -> list:
    """pyarrow ``FileInfo`` of what lies under ``location``; empty if nothing does."""
    import pyarrow.fs

    fs, path = filesystem(location)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return []
    return fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=recursive, allow_not_found=True))


def exists(location) -> bool:
    import pyarrow.fs

    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def read_bytes(location) -> bytes:
    fs, path = filesystem(location)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def write_bytes(location, data: bytes) -> None:
    import tempfile

    # Through a file and copy_files, as Ray uploads: pyarrow's streamed small writes end in a
    # multipart upload that some S3-compatible servers (moto among them) fail to complete.
    with tempfile.TemporaryDirectory(prefix="ldlpose-upload-") as tmp:
        file = Path(tmp) / "data"
        file.write_bytes(data)
        upload(file, location)


def upload(local_file: Path, location) -> None:
    import pyarrow.fs

    fs, path = filesystem(location)
    pyarrow.fs.copy_files(str(local_file), path, source_filesystem=pyarrow.fs.LocalFileSystem(),
                          destination_filesystem=fs)


def download(location, local_dir: Path) -> None:
    """Everything under ``location`` into ``local_dir`` (created), keeping relative paths."""
    import pyarrow.fs

    fs, path = filesystem(location)
    Path(local_dir).mkdir(parents=True, exist_ok=True)
    pyarrow.fs.copy_files(path, str(local_dir), source_filesystem=fs,
                          destination_filesystem=pyarrow.fs.LocalFileSystem(), use_threads=True)


def delete(location) -> None:
    """A folder (and all under it) or a file; nothing if it is not there."""
    import pyarrow.fs

    fs, path = filesystem(location)
    kind = fs.get_file_info(path).type
    if kind == pyarrow.fs.FileType.Directory:
        fs.delete_dir(path)
    elif kind == pyarrow.fs.FileType.File:
        fs.delete_file(path)


def create_exclusive(location, data: bytes) -> bool:
    """Create ``location`` holding ``data`` unless something is there already; whether this call made it.

    Atomic where two writers race: exactly one of them gets True, and a reader never sees the file
    half written. On a local or shared disk the data is written to a private file first and
    hard-linked into place (``link`` fails when the name exists, as ``O_EXCL`` does, and the name
    appears with its content complete; NFS v3 and later honour it). On S3 and S3-compatible servers a
    conditional PUT (``If-None-Match: *``, which S3 honours since 2024, as do MinIO and moto) through
    boto3, which reads the same ``AWS_*`` settings as pyarrow. Other schemes (``gs://``) have no
    conditional create through pyarrow: there a check before the write leaves a window of one
    request's length (stated in docs/cluster.md).
    """
    if not is_uri(location):
        return _create_local(Path(resolve(location)), data)
    scheme = str(location).split("://", 1)[0].lower()
    if scheme == "s3":
        return _create_s3(str(location), data)
    if scheme == "file":
        return _create_local(Path(str(location)[len("file://"):]), data)
    if exists(location):
        return False
    write_bytes(location, data)
    return True


def _create_local(path: Path, data: bytes) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        _write_synced(partial, data)
        try:
            os.link(partial, path)
        except FileExistsError:
            return False
        _sync_folder(path.parent)
        return True
    finally:
        partial.unlink(missing_ok=True)


def _create_s3(uri: str, data: bytes) -> bool:
    import boto3
    from botocore.exceptions import ClientError

    bucket, _, key = uri[len("s3://"):].split("?", 1)[0].partition("/")
    # Endpoint, region and keys from AWS_* as pyarrow reads them. A session of its own: boto3's default
    # session is not thread-safe, and two threads (drivers racing for a lease, a heartbeat beside the
    # main thread) may create clients at once.
    client = boto3.session.Session().client("s3")
    try:
        client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
    except ClientError as err:
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 412 or err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
            return False
        raise
    return True


def replace_bytes(location, data: bytes) -> None:
    """Write ``location`` whole, replacing what was there: a reader sees the old content or the new,
    never a part (a local file is written beside and renamed over it; an object PUT is atomic)."""
    if is_uri(location):
        write_bytes(location, data)
        return
    path = Path(resolve(location))
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        _write_synced(partial, data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` durable (the file's own fsync does not cover its directory entry)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/ldlpose").expanduser()


def local_copy(uri: str) -> Path:
    """A local folder holding what lies under ``uri``: copied on first use on this node, and again
    when the files under ``uri`` (names, sizes, modification times) have changed since."""
    import pyarrow.fs

    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    target = cache_dir() / "remote" / key
    files = [i for i in listing(uri, recursive=True) if i.type == pyarrow.fs.FileType.File]
    if not files:
        from ldlpose.errors import DataError

        raise DataError(f"nothing found under {uri}: upload the prepared data there (e.g. `ldlpose prepare "
                        "... --out DIR`, then copy DIR's contents), or check the credentials and AWS_ENDPOINT_URL")
    _, base = filesystem(uri)
    signature = sorted((i.path[len(base):].lstrip("/"), i.size, i.mtime_ns or 0) for i in files)
    wanted = json.loads(json.dumps({"uri": uri, "files": signature}))  # as it reads back from the marker
    with _locked(target.with_suffix(".lock")):  # trials sharing a node copy it once
        if _marker(target) != wanted:
            shutil.rmtree(target, ignore_errors=True)
            download(uri, target)
            (target / _COPY_MARKER).write_text(json.dumps(wanted))  # last: a copy with it is complete
    return target


def _marker(target: Path):
    try:
        return json.loads((target / _COPY_MARKER).read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(lock_file: Path):
    import fcntl

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def credentials_to_environment(location: str) -> str:
    """``location`` without its credentials, an S3 URI's key and secret (``s3://KEY:SECRET@bucket/...``)
    moved into this process's ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.

    Ray keeps the storage path it is given in the search's state (Tune's pickles, in the bucket
    itself) and in its logs; given the URI without credentials, it and pyarrow find them in the
    environment instead, here and in the Ray workers this process starts. (On a cluster the nodes'
    own environment supplies them: docs/cluster.md.) Credentials in the URI win over ones already set.
    """
    from urllib.parse import unquote, urlsplit

    from ldlpose.infra.locations import without_credentials

    stripped = without_credentials(location) if is_uri(location) else location
    if stripped == location:
        return location
    parts = urlsplit(location)
    if parts.scheme == "s3" and parts.username:
        os.environ["AWS_ACCESS_KEY_ID"] = unquote(parts.username)
        os.environ["AWS_SECRET_ACCESS_KEY"] = unquote(parts.password or "")
    return stripped
