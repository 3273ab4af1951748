"""The peer of `POST /api/v1/datasets/bench/ingest` in pandas: read the CSV, write it as Parquet
(pyarrow, zstd, as Keelson stores a version), profile every column, evaluate the 10 expectations.
Prints one JSON line: wall seconds per phase and in total, the verdicts, and this process's peak
RSS (getrusage's ru_maxrss, the kernel's high-water mark).

Profile per column, as Keelson's `profile`: count, null count, distinct count (exact here; Keelson
estimates), min/max/mean/std (ddof = 1), quantiles 1/5/25/50/75/95/99 % (exact here; Keelson's
come from a sketch), the top 10 values of string and integer columns, and a 20-bin histogram of
numeric ones.

usage: pandas_side.py CSV [--parquet OUT.parquet] [--profile-out PROFILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DTYPES, SUITE, pandas_verdicts  # noqa: E402

QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
PANDAS_DTYPES = {"int64": "int64", "float64": "float64", "string": "str"}


def read(path: Path) -> pd.DataFrame:
    dtypes = {name: PANDAS_DTYPES[d] for name, d in DTYPES.items() if d != "datetime"}
    dates = [name for name, d in DTYPES.items() if d == "datetime"]
    frame = pd.read_csv(path, dtype=dtypes, parse_dates=dates, keep_default_na=False, na_values=[""])
    return frame.astype({name: "datetime64[us]" for name in dates})  # Keelson: microseconds, no zone


def plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def profile_column(column: pd.Series) -> dict:
    values = column.dropna()
    stats = {"dtype": str(column.dtype), "count": int(values.size), "null_count": int(column.size - values.size),
             "distinct": int(values.nunique())}
    if pd.api.types.is_datetime64_any_dtype(column):
        stats |= {"min": plain(values.min()), "max": plain(values.max())}
        return stats
    numeric = pd.api.types.is_numeric_dtype(column)
    if numeric:
        array = values.to_numpy(dtype=np.float64)
        stats |= {"min": plain(array.min()), "max": plain(array.max()), "mean": plain(array.mean()),
                  "stddev": plain(values.std(ddof=1))}
        stats["quantiles"] = {str(q): plain(v) for q, v in zip(QUANTILES, np.quantile(array, QUANTILES))}
        counts, edges = np.histogram(array, bins=20)
        stats["histogram"] = {"edges": edges.tolist(), "counts": counts.tolist()}
    if not numeric or pd.api.types.is_integer_dtype(column):
        top = values.value_counts().head(10)
        stats["top_values"] = [{"value": plain(v), "count": int(c)} for v, c in top.items()]
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--parquet", type=Path, help="where the Parquet goes (default: a temp file, removed)")
    parser.add_argument("--profile-out", type=Path, help="write the profile there as JSON")
    args = parser.parse_args()

    seconds = {}
    started = last = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal last
        now = time.perf_counter()
        seconds[phase] = round(now - last, 3)
        last = now

    frame = read(args.csv)
    lap("read_csv")
    with tempfile.TemporaryDirectory() as scratch:
        parquet = args.parquet or Path(scratch) / "version.parquet"
        frame.to_parquet(parquet, engine="pyarrow", compression="zstd", index=False)
        parquet_bytes = parquet.stat().st_size
        lap("write_parquet")
    profile = {"row_count": len(frame), "columns": {name: profile_column(frame[name]) for name in frame.columns}}
    lap("profile")
    verdicts = pandas_verdicts(frame)
    lap("expectations")
    seconds["total"] = round(time.perf_counter() - started, 3)

    if args.profile_out:
        args.profile_out.write_text(json.dumps(profile, indent=1))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({
        "side": "pandas", "pandas": pd.__version__, "rows": len(frame), "columns": frame.shape[1],
        "seconds": seconds, "parquet_bytes": parquet_bytes, "verdicts": verdicts,
        "expectations": [e["type"] for e in SUITE["expectations"]], "peak_rss_mib": round(peak_kib / 1024, 1),
        "pid": os.getpid(),
    }))


if __name__ == "__main__":
    main()
