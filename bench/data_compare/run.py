"""Keelson's dataset ingest against pandas on the same CSV, one after the other on this machine.

Keelson: a release `keelson server` on a fresh temp dir whose import root is the CSV's directory;
the timed request is `POST /api/v1/datasets/bench/ingest` (read, Parquet version, profile, the 10
expectations as a suite), its peak memory that of the server process (bench/memsample.py).
pandas: pandas_side.py in the project's virtualenv doing the same work; its peak memory is the
larger of memsample's figure and the process's own ru_maxrss.

Prints both times, both peak memories, the speed ratio (pandas / keelson: above 1 = keelson
faster) and the memory ratio (pandas / keelson: above 1 = keelson smaller), and whether the 10
verdicts agree; writes the same as JSON to --out. Exit status 1 when the ingest failed or the
verdicts disagree: a fast wrong answer is not a result.

usage: run.py --keelson-bin PATH [--rows N] [--csv PATH] [--out RESULT.json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from benchlib import MemSample, start_keelson, stop  # noqa: E402
from common import DTYPES, SUITE  # noqa: E402
from generate import default_path  # noqa: E402

INGEST_TIMEOUT_S = 3600
STARTUP_TIMEOUT_S = 60


def log(message: str) -> None:
    print(f"[data-bench] {message}", file=sys.stderr, flush=True)


def ensure_csv(path: Path | None, rows: int) -> Path:
    """The CSV at `path` (default: generate.py's for `rows`); generated first when missing. A file
    that is there is used as it is, whatever its row count."""
    path = path or default_path(rows)
    if not path.exists():
        log(f"generating {rows:,} rows into {path}")
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--rows", str(rows), str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def keelson_env(import_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    env["KEELSON_DATA__IMPORT_ROOT"] = str(import_root)
    return env


def run_keelson(binary: Path, csv: Path, work: Path) -> dict:
    server, url, log_path = start_keelson(binary, work, keelson_env(csv.parent), STARTUP_TIMEOUT_S)
    try:
        source = {"kind": "file", "path": csv.name, "format": "csv",
                  "csv": {"separator": ",", "has_header": True, "null_values": [""]}, "schema": DTYPES}
        memory = MemSample(work, "keelson", server.pid)
        started = time.perf_counter()
        response = requests.post(f"{url}/api/v1/datasets/bench/ingest",
                                 json={"source": source, "layer": "bronze", "expectations": SUITE},
                                 timeout=INGEST_TIMEOUT_S)
        seconds = time.perf_counter() - started
        time.sleep(0.6)  # one more memsample tick after the answer
        peak = memory.peak()
        if response.status_code != 200:
            raise SystemExit(f"ingest answered {response.status_code}: {response.text[:2000]}\n"
                             f"--- {log_path} ---\n{log_path.read_text(errors='replace')[-3000:]}")
        body = response.json()
        (work / "keelson_answer.json").write_text(json.dumps(body, indent=1))
        results = body["validation"]["results"]
        return {"seconds": round(seconds, 3), "peak_rss_mib": peak["hwm_sum_mib"], "memsample": peak,
                "rows": body["version"]["row_count"], "parquet_bytes": body["version"]["size_bytes"],
                "verdicts": [r["success"] for r in sorted(results, key=lambda r: r["index"])]}
    finally:
        stop(server)


def run_pandas(python: str, csv: Path, work: Path) -> dict:
    argv = [python, str(HERE / "pandas_side.py"), str(csv)]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    memory = MemSample(work, "pandas", proc.pid)
    out, _ = proc.communicate()
    seconds = time.perf_counter() - started
    peak = memory.peak()
    if proc.returncode != 0:
        raise SystemExit(f"pandas_side.py failed with status {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    # The process's own high-water mark catches a peak in its last half second, which the
    # sampler (0.5 s ticks, gone with the process) can miss.
    result["peak_rss_mib"] = max(result["peak_rss_mib"], peak["hwm_sum_mib"])
    result["process_seconds"] = round(seconds, 3)  # with interpreter start and imports
    result["memsample"] = peak
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keelson-bin", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows to generate (default 5,000,000)")
    parser.add_argument("--csv", type=Path, help="the CSV (generated there when missing; default under /tmp)")
    parser.add_argument("--pandas-python", default=sys.executable, help="the venv's python for pandas_side.py")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log, answer)")
    args = parser.parse_args()

    csv = ensure_csv(args.csv, args.rows)
    work = Path(tempfile.mkdtemp(prefix="keelson-data-bench."))
    log(f"csv {csv} ({csv.stat().st_size / 2**20:.0f} MiB), work dir {work}")
    try:
        log("keelson: ingest with profile and the 10 expectations")
        keelson = run_keelson(args.keelson_bin, csv, work)
        log("pandas: read_csv, Parquet, profile, the 10 expectations")
        pandas = run_pandas(args.pandas_python, csv, work)
    finally:
        if args.keep:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    agree = keelson["verdicts"] == pandas["verdicts"] and keelson["rows"] == pandas["rows"]
    result = {
        "rows": pandas["rows"], "csv_bytes": csv.stat().st_size,
        "keelson": keelson, "pandas": pandas,
        "speed_ratio": round(pandas["seconds"]["total"] / keelson["seconds"], 2),
        "memory_ratio": round(pandas["peak_rss_mib"] / keelson["peak_rss_mib"], 2),
        "verdicts_agree": agree,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")

    names = [e["type"] for e in SUITE["expectations"]]
    print(f"rows {result['rows']:,}, CSV {result['csv_bytes'] / 2**20:.0f} MiB")
    print(f"{'':10} {'seconds':>9} {'peak RSS MiB':>13}")
    print(f"{'keelson':10} {keelson['seconds']:9.2f} {keelson['peak_rss_mib']:13.1f}")
    print(f"{'pandas':10} {pandas['seconds']['total']:9.2f} {pandas['peak_rss_mib']:13.1f}   phases {pandas['seconds']}")
    print(f"speed ratio (pandas/keelson) {result['speed_ratio']}x, memory ratio (pandas/keelson) {result['memory_ratio']}x")
    print(f"verdicts agree: {'yes' if agree else 'NO'}")
    for name, k, p in zip(names, keelson["verdicts"], pandas["verdicts"]):
        print(f"  {name:22} keelson {'pass' if k else 'fail':5} pandas {'pass' if p else 'fail':5}{'' if k == p else '  <- differs'}")
    log(f"result: {args.out}")
    sys.exit(0 if agree else 1)


if __name__ == "__main__":
    main()
