"""The Evidently side of the drift benchmark, in its own process (and virtualenv).

usage: evidently_side.py REF.parquet CUR.parquet RAW_OUT.json

Reads both files with pandas (pyarrow), then times `Report([DataDriftPreset()]).run(...)` and
`.dict()` of the snapshot with the DataFrames already in memory. Prints one JSON line: the phase
times, memory figures and the per-column results (method, score, threshold, drifted by Evidently's
rule for the method), and Evidently's own count of drifted columns as a check of that rule. The
snapshot's dict goes to RAW_OUT.

Memory: `peak_rss_mib` is the process's ru_maxrss (its whole life: imports, reading, the report);
`report_peak_rss_mib` the kernel's high-water mark (VmHWM) of the report alone, reset through
/proc/self/clear_refs just before it (null where the kernel refuses); `loaded_rss_mib` the RSS
with both DataFrames loaded, before the report.
"""

from __future__ import annotations

import json
import resource
import sys
import time

started = time.perf_counter()
import pandas as pd  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import evidently_drifted  # noqa: E402

import_seconds = time.perf_counter() - started


def status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    raise KeyError(field)


def reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def main() -> None:
    ref_path, cur_path, raw_out = sys.argv[1:4]
    t0 = time.perf_counter()
    ref = pd.read_parquet(ref_path)
    cur = pd.read_parquet(cur_path)
    read_seconds = time.perf_counter() - t0
    loaded_rss = status_mib("VmRSS")
    hwm_reset = reset_hwm()

    t0, c0 = time.perf_counter(), time.process_time()
    snapshot = Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
    run_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = snapshot.dict()
    dict_seconds = time.perf_counter() - t1
    report_seconds = time.perf_counter() - t0
    report_cpu = time.process_time() - c0
    report_peak = status_mib("VmHWM") if hwm_reset else None

    columns, drifted_count = {}, None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            score, threshold = float(metric["value"]), float(config["threshold"])
            columns[config["column"]] = {
                "method": config["method"], "score": score, "threshold": threshold,
                "drifted": evidently_drifted(config["method"], score, threshold),
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            drifted_count = metric["value"]
    with open(raw_out, "w") as handle:
        json.dump(result, handle, indent=1, default=str)

    print(json.dumps({
        "rows": [len(ref), len(cur)],
        "seconds": {"imports": round(import_seconds, 3), "read_parquet": round(read_seconds, 3),
                    "report_run": round(run_seconds, 3), "dict": round(dict_seconds, 3),
                    "report": round(report_seconds, 3)},
        "report_cpu_seconds": round(report_cpu, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "report_peak_rss_mib": report_peak,
        "loaded_rss_mib": loaded_rss,
        "columns": columns,
        "drifted_columns_count": drifted_count,
        "versions": {"evidently": __import__("evidently").__version__, "pandas": pd.__version__,
                     "numpy": __import__("numpy").__version__, "scipy": __import__("scipy").__version__},
    }))


if __name__ == "__main__":
    main()
