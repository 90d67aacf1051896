"""Submitting searches as Ray jobs (Ray's JobSubmissionClient)."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

from ldlpose.errors import ConfigError

_DONE = {"SUCCEEDED", "FAILED", "STOPPED"}


def entrypoint(space: str, *, storage: str, tracking_uri: str | None, smoke_test: bool, overrides) -> str:
    parts = ["python", "jobs/search.py", space, "--storage", storage]
    if tracking_uri:
        parts += ["--tracking-uri", tracking_uri]
    if smoke_test:
        parts.append("--smoke-test")
    for override in overrides:
        parts += ["--set", override]
    return " ".join(shlex.quote(p) for p in parts)


def submit_search(args) -> int:
    from ray.job_submission import JobSubmissionClient

    from ldlpose.search.space import load_search_space

    if not args.address:
        raise ConfigError("submit: give the cluster's job server with --address http://HEAD:8265 "
                          "(or set RAY_JOB_ADDRESS)")
    working_dir = Path(args.working_dir).resolve()
    space_file = working_dir / args.space
    space = load_search_space(space_file, args.overrides)  # fail here, not on the cluster
    client = JobSubmissionClient(args.address)
    env = {"RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    job_id = client.submit_job(
        entrypoint=entrypoint(args.space, storage=args.storage, tracking_uri=args.tracking_uri,
                              smoke_test=args.smoke_test, overrides=args.overrides),
        runtime_env={"working_dir": str(working_dir), "env_vars": env,
                     "excludes": [".venv*", "ldlpose-data", "ldlpose-results", "mlflow.db", "mlartifacts", ".git"]},
        submission_id=args.submission_id,
        metadata={"ldlpose.search": space.name},
    )
    print(f"submitted search {space.name!r} as job {job_id} to {args.address}")
    if args.no_wait:
        print(f"follow it with: ray job logs --address {args.address} --follow {job_id}")
        return 0
    return follow(client, job_id)


def follow(client, job_id: str, poll_s: float = 2.0) -> int:
    """Print the job's logs as they come; exit status 0 only when the job succeeded."""
    printed = 0
    while True:
        status = str(client.get_job_status(job_id)).split(".")[-1]
        logs = client.get_job_logs(job_id)
        print(logs[printed:], end="", flush=True)
        printed = len(logs)
        if status in _DONE:
            print(f"\njob {job_id}: {status}")
            return 0 if status == "SUCCEEDED" else 1
        time.sleep(poll_s)
