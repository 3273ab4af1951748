"""Helpers the benchmark drivers share: a free loopback port, stopping a server, reading a
process's memory and CPU time from /proc, and bench/memsample.py around a process tree."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

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
