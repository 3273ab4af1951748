"""Fixtures for the client tests: a real `keelson server` process per test module.

The binary comes from KEELSON_BIN (tests/clients/run sets it to the debug build). Each server gets
its own free loopback port, a fresh data directory and a log file; a failing test shows the log's
tail in its report.

Backends: the fixture is parametrised over metadata backends. Only the embedded default
(`sqlite`) is wired up so far; a `postgres` entry in `BACKENDS` plus a branch in
`backend_args` (passing `--database-url` with a fresh schema of KEELSON_TEST_DATABASE_URL) is all a
PostgreSQL run needs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import pytest
import requests

STARTUP_TIMEOUT_S = float(os.environ.get("KEELSON_TEST_STARTUP_TIMEOUT", "30"))
SHUTDOWN_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 200

BACKENDS: list[str] = ["sqlite"]


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


def backend_args(backend: str) -> list[str]:
    """Extra `keelson server` flags that select a metadata backend."""
    if backend == "sqlite":
        return []  # the embedded default: SQLite in the data directory
    raise ValueError(f"unknown test backend {backend!r}")


def read_log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class KeelsonServer:
    url: str
    data_dir: Path
    proc: subprocess.Popen = field(repr=False)
    log_path: Path
    backend: str = "sqlite"
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """`requests` against this server with a default timeout; `path` starts with '/'."""
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def log(self) -> str:
        return read_log_tail(self.log_path)


def child_env() -> dict[str, str]:
    # The developer's own KEELSON_* settings (a database URL, a port) must not leak into the
    # server under test; it sees only defaults plus the flags the fixture passes.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    env.setdefault("RUST_BACKTRACE", "1")
    return env


def start_server(
    workdir: Path, backend: str = "sqlite", extra_args: Sequence[str] = ()
) -> KeelsonServer:
    """Start `keelson server` in `workdir` and wait until /health/ready answers 200."""
    binary = keelson_bin()
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    attempts = 3  # a free port can be taken between our probe and the server's bind
    for attempt in range(1, attempts + 1):
        port = free_port()
        argv = [str(binary), "server", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--data-dir", str(data_dir), *backend_args(backend), *extra_args]
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            # cwd is the scratch dir so no keelson.toml of the checkout is picked up.
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env=child_env(),
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
        )
        failure = wait_until_ready(server)
        if failure is None:
            return server
        stop_server(server)
        port_taken = "in use" in server.log().lower()
        if proc.returncode not in (None, 0) and port_taken and attempt < attempts:
            continue
        pytest.fail(f"{failure}\n--- {log_path} ---\n{server.log()}", pytrace=False)
    raise AssertionError("unreachable")


def wait_until_ready(server: KeelsonServer) -> str | None:
    """None once GET /health/ready answers 200; otherwise why not."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        code = server.proc.poll()
        if code is not None:
            return f"keelson server exited with status {code} before it was ready"
        try:
            response = server.get("/health/ready", timeout=2)
            if response.status_code == 200:
                return None
            last = f"HTTP {response.status_code}: {response.text[:500]}"
        except requests.RequestException as error:
            last = repr(error)
        time.sleep(0.1)
    return f"keelson server not ready within {STARTUP_TIMEOUT_S:.0f} s (last: {last})"


def stop_server(server: KeelsonServer) -> int | None:
    """SIGTERM, wait (bounded), then SIGKILL. Returns the exit status."""
    server.session.close()
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            with open(server.log_path, "a") as log:
                log.write(f"[conftest] no exit {SHUTDOWN_TIMEOUT_S:.0f} s after SIGTERM; killed\n")
    return proc.returncode


@pytest.fixture(scope="module", params=BACKENDS)
def keelson_server(request, tmp_path_factory) -> Iterator[KeelsonServer]:
    backend = request.param
    server = start_server(tmp_path_factory.mktemp(f"keelson-{backend}"), backend)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server's log to the report of a failing test that used a server."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    server = getattr(item, "funcargs", {}).get("keelson_server")
    if isinstance(server, KeelsonServer):
        report.sections.append((f"keelson server log ({server.log_path})", server.log()))
