#!/usr/bin/env python3
"""What authentication costs the server: the same Keelson binary and data, the same requests,
with authentication off (anonymous callers, as a developer's loopback server) and on (a service
token, and a user's password as the `mlflow` client sends it), compared by the server's CPU time
per request (from /proc, so the client's speed does not matter).

    KEELSON_BIN=$CARGO_TARGET_DIR/release/keelson python3 bench/auth_cost/run.py [REQUESTS]

Requests: `runs/log-batch` (one metric; a write, so the audit log is in all three) and
`runs/get` (a read). The figure to watch is the difference per request: the issue's bound is 5 µs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchlib import cpu_seconds, free_port, stop  # noqa: E402

PASSWORD = "bench-password-for-auth-cost"


def start(binary: Path, work: Path, auth_disabled: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    env["KEELSON_AUTH__DISABLED"] = "true" if auth_disabled else "false"
    argv = [str(binary), "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(work / "data"),
            "--log-level", "warn", "--no-worker"]
    log = open(work / "server.log", "ab")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.1)
    stop(proc)
    raise SystemExit("keelson did not start")


def senders(url: str, session: requests.Session, run_id: str):
    body = {"run_id": run_id, "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}]}
    return {
        "log-batch": lambda i: session.post(f"{url}/api/2.0/mlflow/runs/log-batch",
                                            json={**body, "metrics": [{**body["metrics"][0], "step": i}]}),
        "get": lambda i: session.get(f"{url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}),
    }


def burst(proc: subprocess.Popen, send, start: int, count: int) -> float:
    """Server CPU seconds for `count` requests."""
    before = cpu_seconds(proc.pid)
    for i in range(start, start + count):
        answer = send(i)
        if answer.status_code != 200:
            raise SystemExit(f"HTTP {answer.status_code}: {answer.text[:300]}")
    return cpu_seconds(proc.pid) - before


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/keelson-target"))
    binary = Path(os.environ.get("KEELSON_BIN", f"{target}/release/keelson"))
    with tempfile.TemporaryDirectory(prefix="keelson-auth-cost-") as tmp:
        work = Path(tmp)
        database = f"sqlite://{work / 'data' / 'keelson.db'}"
        (work / "data").mkdir()
        token = subprocess.run([str(binary), "token", "create", "bench", "--role", "admin", "--database-url", database],
                               capture_output=True, text=True, check=True).stdout.strip()
        add = subprocess.run([str(binary), "user", "add", "benchuser", "--role", "admin", "--database-url", database],
                             input=PASSWORD + "\n", capture_output=True, text=True)
        assert add.returncode == 0, add.stderr
        modes = [("auth off (anonymous)", True, None), ("token (Bearer)", False, ("bearer", token)),
                 ("password (Basic, cached)", False, ("basic", PASSWORD))]
        servers = []
        try:
            # All three at once on one database, measured in alternating rounds, so the machine's
            # drift falls on every mode alike.
            for label, disabled, auth in modes:
                proc, url = start(binary, work, disabled)
                session = requests.Session()
                if auth and auth[0] == "bearer":
                    session.headers["Authorization"] = f"Bearer {auth[1]}"
                elif auth:
                    session.auth = ("benchuser", auth[1])
                servers.append((label, proc, url, session))
            _, _, url, session = servers[1]
            experiment = session.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "auth-cost"}).json()
            run_id = session.post(f"{url}/api/2.0/mlflow/runs/create",
                                  json={"experiment_id": experiment["experiment_id"]}).json()["run"]["info"]["run_id"]
            cpu = {(label, name): 0.0 for label, *_ in servers for name in ("log-batch", "get")}
            rounds = 10
            per_round = max(count // rounds, 1)
            for round_index in range(rounds + 1):
                for label, proc, url, session in servers:
                    for name, send in senders(url, session, run_id).items():
                        seconds = burst(proc, send, round_index * per_round, per_round)
                        if round_index > 0:  # the first round warms caches and credential caches
                            cpu[(label, name)] += seconds
        finally:
            for _, proc, _, _ in servers:
                stop(proc)
        measured = per_round * rounds
        rows = [(label, {name: cpu[(label, name)] / measured * 1e6 for name in ("log-batch", "get")})
                for label, *_ in servers]
    base = rows[0][1]
    print(f"server CPU per request, {count} requests of each kind per mode in 10 alternating rounds "
          f"({binary.name}, {os.cpu_count()} CPUs)")
    print(f"{'':<28}{'log-batch µs':>14}{'Δ':>8}{'get µs':>10}{'Δ':>8}")
    for label, result in rows:
        print(f"{label:<28}{result['log-batch']:>14.1f}{result['log-batch'] - base['log-batch']:>+8.1f}"
              f"{result['get']:>10.1f}{result['get'] - base['get']:>+8.1f}")


if __name__ == "__main__":
    main()
