"""Issue 7: bad sources and bad recipes are refused with 400 INVALID_PARAMETER_VALUE, a message
that names the file and the line (or the step and the column), and no version registered. And the
two non-file sources: a CSV over HTTP (a `http.server` thread on loopback) and a PostgreSQL query
(KEELSON_TEST_DATABASE_URL, which scripts/test always sets). Both metadata backends.
Contract: /work/data-api-spec.md.
"""

from __future__ import annotations

import http.server
import os
import re
import threading
import uuid

import pandas as pd
import pytest
import yaml

from conftest import DATABASE_URL_ENV, REFERENCE_MLFLOW, psql
from data_helpers import (
    ORDER_DTYPES,
    api_error,
    assert_frame_equal,
    download,
    ingest,
    make_orders,
    format_options,
    ok,
    read_reference,
    run_recipe,
    source_spec,
    names,
    version_numbers,
    write_csv,
)

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own data API")

SMALL = {"id": "int64", "amount": "float64", "name": "string"}
BAD_LINE = 57  # 1-based line of the file (the header is line 1) that holds the fault


def small_csv_lines(rows: int = 80) -> list[str]:
    return ["id,amount,name"] + [f"{i},{i * 1.5},name{i}" for i in range(1, rows + 1)]


def write_bad_csv(root, name: str, line_text: str | bytes) -> str:
    """A small CSV whose line BAD_LINE is replaced by `line_text`; its path under `root`."""
    lines = [line.encode() for line in small_csv_lines()]
    lines[BAD_LINE - 1] = line_text if isinstance(line_text, bytes) else line_text.encode()
    (root / "bad").mkdir(exist_ok=True)
    (root / "bad" / name).write_bytes(b"\n".join(lines) + b"\n")
    return f"bad/{name}"


def names_line(message: str) -> bool:
    """The line as the 1-based file line or as the 1-based data row (header not counted)."""
    return any(re.search(rf"(?<!\d){n}(?!\d)", message) for n in (BAD_LINE, BAD_LINE - 1))


def assert_refused(server, dataset: str, response, *words: str) -> str:
    """400 INVALID_PARAMETER_VALUE naming each of `words`; the dataset has no version."""
    message = api_error(response)
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    assert version_numbers(server, dataset) in (None, []), f"{dataset}: a version was registered"
    return message


# --- bad sources -------------------------------------------------------------------------------------

BAD_CSV = [
    pytest.param("ragged.csv", f"{BAD_LINE - 1},1.5,name,surplus", id="ragged-row"),
    pytest.param("not_utf8.csv", f"{BAD_LINE - 1},1.5,na".encode() + b"\xff\xfe" + b"me", id="invalid-utf8"),
    pytest.param("bad_float.csv", f"{BAD_LINE - 1},twelve,name", id="not-the-declared-dtype"),
]


@pytest.mark.parametrize("filename,bad_line", BAD_CSV)
def test_bad_csv_names_file_and_line(data_server, filename, bad_line):
    path = write_bad_csv(data_server.import_root, filename, bad_line)
    dataset = f"bad_{uuid.uuid4().hex[:8]}"
    message = assert_refused(data_server, dataset, ingest(data_server, dataset, source_spec(path, "csv", SMALL)),
                             filename)
    if filename == "bad_float.csv":
        assert names_line(message) or "amount" in message, message  # the line, or the column
    else:
        assert names_line(message), message


def test_missing_file(data_server):
    dataset = f"missing_{uuid.uuid4().hex[:8]}"
    response = ingest(data_server, dataset, source_spec("raw/no_such_file.csv", "csv"))
    assert_refused(data_server, dataset, response, "no_such_file.csv")


@pytest.mark.parametrize("escape", ["dotdot", "absolute"])
def test_path_outside_the_import_root(data_server, escape):
    # The file exists: the refusal must come from the path rule, not from a missing file.
    outside = data_server.import_root.parent / "outside.csv"
    outside.write_text("\n".join(small_csv_lines(3)) + "\n")
    path = "../outside.csv" if escape == "dotdot" else str(outside)
    dataset = f"escape_{escape}"
    assert_refused(data_server, dataset, ingest(data_server, dataset, source_spec(path, "csv")))


# --- bad recipes and suites --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_dataset(data_server) -> str:
    root = data_server.import_root
    (root / "good").mkdir(exist_ok=True)
    (root / "good" / "small.csv").write_text("\n".join(small_csv_lines()) + "\n")
    ok(ingest(data_server, "small", source_spec("good/small.csv", "csv", SMALL)))
    return "small"


def recipe(output: str, steps: list, **changes) -> dict:
    return {"version": 1, "name": "bad_recipe", "inputs": {"small": "small"},
            "output": {"dataset": output, "layer": "silver"}, "steps": steps, **changes}


# (steps, top-level changes, words the message names, the step it names by kind or position)
BAD_RECIPES = [
    pytest.param([{"select": ["id", "no_such_column"]}], {}, ["no_such_column"], ("select", 0),
                 id="unknown-column-select"),
    pytest.param([{"rename": {"amount": "a"}}, {"fill_missing": {"amount": {"strategy": "median"}}}], {},
                 ["amount"], ("fill_missing", 1), id="column-renamed-away"),
    pytest.param([{"select": ["id"]}], {"version": 2}, ["version"], None, id="recipe-version-2"),
    pytest.param([{"pivot_wider": {"columns": ["name"]}}], {}, ["pivot_wider"], None, id="unknown-step-kind"),
    pytest.param([{"select": ["id"]}], {"expectations": {"version": 1, "expectations": [
        {"type": "values_are_lovely", "column": "id"}]}}, ["values_are_lovely"], None,
        id="unknown-expectation-type"),
]


