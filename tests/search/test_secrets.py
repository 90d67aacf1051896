"""Secrets are never printed or stored (issue 24 item 5), and the platform works against an MLflow
server with authentication (item 7).

One real search runs with a password in both of its URIs: the tracking URI of a basic-auth MLflow
server (``http://admin:PASSWORD@...``, the server refuses anything else) and an S3 storage URI
(``s3://key:SECRET@bucket/...``, against the S3-compatible server on 127.0.0.1). Everything the search
printed, every parameter and tag of every MLflow run, the search files logged to MLflow and those
written to the bucket (``search.yaml``, ``ldlpose-search.json``, Tune's own state) are searched for
either secret. The champion it registered is then evaluated with the credentials in
``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` (the documented way), and an unauthenticated client is
refused. A submit with the same URIs leaves neither secret in the job's entrypoint, runtime_env or
metadata, nor in what ``ray job list`` prints, nor in the jobs' JSON (``ray list jobs --format json
--detail``: Ray 2.60's ``ray job list`` has no ``--format``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
S3_KEY, S3_SECRET = "ldlpose-key", "s3-" + secrets.token_hex(12)


def _s3_server_class():
    """The S3-compatible server of tests/infra/test_storage.py (a test module, not importable by name here)."""
    spec = importlib.util.spec_from_file_location("_storage_tests", REPO / "tests" / "infra" / "test_storage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.S3Server, module.AWS


@pytest.fixture(scope="module")
def s3_env():
    """The S3-compatible server with a bucket ``bucket``; the environment that reaches it (its
    endpoint; the keys stay out of it: the storage URI carries them)."""
    import boto3

    server_class, aws = _s3_server_class()
    server = server_class()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in aws.items() if k != "AWS_DEFAULT_REGION"},
                 region_name="us-east-1").create_bucket(Bucket="bucket")
    yield {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    server.stop()


def _env(s3_env: dict, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_TRACKING_"))}
    env.pop("RAY_ADDRESS", None)
    return {**env, **s3_env, "RAY_AUTH_MODE": "disabled", **extra}


def _space(tmp_path: Path, synth_root: Path) -> Path:
    space = {
        "name": "secretive",
        "method": {"name": "gldl"},
        "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64, "max_train_samples": 32},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": "secretive", "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": 1, "concurrency": 1},
                   "parameters": {"method.hparams.sigma": {"distribution": "log_uniform", "min": 1.0, "max": 4.0}}},
    }
    path = tmp_path / "secretive.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.fixture(scope="module")
def searched(mlflow_server_basic_auth, s3_env, synth_root, tmp_path_factory):
    """The search, run once with a password in its tracking and storage URIs: its output."""
    tmp = tmp_path_factory.mktemp("secrets")
    server = mlflow_server_basic_auth
    tracking = server.replace("http://", f"http://{server.username}:{server.password}@")
    storage = f"s3://{S3_KEY}:{S3_SECRET}@bucket/results"
    done = subprocess.run(
        [sys.executable, "-m", "ldlpose", "search", str(_space(tmp, synth_root)), "--storage", storage,
         "--tracking-uri", tracking],
        cwd=tmp, env=_env(s3_env), check=False, capture_output=True, text=True, timeout=900)
    return {"out": done.stdout + done.stderr, "rc": done.returncode, "tmp": tmp}


def _leaks(text: str, *secrets_: str) -> list[str]:
    return [s for s in secrets_ if s in text]


def _admin(server):
    from mlflow import MlflowClient

    return MlflowClient(server.replace("http://", f"http://{server.username}:{server.password}@"))


def test_a_search_with_passwords_in_its_uris_prints_and_stores_neither(searched, mlflow_server_basic_auth, s3_env):
    import pyarrow.fs

    server = mlflow_server_basic_auth
    out = searched["out"]
    assert searched["rc"] == 0, out[-4000:]
    assert "registered headpose-synth version 1" in out  # registration went through the authenticated server
    assert not _leaks(out, server.password, S3_SECRET), out[-4000:]
    assert "results: s3://bucket/results/secretive" in out  # the storage as the search used it: no credentials
    client = _admin(server)
    runs = [run for experiment in client.search_experiments()
            for run in client.search_runs([experiment.experiment_id])]
    assert len(runs) == 2  # the search's run and its trial
    stored = json.dumps([[run.data.params, run.data.tags] for run in runs])
    assert not _leaks(stored, server.password, S3_SECRET)
    (parent,) = [run for run in runs if run.data.tags.get("ldlpose.role") == "search"]
    local = Path(client.download_artifacts(parent.info.run_id, "", str(searched["tmp"] / "artifacts")))
    for file in local.rglob("*"):
        if file.is_file():
            assert not _leaks(file.read_bytes().decode(errors="replace"), server.password, S3_SECRET), file
    # Every object the search wrote to the bucket: ldlpose's search files and Tune's own state.
    fs = pyarrow.fs.S3FileSystem(access_key=S3_KEY, secret_key=S3_SECRET, endpoint_override=s3_env["AWS_ENDPOINT_URL"],
                                 region="us-east-1")
    objects = [i for i in fs.get_file_info(pyarrow.fs.FileSelector("bucket/results", recursive=True))
               if i.type == pyarrow.fs.FileType.File]
    names = {Path(i.path).name for i in objects}
    assert {"search.yaml", "ldlpose-search.json"} <= names
    for info in objects:
        with fs.open_input_stream(info.path) as stream:
            assert not _leaks(stream.read().decode(errors="replace"), server.password, S3_SECRET), info.path


def test_an_authenticated_server_evaluates_with_environment_credentials_and_refuses_others(
        searched, mlflow_server_basic_auth, s3_env, synth_root):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    server = mlflow_server_basic_auth
    assert searched["rc"] == 0, searched["out"][-3000:]
    command = [sys.executable, "-m", "ldlpose", "evaluate", "models:/headpose-synth@champion", "--benchmark", "synth",
               "--data-root", str(synth_root), "--tracking-uri", server, "--out", str(searched["tmp"] / "eval")]
    credentials = {"MLFLOW_TRACKING_USERNAME": server.username, "MLFLOW_TRACKING_PASSWORD": server.password}
    done = subprocess.run(command, cwd=searched["tmp"], check=False, capture_output=True, text=True, timeout=600,
                          env=_env(s3_env, **credentials))
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert not _leaks(done.stdout + done.stderr, server.password)
    evaluations = _admin(server).search_runs(
        [e.experiment_id for e in _admin(server).search_experiments()], "tags.`ldlpose.role` = 'evaluation'")
    assert len(evaluations) == 1 and evaluations[0].data.metrics.get("mae") is not None

    with_password = server.replace("http://", f"http://{server.username}:{server.password}@")
    done = subprocess.run([sys.executable, "-m", "ldlpose", "registry", "--json", "--tracking-uri", with_password],
                          cwd=searched["tmp"], check=False, capture_output=True, text=True, timeout=300,
                          env=_env(s3_env))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["tracking_uri"] == server.replace("http://", "http://admin:***@")
    assert not _leaks(done.stdout + done.stderr, server.password)

    with pytest.raises(MlflowException, match=r"401|not authenticated|Unauthorized"):
        MlflowClient(server).search_experiments()  # no credentials: refused
    done = subprocess.run([sys.executable, "-m", "ldlpose", "registry", "--tracking-uri", server],
                          cwd=searched["tmp"], check=False, capture_output=True, text=True, timeout=300,
                          env=_env(s3_env))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "MLFLOW_TRACKING_USERNAME" in done.stderr  # says how to authenticate
    # A search with a wrong password stops before training: refused credentials never heal.
    wrong = server.replace("http://", f"http://{server.username}:wrong-{server.password}@")
    space = yaml.safe_load((searched["tmp"] / "secretive.yaml").read_text())
    (searched["tmp"] / "refused.yaml").write_text(yaml.safe_dump({**space, "name": "refused",
                                                                  "search": {**space["search"], "name": "refused"}}))
    done = subprocess.run([sys.executable, "-m", "ldlpose", "search", "refused.yaml", "--storage", "refused-results",
                           "--tracking-uri", wrong], cwd=searched["tmp"], check=False, capture_output=True, text=True,
                          timeout=300, env=_env(s3_env))
    assert done.returncode == 2, (done.stdout + done.stderr)[-3000:]
    assert "requires authentication and it refused the credentials of user 'admin'" in done.stderr
    assert not _leaks(done.stdout + done.stderr, server.password)
    assert not list((searched["tmp"] / "refused-results").glob("refused-*"))  # no trial folder: nothing trained


def test_a_submitted_job_carries_no_secret(mlflow_server_basic_auth, s3_env, tmp_path):
    from conftest import _cluster_env, _ray_cli, _started_cluster
    from ray.job_submission import JobSubmissionClient

    from ldlpose.cli import main

    server = mlflow_server_basic_auth
    tracking = server.replace("http://", f"http://{server.username}:{server.password}@")
    storage = f"s3://{S3_KEY}:{S3_SECRET}@bucket/jobs"
    env = _cluster_env({"RAY_AUTH_MODE": "disabled"})
    with _started_cluster(env, []) as cluster:
        import contextlib
        import io

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["submit", "search_spaces/quickstart.yaml", "--smoke-test", "--address", cluster.jobs,
                         "--working-dir", str(REPO), "--storage", storage, "--tracking-uri", tracking,
                         "--set", f"data.root=s3://{S3_KEY}:{S3_SECRET}@bucket/data", "--no-wait"]) == 0
        client = JobSubmissionClient(cluster.jobs)
        (job,) = client.list_jobs()
        client.stop_job(job.submission_id)
        listed = subprocess.run([_ray_cli(), "job", "list", "--address", cluster.jobs], check=False,
                                capture_output=True, text=True, timeout=120, env=env)
        # The JSON form: Ray 2.60's `ray job list` has no --format; its state CLI lists the same jobs,
        # with --detail every field of each (entrypoint, runtime_env, metadata) as the dashboard shows them.
        as_json = subprocess.run([_ray_cli(), "list", "jobs", "--format", "json", "--detail", "--address",
                                  cluster.jobs], check=False, capture_output=True, text=True, timeout=120, env=env)
    assert listed.returncode == 0 and "jobs/search.py" in listed.stdout, listed.stderr[-2000:]  # the job, in full
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    (record,) = [j for j in json.loads(as_json.stdout) if j.get("submission_id") == job.submission_id]
    assert "jobs/search.py" in record["entrypoint"] and "runtime_env" in record, record
    info = json.dumps([job.entrypoint, job.runtime_env, job.metadata], default=str)
    for text in (printed.getvalue(), info, listed.stdout, as_json.stdout):
        assert not _leaks(text, server.password, S3_SECRET), text[-3000:]
    # The job still names where to go; the nodes' environment supplies the credentials.
    assert f"--tracking-uri {server}" in job.entrypoint and "--storage s3://bucket/jobs" in job.entrypoint
    assert "MLFLOW_TRACKING_USERNAME" in printed.getvalue()  # the user is told where the job finds them
