"""Storage and data roots given as URIs (issue 11, item 6), against an S3-compatible server on 127.0.0.1.

S3 itself cannot run here; moto's standalone server speaks its protocol, and pyarrow (which Ray
uses too) reaches it through ``AWS_ENDPOINT_URL``. Everything else is real: pyarrow's S3 client,
Ray, Tune, Optuna, MLflow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import INTERRUPTED_EXIT_S, processes_under, training_frozen

from ldlpose.infra import storage

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _as_s3_answers(app):
    """moto 5.2 answers CompleteMultipartUpload with a ``CompleteMultipartUploadResponse`` root
    element where S3 (and MinIO) send ``CompleteMultipartUploadResult``; pyarrow's S3 client then
    takes the upload for failed and retries it for 26 s, every upload. Rename the element."""
    def wrapped(environ, start_response):
        seen = {}
        chunks = app(environ, lambda status, headers, exc_info=None: seen.update(status=status, headers=headers))
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        headers = seen["headers"]
        if b"<CompleteMultipartUploadResponse" in body:  # (a HEAD's Content-Length must stay the object's)
            body = body.replace(b"CompleteMultipartUploadResponse", b"CompleteMultipartUploadResult")
            headers = [*((k, v) for k, v in headers if k.lower() != "content-length"),
                       ("Content-Length", str(len(body)))]
        start_response(seen["status"], headers)
        return [body]
    return wrapped


def _conditional_puts_atomic(app):
    """S3 decides a conditional PUT (``If-None-Match: *``) atomically; moto 5.2 checks for the key and
    then writes it, so on its threaded server two concurrent creates of one key can both succeed.
    Decide them one at a time, as S3 does."""
    import threading

    lock = threading.Lock()

    def wrapped(environ, start_response):
        if environ.get("REQUEST_METHOD") == "PUT" and environ.get("HTTP_IF_NONE_MATCH"):
            with lock:
                return app(environ, start_response)
        return app(environ, start_response)
    return wrapped


class S3Server:
    """moto's S3 server (its WSGI app, as ``moto.server.ThreadedMotoServer`` runs it) on a free
    port of 127.0.0.1, in a thread of this process."""

    def __init__(self):
        import logging
        import threading

        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        app = _conditional_puts_atomic(_as_s3_answers(DomainDispatcherApplication(create_backend_app)))
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        return self.server.server_address[:2]

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()


@pytest.fixture(scope="module")
def s3_server():
    """An S3-compatible server on 127.0.0.1 with a bucket ``bucket``; the environment that points
    pyarrow (here, and in the processes the tests start with it) at it."""
    import boto3

    server = S3Server()
    host, port = server.get_host_and_port()
    env = {**AWS, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="bucket")
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


# --- locations --------------------------------------------------------------------------------

@pytest.mark.parametrize("uri", ["s3://bucket/prefix", "gs://bucket/a/b", "file:///tmp/x", "s3://bucket/prefix/"])
def test_uris_are_never_made_local_paths(uri):
    assert storage.is_uri(uri)
    assert storage.resolve(uri) == uri
    assert storage.join(uri, "search", "trial_1") == uri.rstrip("/") + "/search/trial_1"
    assert storage.name(storage.join(uri, "search")) == "search"


def test_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.resolve("results") == str(tmp_path / "results")
    assert not storage.is_uri("results") and not storage.is_uri("C:/data") and not storage.is_uri(None)
    assert storage.join("results", "a") == str(Path("results", "a"))


def test_run_and_data_locations_keep_uris(synth_root):
    from conftest import tiny_run

    from ldlpose.train.run import resolve_paths

    run = tiny_run(synth_root, data__root="s3://bucket/data")
    assert resolve_paths(run).data.root == "s3://bucket/data"


def test_the_search_job_passes_a_storage_uri_on_unchanged(tmp_path, monkeypatch):
    import ldlpose.cli

    sys.path.insert(0, str(Path(__file__).parents[2] / "jobs"))
    try:
        import search as job
    finally:
        sys.path.pop(0)
    seen = []
    monkeypatch.setattr(ldlpose.cli, "main", lambda argv: seen.append(argv) or 0)  # the job's one call
    monkeypatch.chdir(tmp_path)
    assert job.main(["space.yaml", "--storage", "s3://bucket/results"]) == 0
    (command,) = seen
    assert command[command.index("--storage") + 1] == "s3://bucket/results"
    assert Path.cwd() == tmp_path and list(tmp_path.iterdir()) == []  # no local "s3:" folder, no chdir
    assert job.main(["space.yaml", "--storage", "shared/results"]) == 0
    assert seen[1][seen[1].index("--storage") + 1] == str(tmp_path / "shared" / "results")


# --- checkpoints in a bucket ------------------------------------------------------------------

def _writer(epoch: int, val_mae: float):
    import torch

    from ldlpose.train.checkpoints import save_checkpoint

    def write(folder: Path) -> None:
        model = torch.nn.Linear(2, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
        metrics = {"epoch": epoch, "val_mae": val_mae}
        save_checkpoint(folder, model_state=model.state_dict(), optimizer=optimizer, scheduler=scheduler,
                        epoch=epoch - 1, history=[metrics], run={"name": "t"})
    return write


def test_checkpoints_are_kept_pruned_selected_and_read_in_a_bucket(s3_server):
    from ldlpose.train import checkpoints as ck

    run_dir = "s3://bucket/ck/run-a"
    for epoch, mae in [(1, 5.0), (2, 3.0), (3, 4.0)]:
        ck.store(run_dir, ck.checkpoint_dir_name(epoch), _writer(epoch, mae))
        ck.prune(run_dir, "val_mae")
    names = sorted(i.base_name for i in storage.listing(run_dir))
    assert names == ["checkpoint_epoch_0002", "checkpoint_epoch_0003"]  # the best and the latest
    assert ck.latest_checkpoint(run_dir) == f"{run_dir}/checkpoint_epoch_0003"
    assert ck.load_checkpoint(ck.latest_checkpoint(run_dir))["metrics"]["epoch"] == 3
    selected = ck.select_checkpoint(run_dir, "val_mae")
    assert selected.epoch == 2 and not storage.is_uri(selected.path)  # copied here for export and scoring
    assert ck.load_checkpoint(selected.path)["metrics"]["val_mae"] == 3.0
    # A folder whose metrics.json has not arrived yet is still being uploaded: not a checkpoint.
    storage.write_bytes(f"{run_dir}/checkpoint_epoch_0004/checkpoint.pt", b"partial")
    assert ck.latest_checkpoint(run_dir).endswith("0003")
    assert not ck.stop_requested(run_dir)
    ck.request_stop(run_dir)
    assert ck.stop_requested(run_dir)


def test_a_data_root_uri_is_read_through_one_local_copy_made_again_when_it_changes(s3_server, tmp_path, monkeypatch):
    from ldlpose.data.benchmarks import data_root

    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    storage.write_bytes("s3://bucket/d1/synthhead/train/manifest.json", b'{"a": 1}')
    local = data_root("s3://bucket/d1")
    assert local.is_relative_to(tmp_path / "cache")
    assert (local / "synthhead" / "train" / "manifest.json").read_text() == '{"a": 1}'
    (local / "synthhead" / "train" / "manifest.json").write_text("changed here")
    assert data_root("s3://bucket/d1") == local  # unchanged in the bucket: not copied again
    assert (local / "synthhead" / "train" / "manifest.json").read_text() == "changed here"
    storage.write_bytes("s3://bucket/d1/synthhead/train/manifest.json", b'{"a": 22}')
    assert (data_root("s3://bucket/d1") / "synthhead" / "train" / "manifest.json").read_text() == '{"a": 22}'
    from ldlpose.errors import DataError

    with pytest.raises(DataError, match="nothing found under s3://bucket/none"):
        data_root("s3://bucket/none")


# --- a search on object storage, stopped and resumed ------------------------------------------

def _space(tmp_path: Path) -> Path:
    space = {
        "name": "bucketed",
        "method": {"name": "gldl"},
        "model": {"backbone": "mobilenet_v3_small", "weights": "none"},
        "data": {"root": "s3://bucket/data", "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 48},
        "train": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": "bucketed", "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": 3, "concurrency": 1},
                   "parameters": {"method.hparams.sigma": {"distribution": "log_uniform", "min": 1.0, "max": 4.0}}},
    }
    path = tmp_path / "bucketed.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def _finished_in_bucket(epochs: int = 2) -> dict[str, dict]:
    """Trial id -> last-epoch metrics of every run in the bucket that trained all its epochs."""
    done = {}
    for info in storage.listing("s3://bucket/results", recursive=True):
        if not info.path.endswith("/metrics.json") or "/bucketed-" not in info.path:
            continue
        try:
            metrics = json.loads(storage.read_bytes(f"s3://{info.path}"))
        except (OSError, ValueError):
            continue
        if metrics.get("epoch") == epochs:
            done[info.path.split("/bucketed-")[1].split("/")[0]] = metrics
    return done


@pytest.mark.slow
def test_a_search_on_object_storage_finishes_registers_and_resumes_from_the_bucket(s3_server, synth_root, tmp_path):
    import pyarrow.fs

    from ldlpose.tracking import list_champions

    fs, _ = storage.filesystem("s3://bucket/data")
    pyarrow.fs.copy_files(str(synth_root / "synthhead"), "bucket/data/synthhead",
                          source_filesystem=pyarrow.fs.LocalFileSystem(), destination_filesystem=fs)
    work, uri = tmp_path / "work", f"sqlite:///{tmp_path / 'mlflow.db'}"
    work.mkdir()
    env = {**os.environ, **s3_server, "RAY_AUTH_MODE": "disabled", storage.CACHE_ENV: str(tmp_path / "cache")}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "ldlpose", "search", str(_space(tmp_path)), "--storage", "s3://bucket/results",
               "--tracking-uri", uri]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 400
    while not _finished_in_bucket():
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.5)
    # Every other trial is frozen before the interrupt: none can finish while the driver takes it.
    with training_frozen(lambda: processes_under(process.pid)):
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does
        out, _ = process.communicate(timeout=INTERRUPTED_EXIT_S)
    first = _finished_in_bucket()
    assert 1 <= len(first) < 3, out[-3000:]
    stopped = time.monotonic() - started

    done = subprocess.run([*command, "--resume"], cwd=work, env=env, check=False, capture_output=True, text=True,
                          timeout=900)
    print(f"first run {stopped:.0f} s, resumed run {time.monotonic() - started - stopped:.0f} s", file=sys.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "registered headpose-synth version" in done.stdout
    assert "tracking problem" not in done.stdout, done.stdout[-3000:]
    final = _finished_in_bucket()
    assert len(final) == 3
    for trial_id, metrics in first.items():
        assert final[trial_id]["val_mae"] == metrics["val_mae"]  # continued from the bucket, not trained again
    # Checkpoints and Tune's state live in the bucket; nothing treated the URIs as local paths.
    for trial_id in final:
        kept = [i.base_name for i in storage.listing(f"s3://bucket/results/bucketed-{trial_id}")]
        assert any(name.startswith("checkpoint_epoch_") for name in kept), kept
    assert any(i.base_name.startswith("experiment_state") for i in storage.listing("s3://bucket/results/bucketed"))
    assert not list(work.rglob("s3*")) and not list(work.rglob("bucket"))  # no folder made from a URI
    (champion,) = list_champions(uri)
    assert champion["search_id"] == "bucketed" and champion["trial_id"] in final
