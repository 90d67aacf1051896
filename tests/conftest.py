"""Shared fixtures: a tiny prepared synthhead and one local Ray instance for the slow tests."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

# Every Ray started by the tests runs with token authentication explicitly off
# (docs/methods.md#ray-token-authentication).
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A data root holding ``synthhead/{train,val,test}`` and ``facegen/{train,val,test}`` (the
    quickstart's): 96 / 32 / 32 images each at 64 px."""
    from ldlpose.cli import main

    root = tmp_path_factory.mktemp("data")
    for generator in ("synthhead", "facegen"):
        assert main(["prepare", generator, "--out", str(root / generator), "--train", "96", "--val", "32",
                     "--test", "32", "--size", "64", "--workers", "1"]) == 0
    return root


@pytest.fixture(scope="session")
def _ray_local_session():
    """Shuts the local Ray down when the session ends (:func:`ray_local` starts it)."""
    yield
    import ray

    ray.shutdown()


@pytest.fixture
def ray_local(_ray_local_session):
    """A local Ray (2 CPUs) for a test that trains, started once and started again wherever a test
    before it left none: the cluster fixtures connect this process to their own clusters and
    disconnect it, which ends the local one. Without a live one, Tune and Ray Train would start or
    join whatever Ray the host's temp folder names (a cluster of an earlier test, long gone)."""
    import ray

    if not ray.is_initialized():
        # address="local": a new instance of its own even where another Ray runs on this host
        ray.init(address="local", num_cpus=2, include_dashboard=True, log_to_driver=False, configure_logging=False)
    return ray


def tiny_run(synth_root, **changes):
    """A valid run config on the tiny synthhead: ShuffleNetV2 x0.5 (the fastest backbone to train on a
    CPU) at 64 px from random init, 1 worker."""
    from ldlpose.config import run_config_from_dict

    data = {
        "name": "tiny",
        "method": {"name": "gldl"},
        "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.001}, "seed": 0,
                  "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
    }
    for key, value in changes.items():
        node = data
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return run_config_from_dict(data)


# --- a real MLflow tracking server on 127.0.0.1 -------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _launched_mlflow(root: Path, backend_uri: str, workers: int = 1, app: tuple[str, ...] = (),
                     env_extra: dict[str, str] | None = None):
    """An ``mlflow server`` on a free port of 127.0.0.1 over ``backend_uri``: (process, URI, log).
    ``app``: extra server options (``--app-name basic-auth``), ``env_extra`` the environment they need."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # its worker pool is not needed and slow to start
    env.update(env_extra or {})
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    with open(root / "server.log", "w") as log:
        server = subprocess.Popen(
            [str(mlflow_bin), "server", "--backend-store-uri", backend_uri,
             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers), *app],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            yield server, f"http://127.0.0.1:{port}", root / "server.log"
        finally:
            with contextlib.suppress(ProcessLookupError):  # it may have exited on its own (a failed start)
                os.killpg(server.pid, signal.SIGTERM)  # the server's own process group: it and its workers
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@pytest.fixture(scope="module")
def mlflow_server_launched(tmp_path_factory):
    """Start the server without waiting for it, so that other fixtures build meanwhile."""
    root = tmp_path_factory.mktemp("mlflow-server")
    with _launched_mlflow(root, f"sqlite:///{root / 'db.sqlite'}") as launched:
        yield launched


@pytest.fixture(scope="module")
def mlflow_server(mlflow_server_launched) -> str:
    """URI of a real tracking server for this test module, once it answers /health."""
    server, uri, log = mlflow_server_launched
    _wait_for_health(uri, server, log)
    return uri


class AuthServer(str):
    """The URI of a tracking server with MLflow's basic-auth app (the string itself, no credentials),
    plus its admin's ``username`` and ``password``."""

    def __new__(cls, uri: str, username: str, password: str):
        obj = super().__new__(cls, uri)
        obj.username, obj.password = username, password
        return obj