def names_step(message: str, kind: str, index: int) -> bool:
    """The step by its kind, or by its position (0- or 1-based) next to the word "step"."""
    if kind in message:
        return True
    return any(re.search(rf"step\D{{0,3}}{n}(?!\d)", message, re.I) for n in (index, index + 1))


@pytest.mark.parametrize("steps,changes,words,step", BAD_RECIPES)
@pytest.mark.parametrize("encoding", ["yaml", "object"])
def test_bad_recipe(data_server, small_dataset, steps, changes, words, step, encoding):
    output = f"out_{uuid.uuid4().hex[:8]}"
    body = recipe(output, steps, **changes)
    response = run_recipe(data_server, yaml.safe_dump(body, sort_keys=False) if encoding == "yaml" else body)
    message = assert_refused(data_server, output, response, *words)
    if step is not None:
        assert names_step(message, *step), (step, message)


def test_unknown_expectation_type_on_ingest(data_server, small_dataset):
    before = version_numbers(data_server, "small")
    suite = {"version": 1, "expectations": [{"type": "values_are_lovely", "column": "id"}]}
    # Other content (fewer rows) than version 1, so only the suite can be the reason for a refusal.
    (data_server.import_root / "good" / "fewer.csv").write_text("\n".join(small_csv_lines(10)) + "\n")
    response = ingest(data_server, "small", source_spec("good/fewer.csv", "csv", SMALL), expectations=suite)
    assert "values_are_lovely" in api_error(response)
    assert version_numbers(data_server, "small") == before


def test_bad_inputs_leave_existing_versions_alone(data_server, small_dataset):
    before = version_numbers(data_server, "small")
    path = write_bad_csv(data_server.import_root, "ragged_again.csv", "1,2,3,4,5")
    api_error(ingest(data_server, "small", source_spec(path, "csv", SMALL)))
    assert version_numbers(data_server, "small") == before


# --- other sources -----------------------------------------------------------------------------------


class _CsvHandler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path != "/orders.csv":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def csv_over_http(tmp_path):
    """The orders CSV served on loopback; yields (URL, local copy)."""
    local = tmp_path / "orders.csv"
    write_csv(make_orders(300), local)
    _CsvHandler.body = local.read_bytes()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CsvHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", local
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_source(data_server, csv_over_http):
    base, local = csv_over_http
    source = {"kind": "http", "url": f"{base}/orders.csv", **format_options("csv", ORDER_DTYPES)}
    answer = ok(ingest(data_server, "orders_http", source))
    reference = read_reference(local, "csv", ORDER_DTYPES)
    assert answer["created"] is True and answer["version"]["row_count"] == len(reference)
    assert_frame_equal(download(data_server, "orders_http", answer["version"]["version"]), reference)

    missing = ingest(data_server, "orders_http_missing", {"kind": "http", "url": f"{base}/gone.csv", "format": "csv"})
    assert_refused(data_server, "orders_http_missing", missing)


PG_COLUMNS = ["id", "amount", "country", "created_at"]
PG_ROWS = [
    (1, 12.5, "US", "2025-01-02 03:04:05.123456"),
    (2, None, None, "2025-06-30 00:00:00"),
    (3, -3.25, "FR", None),
    (4, 0.001, "New Zealand", "2024-02-29 23:59:59"),
]


def sql_literal(value) -> str:
    if value is None:
        return "NULL"
    return f"'{value}'" if isinstance(value, str) else repr(value)


@pytest.fixture
def postgres_table():
    """A table in a schema of its own (`t_` prefix: scripts/lib/postgres.sh drops leftovers of
    interrupted runs) holding PG_ROWS; yields (database URL, table, the rows as pandas sees them)."""
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        pytest.skip(f"{DATABASE_URL_ENV} is not set (scripts/test sets it)")
    schema = f"t_py_data_{uuid.uuid4().hex[:12]}"
    table = f"{schema}.orders"
    columns = list(zip(*PG_ROWS))
    expected = pd.DataFrame({
        "id": pd.array(columns[0], dtype="int64"),
        "amount": pd.array(columns[1], dtype="float64"),
        "country": pd.array(columns[2], dtype="str"),
        "created_at": pd.to_datetime(list(columns[3]), format="ISO8601").astype("datetime64[us]"),
    })
    values = ", ".join("(" + ", ".join(sql_literal(v) for v in row) + ")" for row in PG_ROWS)
    psql(url, f"CREATE SCHEMA {schema}")
    try:
        psql(url, f"CREATE TABLE {table} (id bigint PRIMARY KEY, amount double precision, country text, "
                  "created_at timestamp without time zone)")
        psql(url, f"INSERT INTO {table} ({', '.join(PG_COLUMNS)}) VALUES {values}")
        yield url, table, expected
    finally:
        psql(url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_postgres_source(data_server, postgres_table):
    url, table, expected = postgres_table
    source = {"kind": "postgres", "url": url, "query": f"SELECT {', '.join(PG_COLUMNS)} FROM {table} ORDER BY id"}
    answer = ok(ingest(data_server, "orders_pg", source))
    assert answer["created"] is True and answer["version"]["row_count"] == len(expected)
    assert names(answer["version"]["schema"]) == PG_COLUMNS
    assert_frame_equal(download(data_server, "orders_pg", answer["version"]["version"]), expected)

    bad = {"kind": "postgres", "url": url, "query": f"SELECT no_such_column FROM {table}"}
    assert_refused(data_server, "orders_pg_bad", ingest(data_server, "orders_pg_bad", bad))
