"""Small helpers the MLflow client tests (test_mlflow_*.py) share."""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

import pytest
import requests

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


def unique(prefix: str) -> str:
    """A name no other test (or earlier run against the same server) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_client_error(excinfo: pytest.ExceptionInfo, error_code: str) -> None:
    """The MlflowException the client raised carries the server's `error_code` (by name)."""
    assert excinfo.value.error_code == error_code, repr(excinfo.value)


def assert_rest_error(response: requests.Response, status: int, error_code: str) -> dict:
    """MLflow's error shape: JSON with `error_code` and a non-empty `message`.

    (MLflow 3 also sends `sqlstate` and `error_class`; the client reads neither.)"""
    assert response.status_code == status, (response.status_code, response.text[:1000])
    body = response.json()
    assert body.get("error_code") == error_code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


# --- MLFLOW_ENDPOINTS.md ------------------------------------------------------------------------

ENDPOINT_PLACEHOLDERS = [
    (re.compile(r"^(/api/2\.0/mlflow-artifacts/artifacts)/.+"), r"\1/{artifact_path}"),
    (re.compile(r"/m-[0-9a-f]{32}"), "/{model_id}"),
    (re.compile(r"/tr-[0-9a-f]{32}"), "/{trace_id}"),
]


def endpoint_template(path: str) -> str:
    for pattern, replacement in ENDPOINT_PLACEHOLDERS:
        path = pattern.sub(replacement, path)
    return path


def endpoints_table(records: list[dict]) -> str:
    """A Markdown table of the distinct (method, path) the reference server saw, from the JSON
    that KEELSON_TEST_RECORD_ENDPOINTS=<file> makes conftest.py write."""
    rows: dict[tuple[str, str], dict] = {}
    for record in records:
        key = (record["method"], endpoint_template(record["path"]))
        row = rows.setdefault(key, {"client": 0, "test": 0, "statuses": set(), "modules": set()})
        row[record["by"]] += 1
        row["statuses"].add(record["status"])
        row["modules"].add(record["module"].removeprefix("test_mlflow_"))
    lines = [
        "| method | path | calls by the client | by the tests' own `requests` | statuses seen "
        "| test modules |",
        "|---|---|---:|---:|---|---|",
    ]
    for (method, path), row in sorted(rows.items(), key=lambda item: (item[0][1], item[0][0])):
        statuses = ", ".join(str(s) for s in sorted(row["statuses"]))
        modules = ", ".join(sorted(row["modules"]))
        lines.append(
            f"| {method} | `{path}` | {row['client']} | {row['test']} | {statuses} | {modules} |"
        )
    return "\n".join(lines) + "\n"




# --- prompt registry ----------------------------------------------------------------------------

# Background threads the client starts after register_prompt / load_prompt: they tag the prompt with
# the active experiment (`_mlflow_experiment_ids`) or link it to the active model.
PROMPT_LINK_THREAD_PREFIXES = ("link_prompt_to_experiment_thread-", "link_prompt_thread-")


def wait_for_prompt_links(timeout_s: float = 30.0) -> None:
    """Join the client's prompt-linking threads, so the requests they send are done (no race with
    what a test reads next)."""
    import threading
    import time

    deadline = time.monotonic() + timeout_s
    for thread in threading.enumerate():
        if thread.name.startswith(PROMPT_LINK_THREAD_PREFIXES):
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), f"{thread.name} still running after {timeout_s} s"


if __name__ == "__main__":
    # python tests/clients/mlflow_helpers.py recorded.json  -> the table for MLFLOW_ENDPOINTS.md
    print(endpoints_table(json.loads(Path(sys.argv[1]).read_text())), end="")
