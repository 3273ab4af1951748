"""Writes the reference and current Parquet files of the drift benchmark (see common.py).

usage: generate.py [--rows N] [--seed S] [DIR]
Writes DIR/ref.parquet and DIR/cur.parquet, N rows x 20 float64 columns each, no nulls (pyarrow,
snappy). Default DIR: /tmp/keelson-drift-bench/<rows>-s<seed>. Files that are there are reused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import COLUMNS  # noqa: E402

FILES = ("ref.parquet", "cur.parquet")


def default_dir(rows: int, seed: int) -> Path:
    return Path("/tmp/keelson-drift-bench") / f"{rows}-s{seed}"


def draw(rng: np.random.Generator, dist: str, params: tuple, n: int) -> np.ndarray:
    if dist == "normal":
        return rng.normal(params[0], params[1], n)
    if dist == "lognormal":
        return rng.lognormal(params[0], params[1], n)
    if dist == "uniform":
        return rng.uniform(params[0], params[1], n)
    if dist == "exponential":
        return rng.exponential(params[0], n)
    if dist == "gamma":
        return rng.gamma(params[0], params[1], n)
    if dist == "student_t":
        return rng.standard_t(params[0], n)
    if dist == "beta":
        return rng.beta(params[0], params[1], n)
    if dist == "mixture":
        return np.where(rng.random(n) < 0.5, -2.0, 2.0) + rng.normal(0.0, 1.0, n)
    raise ValueError(dist)


def frame(rng: np.random.Generator, rows: int, current: bool) -> pa.Table:
    arrays = {}
    for name, (dist, params, mean, std, change, amount) in COLUMNS.items():
        values = draw(rng, dist, params, rows)
        if current and change == "shift":
            values = values + amount * std
        elif current and change == "scale":
            values = mean + amount * (values - mean)
        arrays[name] = pa.array(values, type=pa.float64())
    return pa.table(arrays)


def generate(out: Path, rows: int, seed: int) -> Path:
    if all((out / name).exists() for name in FILES):
        return out
    out.mkdir(parents=True, exist_ok=True)
    # Independent streams for the two sides, both from the one seed.
    ref_rng, cur_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    for name, rng, current in (("ref.parquet", ref_rng, False), ("cur.parquet", cur_rng, True)):
        tmp = out / (name + ".tmp")
        pq.write_table(frame(rng, rows, current), tmp, compression="snappy")
        tmp.rename(out / name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("dir", nargs="?", type=Path)
    args = parser.parse_args()
    print(generate(args.dir or default_dir(args.rows, args.seed), args.rows, args.seed))


if __name__ == "__main__":
    main()
