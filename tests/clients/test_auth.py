"""Authentication on: the unmodified `mlflow` client with a user's name and password and with a
token, roles deciding what each may do, the first start's admin token, revocation, and the audit
trail naming who did what. Both metadata backends."""

from __future__ import annotations

import uuid

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import BACKENDS, REFERENCE_MLFLOW, secret_canary, start_secured_server, stop_server

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own identities")

ALICE_PASSWORD = secret_canary(f"alice-pass-{uuid.uuid4().hex}")
VERA_PASSWORD = secret_canary(f"vera-pass-{uuid.uuid4().hex}")


@pytest.fixture(scope="module", params=BACKENDS)
def secured(request, tmp_path_factory):
    server = start_secured_server(tmp_path_factory.mktemp(f"auth-{request.param}"), request.param)
    try:
        yield server
    finally:
        stop_server(server)


def call(server, method, path, token=None, auth=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, server.url + path, headers=headers, auth=auth, timeout=30, **kwargs)


@pytest.fixture()
def mlflow_env(secured, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def users(secured):
    admin = secured.admin_token
    for name, password, role in [("alice", ALICE_PASSWORD, "editor"), ("vera", VERA_PASSWORD, "viewer")]:
        answer = call(secured, "POST", "/api/v1/users", admin,
                      json={"name": name, "password": password, "role": role})
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 400:
            assert answer.json()["error_code"] == "RESOURCE_ALREADY_EXISTS", answer.text


def test_anonymous_callers_are_refused_with_401(secured, mlflow_env):
    assert call(secured, "GET", "/health/live").status_code == 200
    answer = call(secured, "POST", "/api/2.0/mlflow/experiments/create", json={"name": "x"})
    assert answer.status_code == 401 and answer.json()["error_code"] == "UNAUTHENTICATED"
    assert "Basic" in answer.headers["WWW-Authenticate"]
    with pytest.raises(MlflowException) as refused:
        MlflowClient(secured.url).search_experiments()
    assert "401" in str(refused.value) or "UNAUTHENTICATED" in str(refused.value)


def test_mlflow_client_with_username_and_password(secured, mlflow_env):
    users(secured)
    mlflow_env.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    mlflow_env.setenv("MLFLOW_TRACKING_PASSWORD", ALICE_PASSWORD)
    client = MlflowClient(secured.url)
    experiment = client.create_experiment(f"alice-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "accuracy", 0.91)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.91}

    # The audit trail names alice for her writes.
    records = call(secured, "GET", "/api/v1/audit?limit=1000", secured.admin_token).json()["records"]
    mine = [r for r in records if r["principal"] == "alice"]
    assert any(r["action"] == "POST /api/2.0/mlflow/experiments/create" for r in mine), mine

    mlflow_env.setenv("MLFLOW_TRACKING_PASSWORD", "not-alices-password")
    with pytest.raises(MlflowException) as refused:
        MlflowClient(secured.url).get_run(run.info.run_id)
    assert "401" in str(refused.value) or "UNAUTHENTICATED" in str(refused.value)


def test_mlflow_client_with_a_token_and_roles(secured, mlflow_env):
    users(secured)
    made = call(secured, "POST", "/api/v1/tokens", auth=("alice", ALICE_PASSWORD),
                json={"description": "notebook", "expires_in_days": 7})
    assert made.status_code == 200, made.text
    token = secret_canary(made.json()["token"]["token"])
    listed = call(secured, "GET", "/api/v1/tokens", token).json()["tokens"]
    assert [t["description"] for t in listed] == ["notebook"] and "token" not in listed[0]

    mlflow_env.setenv("MLFLOW_TRACKING_TOKEN", token)
    name = f"token-{uuid.uuid4().hex[:8]}"
    mlflow.set_tracking_uri(secured.url)
    try:
        mlflow.set_experiment(name)
        with mlflow.start_run():
            mlflow.log_param("lr", "0.1")
    finally:
        mlflow.set_tracking_uri(None)
    experiment = MlflowClient(secured.url).get_experiment_by_name(name)
    assert experiment is not None

    # A viewer reads but cannot write: MLflow's PERMISSION_DENIED.
    mlflow_env.delenv("MLFLOW_TRACKING_TOKEN")
    mlflow_env.setenv("MLFLOW_TRACKING_USERNAME", "vera")
    mlflow_env.setenv("MLFLOW_TRACKING_PASSWORD", VERA_PASSWORD)
    viewer = MlflowClient(secured.url)
    assert viewer.get_experiment_by_name(name).experiment_id == experiment.experiment_id
    with pytest.raises(MlflowException) as refused:
        viewer.create_experiment(f"vera-{uuid.uuid4().hex[:8]}")
    assert refused.value.error_code == "PERMISSION_DENIED"

    # Revoked: refused at once.
    token_id = listed[0]["id"]
    assert call(secured, "DELETE", f"/api/v1/tokens/{token_id}", token).status_code == 200
    assert call(secured, "GET", "/api/v1/whoami", token).status_code == 401


def test_only_admins_manage_identities(secured):
    users(secured)
    for method, path, body in [("POST", "/api/v1/users", {"name": "mallory", "password": "x" * 16}),
                               ("PUT", "/api/v1/workspaces/default/roles/alice", {"role": "admin"}),
                               ("GET", "/api/v1/audit", None), ("PUT", "/api/v1/secrets/k", {"value": "v" * 12})]:
        answer = call(secured, method, path, auth=("alice", ALICE_PASSWORD), json=body)
        assert answer.status_code == 403, (method, path, answer.text)
    whoami = call(secured, "GET", "/api/v1/whoami", auth=("alice", ALICE_PASSWORD)).json()
    assert whoami["name"] == "alice" and whoami["role"] == "editor"
