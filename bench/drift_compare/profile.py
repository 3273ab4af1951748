"""Where Keelson's drift report spends its time: the report request at several sizes, and a
`perf record` of the server during it.

usage: profile.py --keelson-bin PATH [--rows 100000,300000,1000000] [--perf-rows 1000000]
                  [--requests 3] [--out DIR]

For each size: a fresh server, both files ingested, `--requests` report requests (times and the
request's peak RSS, as run.py measures them). At --perf-rows, `perf record -F 999 -g` runs on the
server over the requests; DIR gets perf.data and `perf report --no-children` by symbol (self time)
and by shared object. Needs `perf` and a kernel that lets this user profile the server.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import default_dir, generate  # noqa: E402
sys.path.insert(0, str(HERE.parent))
from benchlib import reset_hwm, start_keelson, status_mib, stop  # noqa: E402
from run import keelson_env, log, post  # noqa: E402

REPORT = {"reference": {"dataset": "ref"}, "current": {"dataset": "cur"}, "options": {}}


class RssSplit:
    """Samples the server's anonymous and file-backed resident memory every 5 ms while a request
    runs: the peak of each says whether a high-water mark is heap or mapped file pages."""

    def __init__(self, pid: int):
        self.pid, self.peaks, self.done = pid, {"peak_anon_mib": 0.0, "peak_file_mib": 0.0}, threading.Event()

    def sample(self) -> None:
        while not self.done.wait(0.005):
            self.peaks["peak_anon_mib"] = max(self.peaks["peak_anon_mib"], status_mib(self.pid, "RssAnon"))
            self.peaks["peak_file_mib"] = max(self.peaks["peak_file_mib"], status_mib(self.pid, "RssFile"))

    def __enter__(self) -> "RssSplit":
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()


def one_size(binary: Path, rows: int, seed: int, requests_n: int, perf_out: Path | None) -> dict:
    data = generate(default_dir(rows, seed), rows, seed)
    work = Path(tempfile.mkdtemp(prefix="keelson-drift-profile."))
    server, url, log_path = start_keelson(binary, work, keelson_env(data))
    perf = None
    try:
        for name in ("ref", "cur"):
            post(f"{url}/api/v1/datasets/{name}/ingest", {"source": {"kind": "file", "path": f"{name}.parquet"}},
                 (200, 201), f"ingest of {name}", log_path)
        if perf_out is not None:
            perf_out.mkdir(parents=True, exist_ok=True)
            perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", str(perf_out / "perf.data"),
                                     "-p", str(server.pid)], stderr=subprocess.DEVNULL)
            time.sleep(1)
        timings = []
        for _ in range(requests_n):
            baseline = status_mib(server.pid, "VmRSS")
            reset_hwm(server.pid)
            with RssSplit(server.pid) as split:
                _, seconds = post(f"{url}/api/v1/monitoring/reports", REPORT, (200, 201), "report", log_path)
            timings.append({"seconds": round(seconds, 3), "baseline_rss_mib": baseline,
                            "peak_rss_mib": status_mib(server.pid, "VmHWM"), **split.peaks})
        return {"rows": rows, "requests": timings}
    finally:
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        stop(server)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keelson-bin", type=Path, required=True)
    parser.add_argument("--rows", default="100000,300000,1000000")
    parser.add_argument("--perf-rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "profile")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        log(f"{rows:,} rows")
        result = one_size(args.keelson_bin, rows, args.seed, args.requests,
                          args.out if rows == args.perf_rows else None)
        print(json.dumps(result), flush=True)
        results.append(result)
    (args.out / "sizes.json").write_text(json.dumps(results, indent=1) + "\n")
    if (args.out / "perf.data").exists():
        for name, extra in (("perf_symbols.txt", ["--sort", "symbol"]), ("perf_dso.txt", ["--sort", "dso"]),
                            ("perf_threads.txt", ["--sort", "comm"])):
            with open(args.out / name, "w") as handle:
                subprocess.run(["perf", "report", "-i", str(args.out / "perf.data"), "--no-children", "--stdio",
                                "-g", "none", "--percent-limit", "0.3", *extra], stdout=handle,
                               stderr=subprocess.DEVNULL, check=False)
        log(f"perf reports in {args.out}")


if __name__ == "__main__":
    main()
