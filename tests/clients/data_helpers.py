"""Shared pieces of the data API tests (test_data_*.py): seeded test data, source files in the
three file formats, the REST calls of /api/v1/datasets and /api/v1/recipes, and comparisons of a
downloaded Parquet version with pandas' reference frame (null aware, floats within a relative
tolerance).

Contract: /work/data-api-spec.md (issue 7).
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import requests

SEED = 7
ORDER_ROWS = 2_000
CUSTOMER_ROWS = 300
# customer_ids above CUSTOMER_ROWS reference no customer (referential integrity failures).
UNKNOWN_CUSTOMER_IDS = (CUSTOMER_ROWS + 1, CUSTOMER_ROWS + 50)

COUNTRIES = ["US", "FR", "DE", "GB", "New Zealand"]
CHANNELS = ["web", "store", "phone"]
CHANNEL_WEIGHTS = [0.55, 0.3, 0.15]  # distinct counts: top_values has a single order
SIZES = ["S", "M", "L", "XL", "XXL"]  # XXL is not in the recipe's ordinal order: null
SEGMENTS = ["consumer", "smb", "enterprise"]

# Keelson dtype names (the contract's `schema` of a source) of the orders and customers tables.
ORDER_DTYPES = {
    "id": "int64",
    "customer_id": "int64",
    "amount": "float64",
    "country": "string",
    "email": "string",
    "created_at": "datetime",
    "quantity": "int64",
    "size": "string",
    "channel": "string",
    "score": "float64",
    "comment": "string",  # dropped by the recipe's `select`
}
CUSTOMER_DTYPES = {"customer_id": "int64", "segment": "string", "credit_limit": "float64"}

PANDAS_DTYPES = {"int64": "int64", "float64": "float64", "string": "str", "datetime": "datetime64[us]"}
ARROW_TYPES = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "datetime": pa.timestamp("us"),
               "bool": pa.bool_()}

SHA256_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


# --- data ------------------------------------------------------------------------------------------


def messy_country(rng: np.random.Generator, country: str) -> str:
    """The country as a careless form fills it in: any case, stray spaces around and inside."""
    value = [country.lower(), country.upper(), country.title(), country][rng.integers(4)]
    value = value.replace(" ", " " * int(rng.integers(1, 4)))
    return " " * int(rng.integers(0, 3)) + value + " \t"[: int(rng.integers(0, 3))]


def make_orders(rows: int = ORDER_ROWS, seed: int = SEED) -> pd.DataFrame:
    """Orders with duplicate ids, missing and negative amounts, messy countries, invalid and
    missing emails, a few missing timestamps and scores, and customer ids of unknown customers."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, rows + 1, dtype=np.int64)
    duplicated = rng.choice(rows, size=rows // 20, replace=False)
    ids[duplicated] = rng.integers(1, rows + 1, size=duplicated.size)  # ~5% repeat an earlier id
    customer_ids = rng.integers(1, CUSTOMER_ROWS + 1, size=rows).astype(np.int64)
    unknown = rng.random(rows) < 0.02
    customer_ids[unknown] = rng.integers(*UNKNOWN_CUSTOMER_IDS, size=int(unknown.sum()))

    amounts = np.round(rng.lognormal(mean=4.0, sigma=1.0, size=rows), 2)
    refunds = rng.random(rows) < 0.03
    amounts[refunds] = -np.round(rng.uniform(1, 50, size=int(refunds.sum())), 2)
    amounts[rng.random(rows) < 0.05] = np.nan

    countries = [messy_country(rng, COUNTRIES[i]) for i in rng.integers(len(COUNTRIES), size=rows)]
    countries = np.array(countries, dtype=object)
    countries[rng.random(rows) < 0.03] = None

    emails = []
    for i in range(rows):
        roll = rng.random()
        if roll < 0.04:
            emails.append(None)
        elif roll < 0.10:
            emails.append(["no-at-sign.example.com", "two@@example.com", "user@", "a b@example.com"][i % 4])
        else:
            emails.append(f"{' ' if roll > 0.97 else ''}user{i}@example.{['com', 'org', 'net'][i % 3]}")

    start = np.datetime64("2025-01-01T00:00:00", "us")
    created = start + rng.integers(0, 365 * 24 * 3600, size=rows).astype("timedelta64[s]")
    created = pd.Series(created.astype("datetime64[us]"))
    created[rng.random(rows) < 0.01] = pd.NaT

    scores = np.round(rng.normal(0.5, 0.2, size=rows), 6)
    scores[rng.random(rows) < 0.08] = np.nan
    scores[0] = 0.5  # forward fill has a value to carry from the first row

    frame = pd.DataFrame(
        {
            "id": ids,
            "customer_id": customer_ids,
            "amount": amounts,
            "country": pd.array(countries, dtype="str"),
            "email": pd.array(emails, dtype="str"),
            "created_at": created,
            "quantity": rng.integers(1, 20, size=rows).astype(np.int64),
            "size": pd.array(rng.choice(SIZES, size=rows, p=[0.3, 0.3, 0.2, 0.15, 0.05]), dtype="str"),
            "channel": pd.array(rng.choice(CHANNELS, size=rows, p=CHANNEL_WEIGHTS), dtype="str"),
            "score": scores,
            "comment": pd.array(rng.choice(["gift", "rush", None], size=rows, p=[0.1, 0.1, 0.8]), dtype="str"),
        }
    )
    return frame.astype({name: PANDAS_DTYPES[dtype] for name, dtype in ORDER_DTYPES.items()})


def make_customers(rows: int = CUSTOMER_ROWS, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, rows + 1, dtype=np.int64),
            "segment": pd.array(rng.choice(SEGMENTS, size=rows), dtype="str"),
            "credit_limit": np.round(rng.uniform(500, 20_000, size=rows), 2),
        }
    )
    return frame.astype({name: PANDAS_DTYPES[dtype] for name, dtype in CUSTOMER_DTYPES.items()})


