"""What both sides of the data benchmark share: the columns of the generated CSV with their
dtypes (Keelson's names, as the source `schema` declares them) and the 10 expectations, once as
the Keelson suite and once evaluated in pandas (the peer's verdicts).

Semantics follow the contract (/work/data-api-spec.md, "Expectations"): bounds inclusive, nulls
ignored by between/in_set/regex, statistics over the non-null values, stddev with ddof = 1,
missing share = nulls / rows (strictly below `max`).
"""

from __future__ import annotations

FLOATS = [f"f{i:02d}" for i in range(12)]
INTS = ["id", "i01", "i02", "i03"]
STRINGS = ["s00", "s01", "s02"]
TIMESTAMP = "ts"

# Column order of the file: 20 columns.
DTYPES = {"id": "int64"}
DTYPES |= {name: "float64" for name in FLOATS}
DTYPES |= {name: "int64" for name in INTS[1:]}
DTYPES |= {name: "string" for name in STRINGS}
DTYPES[TIMESTAMP] = "datetime"
assert len(DTYPES) == 20

# Share of missing values of the float columns that have any (the others have none).
MISSING_SHARE = {"f00": 0.01, "f01": 0.04, "f02": 0.005, "f03": 0.02}
S00_VALUES = ["north", "south", "east", "west", "central"]
S02_PATTERN = "^[A-C]-[0-9]$"

SUITE = {
    "version": 1,
    "expectations": [
        {"type": "not_null", "column": "f02", "severity": "warn"},  # fails: 0.5% missing
        {"type": "unique", "column": "id", "severity": "warn"},
        {"type": "between", "column": "f00", "min": -3.0, "max": 3.0, "severity": "warn"},  # fails: N(0, 1)
        {"type": "in_set", "column": "s00", "values": S00_VALUES, "severity": "warn"},
        {"type": "regex", "column": "s02", "pattern": S02_PATTERN, "severity": "warn"},  # fails: a few bad codes
        {"type": "row_count_between", "min": 1, "max": 1_000_000_000, "severity": "warn"},
        {"type": "mean_between", "column": "f03", "min": 49.0, "max": 51.0, "severity": "warn"},  # U(0, 100)
        {"type": "median_between", "column": "f04", "min": 9.9, "max": 10.1, "severity": "warn"},  # N(10, 2)
        {"type": "stddev_between", "column": "f05", "min": 4.9, "max": 5.1, "severity": "warn"},  # N(0, 5)
        {"type": "missing_share_below", "column": "f01", "max": 0.05, "severity": "warn"},  # 4% missing
    ],
}


def within(value, low, high) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def pandas_verdicts(frame) -> list[bool]:
    """The suite evaluated on a pandas DataFrame: one bool per expectation, in suite order."""
    verdicts = []
    for e in SUITE["expectations"]:
        kind, column = e["type"], frame[e["column"]] if "column" in e else None
        if kind == "not_null":
            ok = not column.isna().any()
        elif kind == "unique":
            ok = not column.dropna().duplicated().any()
        elif kind == "between":
            values = column.dropna()
            ok = bool(values.between(e.get("min", -float("inf")), e.get("max", float("inf"))).all())
        elif kind == "in_set":
            ok = bool(column.dropna().isin(e["values"]).all())
        elif kind == "regex":
            ok = bool(column.dropna().str.contains(e["pattern"], regex=True).all())
        elif kind == "row_count_between":
            ok = within(len(frame), e.get("min"), e.get("max"))
        elif kind == "mean_between":
            ok = within(column.mean(), e.get("min"), e.get("max"))
        elif kind == "median_between":
            ok = within(column.median(), e.get("min"), e.get("max"))
        elif kind == "stddev_between":
            ok = within(column.std(ddof=1), e.get("min"), e.get("max"))
        elif kind == "missing_share_below":
            ok = column.isna().sum() / len(frame) < e["max"]
        else:
            raise ValueError(f"no pandas twin for expectation type {kind!r}")
        verdicts.append(bool(ok))
    return verdicts
