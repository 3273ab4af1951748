"""Fixtures for the client tests: a real `keelson server` process per test module.

The binary comes from KEELSON_BIN (tests/clients/run sets it to the debug build). Each server gets
its own free loopback port, a fresh data directory and a log file; a failing test shows the log's
tail in its report.

Backends: `keelson_server` is parametrised over metadata backends: the embedded default
(`sqlite`) and `postgres`, which gives each server a fresh schema of KEELSON_TEST_DATABASE_URL
(created and dropped with `psql`, so the venv needs no PostgreSQL driver). Without that variable
the `postgres` cases are reported as skipped; scripts/test always sets it.

MLflow: `mlflow_tracking` (module scope) yields a server with MLFLOW_TRACKING_URI pointing at it,
for the tests that drive the unmodified `mlflow` client. With KEELSON_TEST_REFERENCE_MLFLOW=1 it
starts the real `mlflow server` of the venv instead of keelson (SQLite backend, proxied artifacts):
the same tests then prove they encode MLflow's own behaviour. In that mode the REST calls the
client made are read back from the server's access log; KEELSON_TEST_RECORD_ENDPOINTS=<file>
writes them there as JSON at the end of the session (see MLFLOW_ENDPOINTS.md).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterator, Mapping, Sequence
from urllib.parse import unquote

import pytest
import requests

STARTUP_TIMEOUT_S = float(os.environ.get("KEELSON_TEST_STARTUP_TIMEOUT", "30"))
SHUTDOWN_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 200

DATABASE_URL_ENV = "KEELSON_TEST_DATABASE_URL"
REFERENCE_MLFLOW = os.environ.get("KEELSON_TEST_REFERENCE_MLFLOW") == "1"
# MLflow's server imports a lot and migrates its database on the first start.
REFERENCE_STARTUP_TIMEOUT_S = max(STARTUP_TIMEOUT_S, 120.0)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=pytest.mark.skipif(
            not os.environ.get(DATABASE_URL_ENV),
            reason=f"{DATABASE_URL_ENV} is not set (scripts/test sets it)",
        ),
    ),
]


def keelson_bin() -> Path:
    value = os.environ.get("KEELSON_BIN")
    if not value:
        pytest.exit("KEELSON_BIN is not set; run the client tests through tests/clients/run", 2)
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.exit(f"KEELSON_BIN={value} is not an executable file", 2)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def psql(url: str, sql: str) -> None:
    """One statement through `psql` (installed with PostgreSQL), failing the test on error."""
    # From / so psql does not complain that it cannot read the caller's working directory.
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]
    try:
        done = subprocess.run(argv, cwd="/", capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.fail("psql is not installed; it comes with PostgreSQL", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"psql failed ({done.returncode}) on {sql!r}: {done.stderr}", pytrace=False)


def backend_args(backend: str) -> tuple[list[str], Callable[[], None]]:
    """Extra `keelson server` flags that select a metadata backend, and what undoes its set-up."""
    if backend == "sqlite":
        return [], lambda: None  # the embedded default: SQLite in the data directory
    if backend == "postgres":
        base = os.environ.get(DATABASE_URL_ENV)
        if not base:
            pytest.skip(f"{DATABASE_URL_ENV} is not set")
        # `t_` prefix: scripts/lib/postgres.sh drops leftovers of interrupted runs by that prefix.
        schema = f"t_py_{uuid.uuid4().hex}"
        psql(base, f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}options[search_path]={schema}"
        return ["--database-url", url], lambda: psql(
            base, f"DROP SCHEMA IF EXISTS {schema} CASCADE"
        )
    raise ValueError(f"unknown test backend {backend!r}")


def read_log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class KeelsonServer:
    # True for the real `mlflow server` KEELSON_TEST_REFERENCE_MLFLOW=1 puts in keelson's place.
    reference: ClassVar[bool] = False

    url: str
    data_dir: Path
    proc: subprocess.Popen = field(repr=False)
    log_path: Path
    backend: str = "sqlite"
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    cleanup: Callable[[], None] = field(default=lambda: None, repr=False)
    # (method, path) of each request a test sent itself, to tell them from the MLflow client's.
    sent: list[tuple[str, str]] = field(default_factory=list, repr=False)
    # The directory file sources are read from (`data.import_root`), for servers that have one.
    import_root: Path | None = None

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """`requests` against this server with a default timeout; `path` starts with '/'. No
        answer may carry a secret value a test stored (see `secret_canary`)."""
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
        self.sent.append((method.upper(), path.split("?", 1)[0]))
        response = self.session.request(method, self.url + path, **kwargs)
        leaked = [canary for canary in SECRET_CANARIES if canary in response.text]
        assert not leaked, f"{method} {path} answered a stored secret value"
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def log(self) -> str:
        return read_log_tail(self.log_path)


TEST_SECRET_KEY = base64.b64encode(os.urandom(32)).decode()

# Secret values tests stored in servers (and tokens they were given): no answer of the suite and
# no line of any server's log may contain one. Checked per answer in `KeelsonServer.request` and
# over every log at the end of the session.
SECRET_CANARIES: set[str] = set()
SERVER_LOGS: set[Path] = set()


def secret_canary(value: str) -> str:
    """Registers a secret value the suite must never see again; returns it."""
    if len(value) >= 8:
        SECRET_CANARIES.add(value)
    return value


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_server_log():
    yield
    found = []
    for log in sorted(SERVER_LOGS):
        if not log.exists():
            continue
        text = log.read_text(errors="replace")
        found += [f"{log}: a stored secret value ({canary[:3]}…)" for canary in SECRET_CANARIES if canary in text]
    assert not found, "\n".join(found)


def child_env() -> dict[str, str]:
    # The developer's own KEELSON_* settings (a database URL, a port) must not leak into the
    # server under test; it sees only defaults plus the flags the fixture passes.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    env.setdefault("RUST_BACKTRACE", "1")
    # The receivers, sources and external runtimes these tests start listen on loopback, which
    # the default egress policy refuses; an operator allows internal destinations the same way.
    # (The refusals themselves are tested in crates/keelson-server/tests/security.rs.)
    env["KEELSON_EGRESS__ALLOW_CIDRS"] = "127.0.0.0/8,::1/128"
    # The secret store's key, as an operator of a PostgreSQL deployment sets it on every replica
    # (SQLite servers would make a key file of their own without it). A fresh key per test run.
    env["KEELSON_SECRETS__KEY"] = TEST_SECRET_KEY
    # These servers listen on loopback and are set so explicitly, as a developer's would be;
    # test_auth.py starts servers with authentication on.
    env["KEELSON_AUTH__DISABLED"] = "true"
    library = onnxruntime_library()
    if library is not None:
        # Every test server can serve deployments with `runtime: onnxruntime`.
        env["KEELSON_SERVING__ONNXRUNTIME_LIBRARY"] = str(library)
    return env


def onnxruntime_library() -> Path | None:
    """The libonnxruntime.so the pinned `onnxruntime` wheel ships, if the venv has it."""
    try:
        import onnxruntime
    except ImportError:
        return None
    libraries = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so*"))
    return libraries[0] if libraries else None


def start_server(
    workdir: Path,
    backend: str = "sqlite",
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> KeelsonServer:
    """Start `keelson server` in `workdir` and wait until /health/ready answers 200.

    `env` adds variables (e.g. `KEELSON_DATA__IMPORT_ROOT`) to the server's environment, on top
    of `child_env()`, which drops the caller's own KEELSON_* settings."""
    server_env = {**child_env(), **(env or {})}
    binary = keelson_bin()
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    SERVER_LOGS.add(log_path)
    backend_flags, cleanup = backend_args(backend)
    attempts = 3  # a free port can be taken between our probe and the server's bind
    for attempt in range(1, attempts + 1):
        port = free_port()
        argv = [str(binary), "server", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--data-dir", str(data_dir), *backend_flags, *extra_args]
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            # cwd is the scratch dir so no keelson.toml of the checkout is picked up.
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env=server_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = KeelsonServer(
            url=f"http://127.0.0.1:{port}",
            data_dir=data_dir,
            proc=proc,
            log_path=log_path,
            backend=backend,
            cleanup=cleanup,
        )
        failure = wait_until_ready(server)
        if failure is None:
            return server
        port_taken = "in use" in server.log().lower()
        if server.proc.poll() not in (None, 0) and port_taken and attempt < attempts:
            stop_process(server)
            continue
        stop_server(server)
        pytest.fail(f"{failure}\n--- {log_path} ---\n{server.log()}", pytrace=False)
    raise AssertionError("unreachable")


def start_secured_server(workdir: Path, backend: str) -> KeelsonServer:
    """`keelson server` with authentication on, and the admin token its first start printed (as
    `server.admin_token`)."""
    server = start_server(workdir, backend, env={"KEELSON_AUTH__DISABLED": "false"})
    match = re.search(r"^\s+(kst_[A-Za-z0-9_-]+)\s*$", server.log(), re.MULTILINE)
    if not match:
        log = server.log()
        stop_server(server)
        pytest.fail(f"the first start prints an admin token:\n{log}", pytrace=False)
    server.admin_token = match.group(1)
    return server


def wait_until_ready(
    server: KeelsonServer, path: str = "/health/ready", timeout_s: float = STARTUP_TIMEOUT_S
) -> str | None:
    """None once GET `path` answers 200; otherwise why not."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    what = "mlflow server" if server.reference else "keelson server"
    while time.monotonic() < deadline:
        code = server.proc.poll()
        if code is not None:
            return f"{what} exited with status {code} before it was ready"
        try:
            response = server.get(path, timeout=2)
            if response.status_code == 200:
                return None
            last = f"HTTP {response.status_code}: {response.text[:500]}"
        except requests.RequestException as error:
            last = repr(error)
        time.sleep(0.1)
    return f"{what} not ready within {timeout_s:.0f} s (last: {last})"


def stop_process(server: KeelsonServer) -> int | None:
    """SIGTERM, wait (bounded), then SIGKILL. Returns the exit status."""
    server.session.close()
    proc = server.proc

    def signal_server(signum: int) -> None:
        if server.reference:
            # `mlflow server` runs uvicorn as a child in the session the fixture gave it.
            try:
                os.killpg(proc.pid, signum)
            except ProcessLookupError:
                pass
        elif proc.poll() is None:
            proc.send_signal(signum)

    if proc.poll() is None or server.reference:
        signal_server(signal.SIGTERM)
        try:
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            signal_server(signal.SIGKILL)
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            with open(server.log_path, "a") as log:
                log.write(f"[conftest] no exit {SHUTDOWN_TIMEOUT_S:.0f} s after SIGTERM; killed\n")
    return proc.returncode


def stop_server(server: KeelsonServer) -> int | None:
    """Stop the process, then undo the backend's set-up (a PostgreSQL schema)."""
    try:
        return stop_process(server)
    finally:
        server.cleanup()


@pytest.fixture(scope="module", params=BACKENDS)
def keelson_server(request, tmp_path_factory) -> Iterator[KeelsonServer]:
    backend = request.param
    server = start_server(tmp_path_factory.mktemp(f"keelson-{backend}"), backend)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module", params=BACKENDS)
def data_server(request, tmp_path_factory) -> Iterator[KeelsonServer]:
    """`keelson_server` with an import root for file sources (`KEELSON_DATA__IMPORT_ROOT`), an
    empty directory of its own: tests write their source files under `server.import_root`."""
    backend = request.param
    workdir = tmp_path_factory.mktemp(f"keelson-data-{backend}")
    import_root = workdir / "imports"
    import_root.mkdir()
    server = start_server(workdir, backend, env={"KEELSON_DATA__IMPORT_ROOT": str(import_root)})
    server.import_root = import_root
    try:
        yield server
    finally:
        stop_server(server)


# --- the MLflow client's server ------------------------------------------------------------------


class MlflowReferenceServer(KeelsonServer):
    """The real `mlflow server` from the venv, started in keelson's place."""

    reference: ClassVar[bool] = True


def start_reference_mlflow(workdir: Path) -> MlflowReferenceServer:
    """`mlflow server` with a SQLite backend and proxied artifacts (`mlflow-artifacts:` URIs)."""
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    log_path = workdir / "server.log"
    env = child_env()
    env["PYTHONUNBUFFERED"] = "1"  # the access log is how the endpoints get recorded
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no huey workers for a test server
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.pop("MLFLOW_TRACKING_URI", None)
    attempts = 3
    for attempt in range(1, attempts + 1):
        port = free_port()
        argv = [str(mlflow_cli), "server"]
        argv += ["--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}"]
        argv += ["--serve-artifacts", "--artifacts-destination", str(workdir / "artifacts")]
        # Two workers (MLflow's default is 4): the 1,000-run search test creates its runs in
        # parallel, but each worker takes seconds of CPU to import mlflow at start-up.
        argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: uvicorn is a child of the CLI
            )
        server = MlflowReferenceServer(
            url=f"http://127.0.0.1:{port}",
            data_dir=workdir,
            proc=proc,
            log_path=log_path,
            backend="mlflow-reference",
        )
        failure = wait_until_ready(server, "/health", REFERENCE_STARTUP_TIMEOUT_S)
        if failure is None:
            return server
        stop_server(server)
        if "address already in use" in server.log().lower() and attempt < attempts:
            continue
        pytest.fail(f"{failure}\n--- {log_path} ---\n{server.log()}", pytrace=False)
    raise AssertionError("unreachable")