# --- source files ----------------------------------------------------------------------------------


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Nulls as empty fields, timestamps as ISO 8601 (`2025-03-04T05:06:07`), floats as repr
    (round-trip exact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, na_rep="", date_format="%Y-%m-%dT%H:%M:%S", lineterminator="\n")


def json_value(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """One object per line, nulls as JSON null; json.dumps writes floats round-trip exact
    (pandas' to_json would round them to 10 digits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        for record in frame.astype(object).to_dict(orient="records"):
            out.write(json.dumps({k: json_value(v) for k, v in record.items()}) + "\n")


def arrow_schema(dtypes: dict[str, str]) -> pa.Schema:
    return pa.schema([(name, ARROW_TYPES[dtype]) for name, dtype in dtypes.items()])


def write_parquet(frame: pd.DataFrame, path: Path, dtypes: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, schema=arrow_schema(dtypes), preserve_index=False)
    pq.write_table(table, path)


def read_reference(path: Path, fmt: str, dtypes: dict[str, str]) -> pd.DataFrame:
    """pandas' own read of a source file: the reference a downloaded version must equal."""
    pandas_dtypes = {n: PANDAS_DTYPES[d] for n, d in dtypes.items() if d != "datetime"}
    dates = [n for n, d in dtypes.items() if d == "datetime"]
    if fmt == "csv":
        frame = pd.read_csv(
            path, dtype=pandas_dtypes, parse_dates=dates, keep_default_na=False, na_values=[""],
            float_precision="round_trip",
        )
    elif fmt == "jsonl":
        frame = pd.read_json(path, lines=True, dtype=pandas_dtypes, convert_dates=dates, precise_float=True)
    elif fmt == "parquet":
        frame = pd.read_parquet(path)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return frame.astype({n: "datetime64[us]" for n in dates})


def format_options(fmt: str, dtypes: dict[str, str] | None = None) -> dict:
    """The format part of a source; CSV and JSONL declare the dtypes (text has no timestamp
    type; a CSV or JSON number could be read as either width)."""
    options: dict = {"format": fmt}
    if fmt == "csv":
        options["csv"] = {"separator": ",", "has_header": True, "null_values": [""]}
    if dtypes is not None and fmt != "parquet":
        options["schema"] = dict(dtypes)
    return options


def source_spec(path: str, fmt: str, dtypes: dict[str, str] | None = None) -> dict:
    """A `file` source, `path` relative to the server's import root."""
    return {"kind": "file", "path": path, **format_options(fmt, dtypes)}


# --- the REST API ----------------------------------------------------------------------------------


def ok(response: requests.Response, statuses: tuple[int, ...] = (200,)) -> dict:
    assert response.status_code in statuses, (response.request.method, response.url, response.status_code,
                                              response.text[:2000])
    return response.json()


def api_error(response: requests.Response, status: int = 400, error_code: str = "INVALID_PARAMETER_VALUE") -> str:
    """Keelson's `{"error_code", "message"}` answer; returns the message."""
    assert response.status_code == status, (response.status_code, response.text[:2000])
    body = response.json()
    assert body.get("error_code") == error_code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body["message"]


def ingest(server, dataset: str, source: dict, **fields) -> requests.Response:
    return server.post(f"/api/v1/datasets/{dataset}/ingest", json={"source": source, **fields})


def run_recipe(server, recipe: str | dict) -> requests.Response:
    return server.post("/api/v1/recipes/run", json={"recipe": recipe})


def validate(server, dataset: str, version: int, suite: dict) -> dict:
    response = server.post(f"/api/v1/datasets/{dataset}/versions/{version}/validate", json={"expectations": suite})
    return ok(response)["validation"]


def versions(server, dataset: str) -> list[dict] | None:
    """The dataset's versions, newest first; None when the dataset does not exist (404)."""
    response = server.get(f"/api/v1/datasets/{dataset}/versions")
    if response.status_code == 404:
        api_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
        return None
    return ok(response)["versions"]


def version_numbers(server, dataset: str) -> list[int] | None:
    listed = versions(server, dataset)
    return None if listed is None else [v["version"] for v in listed]


def quality_points(server, dataset: str) -> list[dict]:
    return ok(server.get(f"/api/v1/datasets/{dataset}/quality"))["points"]


def download(server, dataset: str, version: int | str) -> pd.DataFrame:
    response = server.get(f"/api/v1/datasets/{dataset}/versions/{version}/download")
    assert response.status_code == 200, (response.status_code, response.text[:1000])
    assert response.content[:4] == b"PAR1", "a Parquet file starts with PAR1"
    return pq.read_table(io.BytesIO(response.content)).to_pandas()


# --- comparing frames ------------------------------------------------------------------------------

REL_TOL = 1e-9
# Beside the relative bound: values computed as differences (standard scaling) may end up near 0,
# where a relative bound says nothing; 1e-12 absolute is still far below any real error.
ABS_TOL = 1e-12


def nulls(series: pd.Series) -> np.ndarray:
    return series.isna().to_numpy()


def is_datetime(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series)


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def assert_column_equal(name: str, actual: pd.Series, expected: pd.Series, rel_tol: float = REL_TOL) -> None:
    """Same nulls at the same rows; the other values equal (numbers within `rel_tol`, timestamps
    to the microsecond, whatever the width of the integer or float type)."""
    assert len(actual) == len(expected), (name, len(actual), len(expected))
    actual_nulls, expected_nulls = nulls(actual), nulls(expected)
    differ = np.flatnonzero(actual_nulls != expected_nulls)
    assert differ.size == 0, f"{name}: nulls differ at rows {differ[:10].tolist()}"
    keep = ~expected_nulls
    got, want = actual[keep], expected[keep]
    if is_datetime(expected):
        assert is_datetime(actual), (name, actual.dtype)
        got = got.astype("datetime64[us]").to_numpy().astype(np.int64)
        want = want.astype("datetime64[us]").to_numpy().astype(np.int64)
        bad = np.flatnonzero(got != want)
    elif is_numeric(expected):
        assert is_numeric(actual) or pd.api.types.is_bool_dtype(actual), (name, actual.dtype)
        got, want = got.to_numpy(dtype=np.float64), want.to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isclose(got, want, rtol=rel_tol, atol=ABS_TOL))
    else:
        got, want = got.astype(object).to_numpy(), want.astype(object).to_numpy()
        bad = np.flatnonzero(got != want)
    if bad.size:
        rows = np.flatnonzero(keep)[bad[:5]]
        pairs = [(int(r), actual.iloc[r], expected.iloc[r]) for r in rows]
        raise AssertionError(f"{name}: {bad.size} values differ (row, keelson, pandas): {pairs}")