@pytest.fixture(scope="module")
def mlflow_server_basic_auth(tmp_path_factory) -> AuthServer:
    """A real tracking server set up as docs/cluster.md documents it: MLflow's basic-auth app
    (``mlflow server --app-name basic-auth``), every request authenticated; its admin has a random
    password. Needs ``mlflow[auth]`` (the test extra)."""
    root = tmp_path_factory.mktemp("mlflow-server-auth")
    password = "pw-" + secrets.token_hex(12)
    (root / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        f"admin_username = admin\nadmin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini"), "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}
    with _launched_mlflow(root, f"sqlite:///{root / 'db.sqlite'}", app=("--app-name", "basic-auth"),
                          env_extra=env) as (server, uri, log):
        _wait_for_health(uri, server, log)  # /health answers without credentials
        yield AuthServer(uri, "admin", password)


def _wait_for_health(uri: str, server: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"mlflow server at {uri} not healthy after {timeout_s} s:\n{log.read_text()[-3000:]}")


# --- a real PostgreSQL server, and an MLflow tracking server on it ------------------------------

def _postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (Debian's /usr/lib/postgresql/N/bin, or PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    pytest.fail("PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
                "run `apt-get install -y postgresql` (.ci/run does it)")


def _postgres_user() -> list[str]:
    """The command prefix that runs PostgreSQL's programs: initdb and postgres refuse to run as root."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    pytest.fail("running as root, and neither user 'postgres' nor 'nobody' exists to run PostgreSQL as")


def _run_pg(prefix: list[str], command: list[str]) -> None:
    done = subprocess.run([*prefix, *command], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"PostgreSQL: {' '.join(command)} exited with {done.returncode}:\n"
                    f"{done.stdout[-2000:]}{done.stderr[-2000:]}")


@pytest.fixture(scope="module")
def postgres_database():
    """A PostgreSQL server of its own (a fresh cluster in a temporary folder, 127.0.0.1, a free port),
    with an empty database ``mlflow``; its SQLAlchemy URI. Stopped and deleted afterwards."""
    import psycopg

    bindir, prefix = _postgres_bin(), _postgres_user()
    # Not under pytest's tmp_path: that lies in root's private folder, which the server's user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="ldlpose-pg-"))
    data, port = root / "data", _free_port()
    if prefix:
        shutil.chown(root, user=prefix[2])
    try:
        _run_pg(prefix, [str(bindir / "initdb"), "-D", str(data), "-U", "ldlpose", "--auth=trust",
                         "-E", "UTF8", "--no-sync"])
        # fsync off: a test database need not survive a power cut, and syncs are slow on shared disks.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=50"
        _run_pg(prefix, [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"),
                         "-o", options, "-w", "-t", "60", "start"])
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="ldlpose", dbname="postgres",
                                 autocommit=True) as connection:
                connection.execute("CREATE DATABASE mlflow")
            yield f"postgresql://ldlpose@127.0.0.1:{port}/mlflow"
        finally:
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           check=False, capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server_postgres(tmp_path_factory, postgres_database) -> str:
    """URI of a real tracking server whose backend store is PostgreSQL, with two server workers
    (so that concurrent requests really run at once), once it answers /health."""
    root = tmp_path_factory.mktemp("mlflow-server-postgres")
    with _launched_mlflow(root, postgres_database, workers=2) as (server, uri, log):
        _wait_for_health(uri, server, log)
        yield uri


# --- a real two-node local Ray cluster (`ray start --head` + `ray start --address`) --------------

class RayCluster(str):
    """The GCS address (the string itself) plus ``jobs``, the job server's URL."""

    def __new__(cls, address: str, jobs: str):
        obj = super().__new__(cls, address)
        obj.jobs = jobs
        return obj


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _cluster_env(auth: dict[str, str]) -> dict[str, str]:
    # Jobs' entrypoints run with the PATH of `ray start`: put this interpreter's bin first.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_")}
    return {**env, **auth, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _cluster_processes(port: int) -> set[int]:
    """Every process of the cluster whose GCS listens on ``port``: those started with its address
    or port (GCS, raylets, agents, workers), and everything under them."""
    # The GCS itself, and whatever names it by address (its host: whichever IP Ray chose to print).
    mark = re.compile(rf"--(gcs[-_]server[-_]port=|(gcs[-_])?address=[^\0\s]*:){port}(\0|\s|$)")
    children: dict[int, list[int]] = {}
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        children.setdefault(parent, []).append(int(entry.name))
        if mark.search(argv):
            found.add(int(entry.name))
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found - {os.getpid()}


def processes_under(root: int) -> set[int]:
    """``root`` and every process started under it (a driver's local Ray: its GCS, raylet, workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


# Ray titles an actor's process ``ray::<class>[.<method>]``: a Ray Train worker, or a trial trained in
# Tune's own function trainable (the in-process engine).
TRAINING_TITLES = ("ray::RayTrainWorker", "ray::ImplicitFunc")


def _freeze_training(candidates: set[int], frozen: set[int]) -> None:
    """SIGSTOP every training process among ``candidates`` not yet in ``frozen`` (/proc alone: no Ray call)."""
    for pid in candidates - frozen:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue  # the process ended meanwhile
        if title.startswith(TRAINING_TITLES):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                frozen.add(pid)


# How long a driver interrupted with its training frozen may take to exit. Usually seconds; two CI runs
# of 2026-12-07 saw one such driver in about 60 still running after 180 s (where it waits is not known
# yet), so the bound is generous rather than tight.
INTERRUPTED_EXIT_S = 420


@contextlib.contextmanager
def training_frozen(candidates):
    """Keep every training process among ``candidates()`` stopped (SIGSTOP) until the block ends.

    A test that interrupts a search once its first trial finished enters this first: the trial that
    was running, and any that starts while the driver takes the interrupt (frozen within 50 ms of
    its process appearing, long before it could train), cannot finish however fast this machine
    trains or however slowly the driver answers. SIGKILL (Ray ending a trial) ends a stopped
    process as well; those left are resumed (SIGCONT) at the end. Yields the set of frozen pids.
    """
    frozen: set[int] = set()
    done = threading.Event()

    def keep_freezing():
        while not done.is_set():
            _freeze_training(candidates(), frozen)
            done.wait(0.05)

    _freeze_training(candidates(), frozen)
    watcher = threading.Thread(target=keep_freezing, daemon=True)
    watcher.start()
    try:
        yield frozen
    finally:
        done.set()
        watcher.join()
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _stop_cluster(port: int, timeout_s: float = 30) -> None:
    """End this cluster alone, as ``ray stop --force`` would but leaving other Ray instances on this
    host be (another user's, another test run's): SIGKILL to its processes, then wait until they are gone."""
    pids = _cluster_processes(port)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if not _gone(pid)}
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie (ended, its exit status not collected yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _agent_port() -> list[str]:
    return [f"--dashboard-agent-listen-port={_free_port()}"]


@contextlib.contextmanager
def _started_cluster(env: dict[str, str], worker_cpus: list[int], head: tuple[str, ...] = ("--num-cpus=1",)):
    """``ray start --head`` (``head``'s options, the job server) and one ``ray start --address`` per worker node.

    Yields a :class:`RayCluster`; afterwards its processes, and only its, are stopped (:func:`_stop_cluster`).
    """
    port, dashboard = _free_port(), _free_port()
    address = f"127.0.0.1:{port}"
    # A temp folder of its own: Ray's jobs find their cluster through <temp>/ray_current_cluster, which
    # under the shared /tmp/ray names whichever cluster on this host started last (another test run's).
    temp = Path(tempfile.gettempdir()) / f"ray{port}"  # short: Ray's socket paths must stay under 108 bytes
    common = ["--disable-usage-stats"]
    try:
        # Ports Ray would otherwise take by fixed default (the job agent's 52365, the client server's
        # 10001) are free ones: where another Ray runs on this host (another test run's, a user's),
        # this cluster's job agent could not listen, and every job submission would be refused.
        subprocess.run([_ray_cli(), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", *head,
                        "--include-dashboard=true", f"--dashboard-port={dashboard}",
                        f"--ray-client-server-port={_free_port()}", f"--temp-dir={temp}", *common, *_agent_port()],
                       env=env, check=True, capture_output=True)
        for cpus in worker_cpus:
            subprocess.run([_ray_cli(), "start", f"--address={address}", f"--num-cpus={cpus}", *common,
                            *_agent_port()], env=env, check=True, capture_output=True)
        yield RayCluster(address, f"http://127.0.0.1:{dashboard}")
    finally:
        _stop_cluster(port)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local two-node Ray cluster: a head with 1 CPU (and the job server) and a node with 2 CPUs.

    Started with the CLI from this interpreter, token authentication explicitly off, and stopped
    afterwards (its own processes only: other Ray instances on this host are left alone).
    """
    import ray

    if ray.is_initialized():
        ray.shutdown()
    with _started_cluster(_cluster_env({"RAY_AUTH_MODE": "disabled"}), [2]) as cluster:
        try:
            ray.init(address=str(cluster), log_to_driver=False)
            deadline = time.monotonic() + 60
            while len([n for n in ray.nodes() if n["Alive"]]) < 2:
                assert time.monotonic() < deadline, "the worker node did not join"
                time.sleep(0.5)
            yield cluster
        finally:
            ray.shutdown()


_COUNT_NODES = ("import ray; ray.init(address='{address}', log_to_driver=False); "
                "print(sum(n['Alive'] for n in ray.nodes()))")


@pytest.fixture(scope="module")
def ray_cluster_token(tmp_path_factory):
    """A two-node local cluster like :func:`ray_cluster`, with ``RAY_AUTH_MODE=token``.

    Yields ``(cluster, token)``. Every node reads the token from a file named by
    ``RAY_AUTH_TOKEN_PATH`` (never ``~/.ray/auth_token``, which every Ray on this host would read).
    This process keeps token authentication off: clients talk to the cluster from subprocesses or
    over HTTP with the token in hand.
    """
    token_file = tmp_path_factory.mktemp("ray-token") / "auth_token"
    token = secrets.token_hex(32)  # what `ray get-auth-token --generate` makes: 256 random bits
    token_file.write_text(token)
    env = _cluster_env({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)})
    with _started_cluster(env, [2]) as cluster:
        deadline = time.monotonic() + 90
        while True:  # a real driver with the token counts the nodes that joined
            done = subprocess.run([sys.executable, "-c", _COUNT_NODES.format(address=cluster)], env=env,
                                  check=False, capture_output=True, text=True, timeout=120)
            if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == ["2"]:
                break
            assert time.monotonic() < deadline, f"the token cluster did not come up:\n{done.stderr[-3000:]}"
            time.sleep(1)
        yield cluster, token


@pytest.fixture()
def ray_cluster_three():
    """A head and two worker nodes, laid out as cluster.yaml lays out a real cluster.

    The head has no CPU and all of the trial drivers' resource, so trial drivers (and the Train
    controllers, which follow their driver) stay on it and training workers go to the worker nodes
    (1 CPU each), one of which a test may kill. The GCS declares a silent node dead after about
    5 s instead of 30 s (five missed 1-s health checks: a raylet slowed by a loaded machine answers
    within that; a killed one never does). This process is connected to the cluster. One per test:
    a test may lose a node.
    """
    import ray

    from ldlpose.search.tuning import DRIVER_RESOURCE

    if ray.is_initialized():
        ray.shutdown()
    env = {**_cluster_env({"RAY_AUTH_MODE": "disabled"}), "RAY_health_check_period_ms": "1000",
           "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "5"}
    head = ("--num-cpus=0", f"--resources={json.dumps({DRIVER_RESOURCE: 4})}")
    with _started_cluster(env, [1, 1], head) as cluster:
        try:
            ray.init(address=str(cluster), log_to_driver=False)
            deadline = time.monotonic() + 60
            while len([n for n in ray.nodes() if n["Alive"]]) < 3:
                assert time.monotonic() < deadline, "the worker nodes did not join"
                time.sleep(0.5)
            yield cluster
        finally:
            ray.shutdown()
