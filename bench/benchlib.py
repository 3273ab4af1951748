"""Helpers the benchmark drivers share: starting a `keelson server` on a free loopback port,
stopping it, reading a process's memory and CPU time from /proc, and bench/memsample.py around a
process tree."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

MEMSAMPLE = Path(__file__).resolve().parent / "memsample.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen, timeout_s: float = 15) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def status_mib(pid: int, field: str) -> float:
    """A field of /proc/PID/status (VmRSS, VmHWM, RssAnon, ...) in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_hwm(pid: int) -> bool:
    """Resets the process's VmHWM to its current RSS (Linux >= 4.0); False where refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class MemSample:
    """bench/memsample.py on one process tree, from start until `peak()`."""

    def __init__(self, work: Path, label: str, pid: int):
        self.out, self.label = work / f"mem_{label}.json", label
        self.proc = subprocess.Popen([sys.executable, str(MEMSAMPLE), str(self.out), f"{label}={pid}"])

    def peak(self) -> dict:
        stop(self.proc)
        return json.loads(self.out.read_text())[self.label]


def start_keelson(binary: Path, work: Path, env: dict[str, str],
                  startup_timeout_s: float = 60) -> tuple[subprocess.Popen, str, Path]:
    """`keelson server` on a free loopback port, data dir `work/keelson-data`, log `work/keelson.log`;
    returns (process, base URL, log path) once /health/ready answers, or exits with the log's tail."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / "keelson.log"
    argv = [str(binary), "server", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(work / "keelson-data"), "--log-level", "warn"]
    # The peers (pandas, Evidently) have no server to log in to; authentication's cost is
    # measured apart, by bench/auth_cost.
    env = {**env, "KEELSON_AUTH__DISABLED": "true"}
    with open(log_path, "wb") as server_log:
        server = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                  stdout=server_log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if server.poll() is not None:
            raise SystemExit(f"keelson exited during start-up:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return server, url, log_path
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            stop(server)
            raise SystemExit(f"keelson not ready after {startup_timeout_s} s")
        time.sleep(0.1)