# `... INFO: 127.0.0.1:43830 - "GET /api/2.0/mlflow/experiments/get?experiment_id=0 HTTP/1.1" 200`
ACCESS_LOG_LINE = re.compile(r'"([A-Z]+) (/[^ "?]*)(?:\?[^ "]*)? HTTP/[0-9.]+" (\d{3})')
RECORDED_REQUESTS: list[dict] = []


def record_requests(server: KeelsonServer, module: str, log_offset: int) -> None:
    """Remember (method, path, status) of each request in the access log after `log_offset`,
    and whether the test sent it with `requests` ("test") or the MLflow client did ("client")."""
    with open(server.log_path, "rb") as log:
        log.seek(log_offset)
        text = log.read().decode(errors="replace")
    # Compared percent-decoded: uvicorn logs its own re-encoding of the path.
    by_test = Counter((method, unquote(path)) for method, path in server.sent)
    server.sent.clear()
    for line in text.splitlines():
        match = ACCESS_LOG_LINE.search(line)
        if not match or match.group(2) == "/health":
            continue
        method, path, status = match.groups()
        sender = "client"
        if by_test[(method, unquote(path))] > 0:
            by_test[(method, unquote(path))] -= 1
            sender = "test"
        RECORDED_REQUESTS.append(
            {"method": method, "path": path, "status": int(status), "module": module, "by": sender}
        )


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("KEELSON_TEST_RECORD_ENDPOINTS")
    if target and RECORDED_REQUESTS:
        Path(target).write_text(json.dumps(RECORDED_REQUESTS, indent=1) + "\n")


