"""Ray job entry point: run (or, after a head-node restart, resume) one search on the cluster.

Submitted by ``ldlpose submit`` (or ``ray job submit -- python jobs/search.py SPACE.yaml``). It always
resumes when the search's state exists in the shared storage, so resubmitting the same job after a
lost head node continues the search instead of starting it again.

    python jobs/search.py SPACE.yaml [--storage PATH] [--tracking-uri URI] [--smoke-test] [--set K=V ...]
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from ldlpose.infra.locations import resolve_storage

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("space")
    parser.add_argument("--storage", default=resolve_storage(),  # $LDLPOSE_STORAGE, else ldlpose-results
                        help="shared storage every node sees: an NFS path, or a URI (s3://bucket/prefix, gs://..., file://...)")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)

    from ldlpose.cli import main as cli
    from ldlpose.infra.storage import is_uri

    # The job starts in an unpacked copy of the uploaded working directory, which Ray may remove
    # while the job runs. Work from the storage's parent instead: relative paths (data.root, an
    # SQLite MLflow store) then land beside the shared results, e.g. /shared/ldlpose-data. Object
    # storage (s3://..., gs://...) has no working directory to offer: it is passed on as it is,
    # and data.root and the tracking URI must then be absolute or URIs themselves.
    space = os.path.abspath(args.space)
    storage = args.storage
    if not is_uri(storage):
        storage = os.path.abspath(storage)
        os.makedirs(storage, exist_ok=True)
        os.chdir(os.path.dirname(storage))
    command = ["search", space, "--resume", "--storage", storage, *(x for o in args.overrides for x in ("--set", o))]
    if args.tracking_uri:
        command += ["--tracking-uri", args.tracking_uri]
    if args.smoke_test:
        command.append("--smoke-test")
    # Inside a Ray job the cluster is found through RAY_ADDRESS, which Ray sets for the entrypoint.
    return cli(command)


if __name__ == "__main__":
    sys.exit(main())
