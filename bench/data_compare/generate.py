"""Writes the benchmark's CSV: ROWS rows x 20 columns (12 float64, four of them with missing
values; 4 int64 with `id` unique; 3 low-cardinality strings; 1 ISO 8601 timestamp), seeded, in
chunks so memory stays flat (5,000,000 rows make about 1 GB).

usage: generate.py [--rows N] [--seed S] [PATH]   (default PATH /tmp/keelson-data-bench/bench_<N>.csv)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DTYPES, FLOATS, MISSING_SHARE, S00_VALUES  # noqa: E402

CHUNK_ROWS = 250_000
S01_VALUES = [f"cat_{i:02d}" for i in range(50)]
S02_VALUES = ["A-1", "B-2", "C-3", "A-7"]
S02_BAD = "bad-code"  # the regex expectation's failures, 0.1%
TS_START = np.datetime64("2024-01-01T00:00:00", "s")
TS_SPAN_S = 2 * 365 * 24 * 3600


def default_path(rows: int) -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp")) / "keelson-data-bench" / f"bench_{rows}.csv"


def float_column(rng: np.random.Generator, index: int, rows: int) -> np.ndarray:
    """Each float column its own distribution, rounded to 6 decimals (about 1 GB at 5M rows)."""
    kind = index % 4
    if index == 3:
        values = rng.uniform(0, 100, rows)  # mean_between
    elif index == 4:
        values = rng.normal(10, 2, rows)  # median_between
    elif index == 5:
        values = rng.normal(0, 5, rows)  # stddev_between
    elif kind == 0:
        values = rng.normal(0, 1, rows)
    elif kind == 1:
        values = rng.lognormal(3, 1, rows)
    elif kind == 2:
        values = rng.exponential(20, rows)
    else:
        values = rng.uniform(-1000, 1000, rows)
    return np.round(values, 6)


def chunk(seed: int, number: int, first_id: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, number])
    columns: dict[str, object] = {"id": np.arange(first_id, first_id + rows, dtype=np.int64)}
    for index, name in enumerate(FLOATS):
        values = float_column(rng, index, rows)
        if name in MISSING_SHARE:
            values[rng.random(rows) < MISSING_SHARE[name]] = np.nan
        columns[name] = values
    columns["i01"] = rng.integers(0, 100, rows, dtype=np.int64)
    columns["i02"] = rng.integers(0, 1_000_000_000, rows, dtype=np.int64)
    columns["i03"] = rng.poisson(3, rows).astype(np.int64)
    columns["s00"] = rng.choice(S00_VALUES, rows, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    columns["s01"] = rng.choice(S01_VALUES, rows)
    s02 = rng.choice(S02_VALUES, rows).astype(object)
    s02[rng.random(rows) < 0.001] = S02_BAD
    columns["s02"] = s02
    seconds = rng.integers(0, TS_SPAN_S, rows).astype("timedelta64[s]")
    columns["ts"] = np.datetime_as_string(TS_START + seconds, unit="s")
    frame = pd.DataFrame(columns)
    assert list(frame.columns) == list(DTYPES)
    return frame


def generate(path: Path, rows: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="") as out:
        for number, start in enumerate(range(0, rows, CHUNK_ROWS)):
            frame = chunk(seed, number, start, min(CHUNK_ROWS, rows - start))
            frame.to_csv(out, index=False, header=number == 0, na_rep="", lineterminator="\n")
    partial.rename(path)  # a crashed run leaves no file that looks complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", type=Path)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    if args.rows <= 0:
        parser.error("--rows must be positive")
    path = args.path or default_path(args.rows)
    started = time.monotonic()
    generate(path, args.rows, args.seed)
    size_mib = path.stat().st_size / 2**20
    print(f"wrote {path}: {args.rows} rows, {size_mib:.0f} MiB in {time.monotonic() - started:.1f} s", file=sys.stderr)
    print(path)


if __name__ == "__main__":
    main()