def assert_frame_equal(actual: pd.DataFrame, expected: pd.DataFrame, sort_by: str | None = None,
                       ordered_columns: bool = True, rel_tol: float = REL_TOL) -> None:
    """Column by column; with `sort_by`, both frames sorted by that (unique) column first."""
    if ordered_columns:
        assert list(actual.columns) == list(expected.columns), (list(actual.columns), list(expected.columns))
    else:
        assert sorted(actual.columns) == sorted(expected.columns), (sorted(actual.columns), sorted(expected.columns))
    if sort_by is not None:
        assert not expected[sort_by].duplicated().any(), f"{sort_by} must be unique to sort by it"
        actual = actual.sort_values(sort_by, kind="stable")
        expected = expected.sort_values(sort_by, kind="stable")
    actual, expected = actual.reset_index(drop=True), expected.reset_index(drop=True)
    for name in expected.columns:
        assert_column_equal(name, actual[name], expected[name], rel_tol)


def relative_close(actual: float, expected: float, rel_tol: float = REL_TOL) -> bool:
    return math.isclose(actual, expected, rel_tol=rel_tol, abs_tol=ABS_TOL)


def value_at(frame: pd.DataFrame, column: str, row: int):
    """The value as JSON would carry it: None for a null, a Python scalar otherwise."""
    return json_value(frame[column].iloc[row])


def in_sketch_bound(value: float, values: np.ndarray, q: float, rel: float = 0.01) -> bool:
    """A sketch quantile within `rel` relative error of the exact one. Which order statistic is
    "the" q-quantile differs between definitions; anything within `rel` of the two order
    statistics around rank q*(n-1) (numpy's lower/higher) is accepted."""
    lower = float(np.quantile(values, q, method="lower"))
    higher = float(np.quantile(values, q, method="higher"))
    bounds = [b * (1 + s * rel) for b in (lower, higher) for s in (-1, 1)]
    return min(bounds) - ABS_TOL <= value <= max(bounds) + ABS_TOL


def names(schema: Iterable[dict]) -> list[str]:
    return [field["name"] for field in schema]
