"""Runs one oha pass and records what it measured together with where the CPU went meanwhile.

usage: loadgen.py OUT.json SERVER_PID OHA [OHA ARGS ...]

oha is run with `--no-tui --output-format json -o OUT.oha.json` added. OUT.json holds:
  requests, ok (2xx), non_2xx (by status), errors (oha's error distribution: socket errors,
  timeouts, requests cut at the deadline), rps (2xx answers per second of the pass), latency
  percentiles and max in ms, and the CPU accounting of the pass:
  server_cpu_s / server_us_per_req  CPU of the server's process tree (workers included), and per
                                    2xx answer: the server's cost of one request, whatever the
                                    load generator did
  oha_cpu_pct                       the load generator's share of all cores
  others_pct                        the share of all cores taken by processes outside the server
                                    and oha (this machine may be shared): a busy neighbour skews
                                    every timing of the pass
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cpumark import machine_busy_s, tree_cpu_s  # noqa: E402  (bench/cpumark.py)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    out, server_pid, oha, oha_args = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    raw = out.with_suffix(".oha.json")
    command = [oha, *oha_args, "--no-tui", "--output-format", "json", "-o", str(raw)]
    cpus = os.cpu_count() or 1

    busy0, server0, children0, self0 = machine_busy_s(), tree_cpu_s(server_pid), children_cpu_s(), self_cpu_s()
    start = time.monotonic()
    finished = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - start
    busy1, server1, children1, self1 = machine_busy_s(), tree_cpu_s(server_pid), children_cpu_s(), self_cpu_s()
    if finished.returncode != 0 or not raw.exists():
        sys.exit(f"oha failed ({finished.returncode}): {' '.join(command)}\n{finished.stdout[-3000:]}")

    report = json.loads(raw.read_text())
    statuses = {str(k): int(v) for k, v in (report.get("statusCodeDistribution") or {}).items()}
    errors = {str(k): int(v) for k, v in (report.get("errorDistribution") or {}).items()}
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    summary = report["summary"]
    duration = float(summary.get("total") or wall)
    percentiles = report.get("latencyPercentiles") or {}

    def ms(value):
        return None if value is None else float(value) * 1000.0

    server_cpu = server1 - server0
    oha_cpu = children1 - children0
    busy = busy1 - busy0
    others = max(0.0, busy - server_cpu - oha_cpu - (self1 - self0))
    result = {
        "command": command,
        "duration_s": duration,
        "wall_s": wall,
        "requests": ok + sum(v for k, v in statuses.items() if not k.startswith("2")) + sum(errors.values()),
        "ok": ok,
        "non_2xx": {k: v for k, v in statuses.items() if not k.startswith("2")},
        "errors": errors,
        "rps": ok / duration if duration > 0 else 0.0,
        "p50_ms": ms(percentiles.get("p50")),
        "p90_ms": ms(percentiles.get("p90")),
        "p99_ms": ms(percentiles.get("p99")),
        "p999_ms": ms(percentiles.get("p99.9")),
        "max_ms": ms(summary.get("slowest")),
        "mean_ms": ms(summary.get("average")),
        "server_cpu_s": server_cpu,
        "server_us_per_req": server_cpu / ok * 1e6 if ok else None,
        "server_cpu_pct": server_cpu / (wall * cpus) * 100,
        "oha_cpu_pct": oha_cpu / (wall * cpus) * 100,
        "others_pct": others / (wall * cpus) * 100,
        "cpus": cpus,
    }
    out.write_text(json.dumps(result, indent=1))
    bad = sum(result["non_2xx"].values()) + sum(errors.values())
    print(
        f"    {result['rps']:10.1f} req/s  p50 {result['p50_ms'] or 0:7.3f} ms  p99 {result['p99_ms'] or 0:7.3f} ms"
        f"  server {result['server_us_per_req'] or 0:7.1f} us/req  oha {result['oha_cpu_pct']:4.0f}%"
        f"  others {result['others_pct']:4.0f}%" + (f"  NOT OK: {bad} failed" if bad else ""),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
