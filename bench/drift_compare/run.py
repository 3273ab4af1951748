"""Keelson's drift report against Evidently's DataDriftPreset on the same two Parquet files, one
after the other on this machine.

Keelson: a release `keelson server` on a fresh temp dir whose import root is the files' directory.
Both files are ingested as datasets `ref` and `cur` (timed, reported apart: the analogue of
Evidently's DataFrames being in memory); the timed request is `POST /api/v1/monitoring/reports`
with `{"reference": {"dataset": "ref"}, "current": {"dataset": "cur"}, "options": {}}`. Its memory
is the server process's kernel high-water mark (VmHWM) over that request alone: reset through
/proc/PID/clear_refs just before it, read just after (bench/memsample.py samples beside it as a
check); the RSS just before the request is shown as the baseline.
Evidently: evidently_side.py in its own virtualenv and process: pandas.read_parquet (timed apart),
then Report([DataDriftPreset()]).run + .dict() (timed); its memory is the process's peak RSS.

Prints both times, both peak memories, the ratios (Evidently / Keelson: above 1 = Keelson faster or
smaller) against the issue's targets (>= 100x faster, <= 1/10 the memory), and the per-column
verdicts side by side; writes the table to results/latest.txt and the figures to
results/latest.json (raw answers in results/latest-raw/). Exit status 1 when a request failed or
any verdict (per column, or the dataset's) differs: a fast wrong answer is not a result.

usage: run.py --keelson-bin PATH --evidently-python PATH [--rows N] [--seed S] [--repeat N]
              [--skip-evidently] [--keep]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
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
from benchlib import MemSample, cpu_seconds, reset_hwm, start_keelson, status_mib, stop  # noqa: E402
from common import COLUMNS, DRIFT_SHARE, EVIDENTLY_METHODS, designed_drift  # noqa: E402
from generate import default_dir, generate  # noqa: E402

REQUEST_TIMEOUT_S = 3600
STARTUP_TIMEOUT_S = 60
SPEED_TARGET, MEMORY_TARGET = 100.0, 10.0


def log(message: str) -> None:
    print(f"[drift-bench] {message}", file=sys.stderr, flush=True)


def keelson_env(import_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    env["KEELSON_DATA__IMPORT_ROOT"] = str(import_root)
    env["KEELSON_MONITORING__SCHEDULER_INTERVAL_SECONDS"] = "0"
    return env


def post(url: str, body: dict, ok: tuple[int, ...], what: str, log_path: Path) -> tuple[dict, float]:
    started = time.perf_counter()
    response = requests.post(url, json=body, timeout=REQUEST_TIMEOUT_S)
    seconds = time.perf_counter() - started
    if response.status_code not in ok:
        raise SystemExit(f"{what} answered {response.status_code}: {response.text[:2000]}\n"
                         f"--- {log_path} ---\n{log_path.read_text(errors='replace')[-3000:]}")
    return response.json(), seconds


def run_keelson(binary: Path, data: Path, work: Path, repeat: int, raw: Path) -> dict:
    server, url, log_path = start_keelson(binary, work, keelson_env(data), STARTUP_TIMEOUT_S)
    try:
        started_rss = status_mib(server.pid, "VmRSS")

        ingest = {}
        for name in ("ref", "cur"):
            body, seconds = post(f"{url}/api/v1/datasets/{name}/ingest",
                                 {"source": {"kind": "file", "path": f"{name}.parquet"}},
                                 (200, 201), f"ingest of {name}", log_path)
            ingest[name] = {"seconds": round(seconds, 3), "version": body["version"]["version"],
                            "rows": body["version"].get("row_count")}
            (raw / f"keelson_ingest_{name}.json").write_text(json.dumps(body, indent=1))
        ingest_peak = status_mib(server.pid, "VmHWM")

        requests_done = []
        for attempt in range(repeat):
            baseline = status_mib(server.pid, "VmRSS")
            hwm_reset = reset_hwm(server.pid)
            memory = MemSample(work, f"keelson{attempt}", server.pid)
            try:
                time.sleep(0.3)  # memsample's first tick before the request
                cpu_before = cpu_seconds(server.pid)
                body, seconds = post(f"{url}/api/v1/monitoring/reports",
                                     {"reference": {"dataset": "ref"}, "current": {"dataset": "cur"}, "options": {}},
                                     (200, 201), "the drift report", log_path)
                hwm = status_mib(server.pid, "VmHWM")
                cpu = cpu_seconds(server.pid) - cpu_before
                time.sleep(0.6)  # one more memsample tick after the answer
            finally:
                sampled = memory.peak()
            requests_done.append({
                "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 2), "baseline_rss_mib": baseline,
                # With the reset, VmHWM is the peak of this request alone; without it the
                # process's life-long peak (then the ingest's, likely), so the sampler's figure.
                "peak_rss_mib": hwm if hwm_reset else sampled["rss_peak_mib"],
                "hwm_reset": hwm_reset, "memsample": sampled,
            })
            if attempt == 0:
                (raw / "keelson_report.json").write_text(json.dumps(body, indent=1))
                first = body
        drift = first["report"]["drift"]
        columns = {c["column"]: {"method": c["method"], "score": c.get("score"), "threshold": c.get("threshold"),
                                 "drifted": c["drifted"]} for c in drift["columns"]}
        return {"seconds": requests_done[0]["seconds"], "cpu_seconds": requests_done[0]["cpu_seconds"],
                "peak_rss_mib": requests_done[0]["peak_rss_mib"],
                "baseline_rss_mib": requests_done[0]["baseline_rss_mib"], "requests": requests_done,
                "started_rss_mib": started_rss, "ingest_peak_rss_mib": ingest_peak, "ingest": ingest,
                "columns": columns, "dataset_drift": drift.get("dataset_drift"),
                "drifted": drift.get("drifted"), "compared": drift.get("compared"), "share": drift.get("share")}
    finally:
        stop(server)


def run_evidently(python: str, data: Path, work: Path, raw: Path) -> dict:
    argv = [python, str(HERE / "evidently_side.py"), str(data / "ref.parquet"), str(data / "cur.parquet"),
            str(raw / "evidently_snapshot.json")]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    memory = MemSample(work, "evidently", proc.pid)
    try:
        out, _ = proc.communicate()
        seconds = time.perf_counter() - started
    finally:
        sampled = memory.peak()
    if proc.returncode != 0:
        raise SystemExit(f"evidently_side.py failed with status {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    # ru_maxrss covers the whole life; the sampler (0.5 s ticks) is a cross-check.
    result["peak_rss_mib"] = max(result["peak_rss_mib"], sampled["hwm_sum_mib"])
    result["process_seconds"] = round(seconds, 3)
    result["memsample"] = sampled
    drifted = sum(c["drifted"] for c in result["columns"].values())
    result["dataset_drift"] = bool(result["columns"]) and drifted / len(result["columns"]) >= DRIFT_SHARE
    return result


def environment(binary: Path, rows: int, seed: int, data: Path) -> dict:
    root = HERE.parent.parent
    rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(root), "diff", "--quiet", "HEAD", "--", "crates", "Cargo.lock"]).returncode != 0
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": rev + (" (crates/ with uncommitted changes)" if dirty else ""),
        "keelson": f"{version}, sha256 {hashlib.sha256(binary.read_bytes()).hexdigest()[:12]}",
        "machine": f"{model}, {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "rows": rows, "seed": seed, "data": str(data),
        "parquet_mib": round(sum((data / f).stat().st_size for f in ("ref.parquet", "cur.parquet")) / 2**20, 1),
    }


def table(result: dict) -> tuple[str, bool]:
    env, k, e = result["env"], result["keelson"], result.get("evidently")
    lines = [
        f"drift report, {env['rows']:,} reference rows x 20 float64 columns vs {env['rows']:,} current rows "
        f"(seed {env['seed']}, 2 Parquet files, {env['parquet_mib']} MiB)",
        f"{env['date']}; {env['keelson']}; checkout {env['git']}; {env['machine']}",
        f"load average (1/5/15 min): {env['load']}",
        "",
        f"{'':34} {'seconds':>9} {'peak RSS MiB':>13} {'CPU s':>7}",
        f"{'keelson  POST monitoring/reports':34} {k['seconds']:9.3f} {k['peak_rss_mib']:13.1f} {k['cpu_seconds']:7.2f}"
        f"   (RSS before the request {k['baseline_rss_mib']} MiB)",
    ]
    if len(k["requests"]) > 1:
        lines.append(f"{'         the same, again':34} " + ", ".join(f"{r['seconds']:.3f} s / {r['peak_rss_mib']} MiB" for r in k["requests"][1:]))
    lines.append(f"{'         ingest ref, cur (apart)':34} {k['ingest']['ref']['seconds']:9.3f} + {k['ingest']['cur']['seconds']:.3f} s"
                 f"   (peak over start-up and ingests {k['ingest_peak_rss_mib']} MiB)")
    agree = True
    if e is not None:
        s = e["seconds"]
        lines += [
            f"{'evidently Report.run + .dict()':34} {s['report']:9.3f} {e['peak_rss_mib']:13.1f} {e['report_cpu_seconds']:7.2f}"
            f"   (DataFrames loaded: {e['loaded_rss_mib']} MiB; the report alone peaked at {e['report_peak_rss_mib']} MiB)",
            f"{'          read_parquet x 2 (apart)':34} {s['read_parquet']:9.3f}   (imports {s['imports']} s, "
            f"process {e['process_seconds']} s)",
            "",
            f"speed ratio  (evidently / keelson)  {result['speed_ratio']:8.1f}x   target >= {SPEED_TARGET:.0f}x: "
            f"{'met' if result['speed_ratio'] >= SPEED_TARGET else 'NOT met'}",
            f"memory ratio (evidently / keelson)  {result['memory_ratio']:8.1f}x   target >= {MEMORY_TARGET:.0f}x: "
            f"{'met' if result['memory_ratio'] >= MEMORY_TARGET else 'NOT met'}",
            f"CPU time ratio (evidently / keelson) {result['cpu_ratio']:.1f}x   (the wall times include waiting for other processes' load)",
            "",
            f"{'column':7} {'designed':>9}  {'keelson':>20}  {'evidently':>20}  {'|diff|':>8}  verdicts",
        ]
        names = sorted(set(k["columns"]) | set(e["columns"]))
        max_diff = 0.0
        for name in names:
            kc, ec = k["columns"].get(name), e["columns"].get(name)
            design = ("drift" if designed_drift(name) else "none") if name in COLUMNS else "?"
            ks = f"{kc['score']:.5f} {'DRIFT' if kc['drifted'] else 'ok':>5}" if kc else "missing"
            es = f"{ec['score']:.5f} {'DRIFT' if ec['drifted'] else 'ok':>5}" if ec else "missing"
            same = bool(kc and ec and kc["drifted"] == ec["drifted"]
                        and EVIDENTLY_METHODS.get(ec["method"], (None,))[0] == kc["method"])
            diff = abs(kc["score"] - ec["score"]) if kc and ec and kc["score"] is not None else float("nan")
            max_diff = max(max_diff, diff) if diff == diff else max_diff
            agree &= same
            lines.append(f"{name:7} {design:>9}  {ks:>20}  {es:>20}  {diff:8.1e}  {'agree' if same else 'DIFFER'}")
        dataset_same = k["dataset_drift"] == e["dataset_drift"]
        count_ok = e["drifted_columns_count"] is None or int(e["drifted_columns_count"]["count"]) == sum(
            c["drifted"] for c in e["columns"].values())
        agree &= dataset_same and count_ok
        lines += [
            f"methods: keelson {sorted({c['method'] for c in k['columns'].values()})}, "
            f"evidently {sorted({c['method'] for c in e['columns'].values()})}; largest score difference {max_diff:.1e}",
            f"dataset drift: keelson {k['dataset_drift']} ({k['drifted']}/{k['compared']} columns), "
            f"evidently {e['dataset_drift']} ({sum(c['drifted'] for c in e['columns'].values())}/{len(e['columns'])}; "
            f"its own count {e['drifted_columns_count']})" + ("" if count_ok else "  <- the rule used here disagrees with Evidently's count"),
            f"verdicts agree: {'yes' if agree else 'NO'}",
        ]
    else:
        lines.append("evidently skipped (--skip-evidently): no ratios, no verdict comparison")
    return "\n".join(lines) + "\n", agree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keelson-bin", type=Path, required=True)
    parser.add_argument("--evidently-python", required=True, help="python of the Evidently virtualenv")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of each side (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--repeat", type=int, default=3, help="Keelson report requests (the first is the figure)")
    parser.add_argument("--skip-evidently", action="store_true", help="Keelson only (for profiling)")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log, data dir)")
    args = parser.parse_args()

    data = generate(default_dir(args.rows, args.seed), args.rows, args.seed)
    work = Path(tempfile.mkdtemp(prefix="keelson-drift-bench."))
    raw = args.results / "latest-raw"
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    log(f"data {data}, work dir {work}")
    try:
        loads = {"before_keelson": " ".join(Path("/proc/loadavg").read_text().split()[:3])}
        log("keelson: ingest ref and cur, then the drift report")
        keelson = run_keelson(args.keelson_bin, data, work, max(1, args.repeat), raw)
        evidently = None
        if not args.skip_evidently:
            log("evidently: read_parquet, Report([DataDriftPreset()]).run, .dict() (minutes at 1M rows)")
            loads["before_evidently"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            evidently = run_evidently(args.evidently_python, data, work, raw)
        shutil.copy(work / "keelson.log", raw / "keelson.log")
    finally:
        if args.keep:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    result = {"env": environment(args.keelson_bin, args.rows, args.seed, data), "keelson": keelson, "evidently": evidently}
    result["env"]["load"] = " / ".join(f"{k.replace('_', ' ')} {v}" for k, v in loads.items()) + f" / at the end {result['env']['load']}"
    if evidently is not None:
        result["speed_ratio"] = round(evidently["seconds"]["report"] / keelson["seconds"], 2)
        result["cpu_ratio"] = round(evidently["report_cpu_seconds"] / max(keelson["cpu_seconds"], 0.01), 2)
        result["memory_ratio"] = round(evidently["peak_rss_mib"] / keelson["peak_rss_mib"], 2)
    text, agree = table(result)
    result["verdicts_agree"] = agree if evidently is not None else None
    print(text, end="")
    (args.results / "latest.txt").write_text(text)
    (args.results / "latest.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"written {args.results / 'latest.txt'}, latest.json, latest-raw/")
    sys.exit(0 if agree else 1)


if __name__ == "__main__":
    main()
