"""Submitting searches as Ray jobs (Ray's JobSubmissionClient), with Ray's token authentication.

A cluster started with ``RAY_AUTH_MODE=token`` accepts only requests that carry its token. The
client finds the token where Ray itself looks, in this order: ``RAY_AUTH_TOKEN``, the file named by
``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``. The token goes to the job server in the
``Authorization`` header only; it is never copied into the job's environment, where the job's
information would show it: the cluster's own nodes hold the token (cluster.yaml ships it).

The same holds for every other secret: a job's entrypoint, runtime_env and metadata are shown by
``ray job list``, the dashboard and the job's logs, so a password in the tracking URI, the storage
URI or a ``--set`` value (``https://u:PASS@mlflow``, ``s3://key:secret@bucket``) is taken out
before submitting, and the job reads its credentials from the nodes' environment
(``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, ``PGPASSWORD`` or ``~/.pgpass``,
``AWS_*``) or from a file on the shared storage (docs/cluster.md).

This module prints for itself: it is the client side of ``ldlpose submit``, which runs no search here
(the search's own lines, printed through :mod:`ldlpose.search.console`, run in the job and come back
in its logs, streamed verbatim by :func:`follow`). Importing the console would load Ray Tune for that.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Mapping
from pathlib import Path

from ldlpose.errors import ConfigError
from ldlpose.infra.locations import DEFAULT_DATA_ROOT, DEFAULT_STORAGE, redact, without_credentials

_DONE = {"SUCCEEDED", "FAILED", "STOPPED"}
AGENT_WAIT_S = 120  # how long a submission waits for a (re)starting head's job agent
_TOKEN_HELP = ("set RAY_AUTH_TOKEN to the cluster's token (or RAY_AUTH_TOKEN_PATH to a file that holds it, "
               "or write it to ~/.ray/auth_token); `ray get-auth-token` on the head node prints it")


def cluster_token(environ: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """The token for the cluster and where it came from, looked up as Ray does; None if there is none."""
    if environ.get("RAY_AUTH_TOKEN", "").strip():
        return environ["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN"
    if environ.get("RAY_AUTH_TOKEN_PATH"):
        path = Path(environ["RAY_AUTH_TOKEN_PATH"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"submit: RAY_AUTH_TOKEN_PATH={environ['RAY_AUTH_TOKEN_PATH']} is not a file; "
                              f"{_TOKEN_HELP}")
        return path.read_text().strip(), f"RAY_AUTH_TOKEN_PATH ({path})"
    default = Path.home() / ".ray" / "auth_token"
    if default.is_file():
        return default.read_text().strip(), str(default)
    return None


def auth_headers(environ: Mapping[str, str] = os.environ) -> tuple[dict[str, str], str | None]:
    """The job server's ``Authorization`` header and the token's source ({} and None: none sent).

    ``RAY_AUTH_MODE=disabled`` sends nothing; ``token`` requires a token; unset sends one if found,
    as Ray does (a cluster without authentication ignores it).
    """
    mode = environ.get("RAY_AUTH_MODE", "").strip().lower()
    if mode == "disabled":
        return {}, None
    found = cluster_token(environ)
    if found is None:
        if mode == "token":
            raise ConfigError(f"submit: RAY_AUTH_MODE=token but no token was found; {_TOKEN_HELP}")
        return {}, None
    token, source = found
    return {"Authorization": f"Bearer {token}"}, source


def _refused(address: str, source: str | None) -> ConfigError:
    if source is None:
        return ConfigError(f"submit: the cluster at {address} requires token authentication and no token was "
                           f"sent; set RAY_AUTH_MODE=token and {_TOKEN_HELP}")
    return ConfigError(f"submit: the cluster at {address} rejected the token from {source} (wrong token, or "
                       f"another cluster's); {_TOKEN_HELP}")


def connect(address: str):
    """A JobSubmissionClient that authenticates with the cluster's token, and the token's source."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    headers, source = auth_headers()
    try:
        return JobSubmissionClient(address, headers=headers), source
    except AuthenticationError:
        raise _refused(address, source) from None
    except ConnectionError as err:
        raise ConfigError(f"submit: no Ray job server answers at {address} ({err}); give the head's "
                          "dashboard address with --address http://HEAD:8265") from None


def entrypoint(space: str, *, storage: str, tracking_uri: str | None, smoke_test: bool, overrides) -> str:
    """The job's command line, every URI in it without credentials (the module's docstring says why)."""
    parts = ["python", "jobs/search.py", space, "--storage", storage]
    if tracking_uri:
        parts += ["--tracking-uri", tracking_uri]
    if smoke_test:
        parts.append("--smoke-test")
    for override in overrides:
        parts += ["--set", override]
    return " ".join(shlex.quote(without_credentials(p)) for p in parts)


