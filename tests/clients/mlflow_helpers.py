"""Small helpers the MLflow client tests (test_mlflow_*.py) share."""

from __future__ import annotations

import uuid

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
