"""Submit a search to a Ray cluster as a Ray job (the cluster runs `jobs/search.py`).

The project folder is uploaded as the job's working directory; the cluster must have ldlpose
installed (see cluster.yaml). Resubmitting the same space resumes the search from shared storage.
On a cluster with token authentication (``RAY_AUTH_MODE=token``) the token comes from
``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token`` (docs/cluster.md).
"""

from __future__ import annotations

import argparse
import os

from ldlpose.infra.locations import DEFAULT_STORAGE, STORAGE_ENV, resolve_storage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", help="search-space YAML, relative to the working directory")
    parser.add_argument("--address", default=os.environ.get("RAY_JOB_ADDRESS") or None,
                        help="the cluster's job server, e.g. http://HEAD:8265 (default: RAY_JOB_ADDRESS)")
    parser.add_argument("--working-dir", default=".", help="folder uploaded as the job's working directory")
    parser.add_argument("--storage", default=resolve_storage(), help="storage every node sees (NFS or s3://; "
                        f"default: ${STORAGE_ENV}, else {DEFAULT_STORAGE})")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                        help="MLflow server the cluster can reach (default: MLFLOW_TRACKING_URI)")
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--submission-id", help="job id (default: one Ray makes up)")
    parser.add_argument("--no-wait", action="store_true", help="return once submitted instead of following the logs")


def run(args: argparse.Namespace) -> int:
    from ldlpose.search.submit import submit_search

    return submit_search(args)