_NODES_SUPPLY = ("The cluster's nodes supply credentials from their environment (MLFLOW_TRACKING_USERNAME/"
                 "MLFLOW_TRACKING_PASSWORD for MLflow, PGPASSWORD or ~/.pgpass for PostgreSQL, "
                 "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for S3); see docs/cluster.md")


def _credentials_note(storage: str, tracking_uri: str | None, overrides) -> str | None:
    """What the user must know when passwords were left out of the job: where the job finds them."""
    given = [x for x in (storage, tracking_uri or "", *overrides) if without_credentials(x) != x]
    if not given:
        return None
    return (f"the job gets {', '.join(redact(x) for x in given)} without the password: a job's command line is "
            f"shown to everyone who can list jobs. {_NODES_SUPPLY}")


def refuse_secrets_in(space_file: Path) -> None:
    """Refuse a search-space YAML that holds a password in a URI (``data.root: s3://key:SECRET@bucket``).

    The file travels to the cluster inside the job's working_dir, which Ray keeps in its package
    store and unpacks on every node that runs the job; unlike a command-line URI, a file cannot be
    cleaned on the way without changing what the user wrote, so the job is not submitted.
    """
    from ldlpose.config import read_yaml

    for key, value in _strings(read_yaml(space_file)):
        if redact(value) != value:
            raise ConfigError(f"{space_file}: {key}: {redact(value)} carries a password, and this file is uploaded "
                              "with the job (nothing was submitted); remove the password from the URI. "
                              f"{_NODES_SUPPLY}")
    for number, line in enumerate(space_file.read_text().splitlines(), 1):
        if redact(line) != line:  # in a comment, or a key the loader does not read
            raise ConfigError(f"{space_file}:{number}: {redact(line).strip()} carries a password, and this file is "
                              f"uploaded with the job (nothing was submitted); remove it. {_NODES_SUPPLY}")


def _strings(node, key: str = "") -> list[tuple[str, str]]:
    """Every string in a parsed YAML document, with its dotted key."""
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in _strings(v, f"{key}.{k}" if key else str(k))]
    if isinstance(node, list):
        return [pair for i, v in enumerate(node) for pair in _strings(v, f"{key}[{i}]")]
    return [(key, node)] if isinstance(node, str) else []


def submit_search(args) -> int:
    from ray.exceptions import AuthenticationError

    from ldlpose.search.space import SMOKE_SUFFIX, load_search_space

    if not args.address:
        raise ConfigError("submit: give the cluster's job server with --address http://HEAD:8265 "
                          "(or set RAY_JOB_ADDRESS)")
    working_dir = Path(args.working_dir).resolve()
    space_file = working_dir / args.space
    space = load_search_space(space_file, args.overrides)  # fail here, not on the cluster
    refuse_secrets_in(space_file)
    client, source = connect(args.address)
    # The job runs with the cluster's own authentication settings (its nodes' RAY_AUTH_MODE and token).
    name = space.name + SMOKE_SUFFIX if args.smoke_test else space.name
    try:
        job_id = _submit(
            client,
            entrypoint=entrypoint(args.space, storage=args.storage, tracking_uri=args.tracking_uri,
                                  smoke_test=args.smoke_test, overrides=args.overrides),
            runtime_env={"working_dir": str(working_dir),
                         "excludes": [".venv*", DEFAULT_DATA_ROOT, DEFAULT_STORAGE, "mlflow.db", "mlartifacts",
                                      ".git"]},
            submission_id=args.submission_id,
            metadata={"ldlpose.search": name},
        )
    except AuthenticationError:
        raise _refused(args.address, source) from None
    address = redact(args.address)
    print(f"submitted search {name!r} as job {job_id} to {address}")
    note = _credentials_note(args.storage, args.tracking_uri, args.overrides)
    if note:
        print(f"note: {note}")
    if args.no_wait:
        print(f"follow it with: ray job logs --address {address} --follow {job_id}")
        return 0
    return follow(client, job_id)


def _submit(client, wait_s: float = AGENT_WAIT_S, **job) -> str:
    """``client.submit_job(**job)``, waiting while the head has no job agent yet.

    A head that has just started (or restarted) answers HTTP 500 "No available agent to submit job"
    until its dashboard agent registers, seconds later: a state that passes, not a refusal.
    """
    deadline, said = time.monotonic() + wait_s, False
    while True:
        try:
            return client.submit_job(**job)
        except RuntimeError as err:
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise
            if not said:
                print("waiting for the cluster's job agent to start ...", flush=True)
                said = True
            time.sleep(1.0)


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
