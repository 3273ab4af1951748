"""Workspaces with the unmodified `mlflow` client (3.x): `create_workspace`, `set_workspace` and
the rest of MLflow's workspace API against Keelson with authentication on; runs, artifacts and
registered models kept apart; a workspace the caller has no role in answers exactly as one that
does not exist (MLflow's RESOURCE_DOES_NOT_EXIST); deletion. Both metadata backends."""

from __future__ import annotations

import uuid

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import BACKENDS, REFERENCE_MLFLOW, secret_canary, start_secured_server, stop_server

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own identities")


@pytest.fixture(scope="module", params=BACKENDS)
def secured(request, tmp_path_factory):
    server = start_secured_server(tmp_path_factory.mktemp(f"ws-{request.param}"), request.param)
    try:
        yield server
    finally:
        stop_server(server)


def call(server, method, path, token, **kwargs):
    return requests.request(method, server.url + path, headers={"Authorization": f"Bearer {token}"},
                            timeout=30, **kwargs)


@pytest.fixture()
def as_admin(secured, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", secured.admin_token)
    mlflow.set_tracking_uri(secured.url)
    yield monkeypatch
    mlflow.set_workspace(None)
    mlflow.set_tracking_uri(None)


def unique(prefix: str) -> str:
    # PostgreSQL workspace schemas share the test database, so names never repeat across runs.
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def token_for(secured, principal: str, default_role: str | None) -> str:
    if default_role:
        answer = call(secured, "PUT", f"/api/v1/workspaces/default/roles/{principal}", secured.admin_token,
                      json={"role": default_role})
        assert answer.status_code == 200, answer.text
    made = call(secured, "POST", "/api/v1/tokens", secured.admin_token,
                json={"principal": principal, "description": "test"})
    assert made.status_code == 200, made.text
    return secret_canary(made.json()["token"]["token"])


def error_code(raised: pytest.ExceptionInfo) -> str:
    return getattr(raised.value, "error_code", "") or str(raised.value)


def test_runs_artifacts_and_models_stay_in_their_workspace(secured, as_admin, tmp_path):
    name = unique("team")
    made = mlflow.create_workspace(name, description="the A team")
    assert (made.name, made.description) == (name, "the A team")
    assert name in [w.name for w in mlflow.list_workspaces()]
    assert mlflow.get_workspace(name).description == "the A team"
    assert mlflow.update_workspace(name, description="renamed").description == "renamed"

    experiment = unique("churn")
    artifact = tmp_path / "notes.txt"
    artifact.write_text("only in the team's workspace\n")
    mlflow.set_workspace(name)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        mlflow.log_metric("auc", 0.87)
        mlflow.log_artifact(str(artifact))
    client = MlflowClient()
    assert client.get_run(run.info.run_id).data.metrics == {"auc": 0.87}
    downloaded = client.download_artifacts(run.info.run_id, "notes.txt", str(tmp_path / "down"))
    assert open(downloaded).read() == "only in the team's workspace\n"
    model = unique("model")
    client.create_registered_model(model)
    client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    assert [m.name for m in client.search_registered_models(filter_string=f"name = '{model}'")] == [model]

    # The default workspace sees none of it, and may use the same names.
    mlflow.set_workspace(None)
    client = MlflowClient()
    assert client.get_experiment_by_name(experiment) is None
    assert client.search_registered_models(filter_string=f"name = '{model}'") == []
    with pytest.raises(MlflowException) as missing:
        client.get_run(run.info.run_id)
    assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"
    assert client.create_experiment(experiment)
    client.create_registered_model(model)

    # RESTRICT refuses while it holds resources; CASCADE deletes it and everything in it.
    with pytest.raises(MlflowException) as refused:
        mlflow.delete_workspace(name)
    assert "CASCADE" in str(refused.value)
    mlflow.delete_workspace(name, mode="CASCADE")
    assert name not in [w.name for w in mlflow.list_workspaces()]
    mlflow.set_workspace(name)
    with pytest.raises(MlflowException) as gone:
        MlflowClient().search_experiments()
    assert error_code(gone) == "RESOURCE_DOES_NOT_EXIST"


def test_a_workspace_without_a_grant_answers_as_one_that_does_not_exist(secured, as_admin):
    name = unique("private")
    mlflow.create_workspace(name)
    mlflow.set_workspace(name)
    mlflow.set_experiment("secret-project")

    carol = unique("carol")
    token = token_for(secured, carol, "editor")
    as_admin.setenv("MLFLOW_TRACKING_TOKEN", token)
    answers = {}
    for workspace in (name, unique("nobody")):
        mlflow.set_workspace(workspace)
        client = MlflowClient()
        with pytest.raises(MlflowException) as hidden:
            client.search_experiments()
        # The client reads RESOURCE_DOES_NOT_EXIST here as "no such experiment".
        assert client.get_experiment_by_name("secret-project") is None
        with pytest.raises(MlflowException) as written:
            client.create_experiment("mine")
        with pytest.raises(MlflowException) as described:
            mlflow.get_workspace(workspace)
        answers[workspace] = [
            (error_code(e), str(e.value).replace(workspace, "<ws>")) for e in (hidden, written, described)
        ]
        assert all(code == "RESOURCE_DOES_NOT_EXIST" for code, _ in answers[workspace]), answers[workspace]
    hidden_answers, missing_answers = answers.values()
    assert hidden_answers == missing_answers
    mlflow.set_workspace(None)
    assert name not in [w.name for w in mlflow.list_workspaces()]

    # A viewer role there lets her read and not write, with MLflow's PERMISSION_DENIED.
    bound = call(secured, "PUT", f"/api/v1/workspaces/{name}/roles/{carol}", secured.admin_token,
                 json={"role": "viewer"})
    assert bound.status_code == 200, bound.text
    mlflow.set_workspace(name)
    client = MlflowClient()
    assert client.get_experiment_by_name("secret-project") is not None
    with pytest.raises(MlflowException) as denied:
        client.create_experiment("mine")
    assert error_code(denied) == "PERMISSION_DENIED"
    # Nor may she make or delete workspaces.
    mlflow.set_workspace(None)
    with pytest.raises(MlflowException) as refused:
        mlflow.create_workspace(unique("hers"))
    assert error_code(refused) == "PERMISSION_DENIED"


def test_per_resource_permissions_with_mlflows_auth_client(secured, as_admin):
    """MLflow 3's `AuthServiceClient` (from `mlflow.server.get_app_client("basic-auth", ...)`)
    grants, checks and revokes Keelson's per-resource permissions."""
    from mlflow.server import get_app_client

    auth = get_app_client("basic-auth", tracking_uri=secured.url)
    admin_client = MlflowClient()
    experiment_id = admin_client.create_experiment(unique("restricted"))
    dana = unique("dana")
    dana_token = token_for(secured, dana, "editor")

    auth.grant_user_permission(dana, "experiment", experiment_id, "NO_PERMISSIONS")
    checked = auth.get_user_permission(dana, "experiment", experiment_id)
    assert (checked.allowed, checked.permission) == (False, "NO_PERMISSIONS")
    with pytest.raises(MlflowException) as duplicate:
        auth.grant_user_permission(dana, "experiment", experiment_id, "READ")
    assert error_code(duplicate) == "RESOURCE_ALREADY_EXISTS"

    as_admin.setenv("MLFLOW_TRACKING_TOKEN", dana_token)
    client = MlflowClient()
    with pytest.raises(MlflowException) as hidden:
        client.get_experiment(experiment_id)
    assert error_code(hidden) == "PERMISSION_DENIED"
    assert experiment_id not in [e.experiment_id for e in client.search_experiments()]

    # READ instead: she sees it and cannot add runs to it, though her role edits elsewhere.
    as_admin.setenv("MLFLOW_TRACKING_TOKEN", secured.admin_token)
    auth.revoke_user_permission(dana, "experiment", experiment_id)
    auth.grant_user_permission(dana, "experiment", experiment_id, "READ")
    as_admin.setenv("MLFLOW_TRACKING_TOKEN", dana_token)
    client = MlflowClient()
    assert client.get_experiment(experiment_id).experiment_id == experiment_id
    with pytest.raises(MlflowException) as denied:
        client.create_run(experiment_id)
    assert error_code(denied) == "PERMISSION_DENIED"
    own = client.create_experiment(unique("danas"))
    client.create_run(own)
    # What she made, she manages: she may delete it and grant on it.
    assert auth.get_user_permission(dana, "experiment", own).permission == "MANAGE"
    client.delete_experiment(own)