MLFLOW_TARGETS = (
    [pytest.param("mlflow-reference", id="mlflow-reference")] if REFERENCE_MLFLOW else BACKENDS
)


@pytest.fixture(scope="session")
def reference_mlflow_server(tmp_path_factory) -> Iterator[MlflowReferenceServer]:
    """One `mlflow server` for the whole session: it takes 10-40 s to start, keelson well under 1 s.
    The tests do not depend on an empty server (they make uniquely named experiments)."""
    server = start_reference_mlflow(tmp_path_factory.mktemp("mlflow-reference"))
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module", params=MLFLOW_TARGETS)
def mlflow_tracking(request, tmp_path_factory) -> Iterator[KeelsonServer]:
    """A tracking server for the `mlflow` client, with MLFLOW_TRACKING_URI set to it.

    A fresh keelson per module on each backend; or, with KEELSON_TEST_REFERENCE_MLFLOW=1, the real
    `mlflow server` (one per session)."""
    import mlflow  # only the MLflow tests pay for importing it
    import mlflow.tracking.fluent

    target = request.param
    if target == "mlflow-reference":
        server = request.getfixturevalue("reference_mlflow_server")
    else:
        server = start_server(tmp_path_factory.mktemp(f"keelson-mlflow-{target}"), target)
    log_offset = server.log_path.stat().st_size
    server.sent.clear()
    previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
    with pytest.MonkeyPatch.context() as patch:
        # A failing server must fail the test at once, not after minutes of client retries.
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        patch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        # `mlflow.set_experiment` exports the id here; the undo at the end restores the original.
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        mlflow.set_tracking_uri(server.url)  # sets MLFLOW_TRACKING_URI for subprocesses too
        try:
            yield server
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            # The fluent API's active experiment would point into the next module's server.
            mlflow.tracking.fluent._active_experiment_id = None
            # `delenv` above records no undo when the variable was absent, and
            # `mlflow.set_experiment` sets it: drop it so it cannot leak into the next module
            # (whose fresh server may not have that experiment). The patch context then restores
            # a value that was set before.
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
            mlflow.set_tracking_uri(previous_uri)
            if previous_uri is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_uri
            if server.reference:
                record_requests(server, request.module.__name__, log_offset)
            else:
                stop_server(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server's log to the report of a failing test that used a server."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    for name in ("keelson_server", "mlflow_tracking", "data_server"):
        server = funcargs.get(name)
        if isinstance(server, KeelsonServer):
            what = "mlflow server" if server.reference else "keelson server"
            report.sections.append((f"{what} log ({server.log_path})", server.log()))
