"""Keelson's registry governance: promotion policies enforced on every door (the MLflow client,
Keelson's API, the `keelson model` CLI), approvals by role, the alias audit trail, rollback,
version lineage, and export/import of a model package between two servers.

Users come from an `auth.tokens_file` (bearer tokens; the MLflow client sends its
MLFLOW_TRACKING_TOKEN the same way). Both metadata backends.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from conftest import BACKENDS, REFERENCE_MLFLOW, keelson_bin, start_server, stop_server

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own API; MLflow has no promotion policies")

USERS = {"alice": ["approver"], "bob": ["approver", "ml-engineer"], "carol": []}
TOKENS = {name: f"{name}-token-{uuid.uuid4().hex}" for name in USERS}
X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0], [5.0, 0.0]])
Y = np.array([0, 0, 0, 1, 1, 1])


def write_config(directory: Path) -> Path:
    lines = []
    for name, roles in USERS.items():
        digest = hashlib.sha256(TOKENS[name].encode()).hexdigest()
        lines += ["[[users]]", f'name = "{name}"', f'token_sha256 = "{digest}"', f"roles = {json.dumps(roles)}", ""]
    tokens = directory / "tokens.toml"
    tokens.write_text("\n".join(lines))
    config = directory / "keelson.toml"
    config.write_text(f'[auth]\ntokens_file = "{tokens}"\n')
    return config


def start_governed(directory: Path, backend: str):
    directory.mkdir(parents=True, exist_ok=True)
    return start_server(directory, backend, ["--config", str(write_config(directory))])


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    import mlflow.tracking.fluent

    server = start_governed(tmp_path_factory.mktemp(f"governed-{request.param}"), request.param)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        mlflow.set_tracking_uri(server.url)
        try:
            yield server
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.tracking.fluent._active_experiment_id = None
            mlflow.set_tracking_uri(previous)
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous
            stop_server(server)


def api(server, method: str, path: str, user: str | None = None, **kwargs):
    headers = {"Authorization": f"Bearer {TOKENS[user]}"} if user else {}
    return server.request(method, path, headers=headers, **kwargs)


def cli(server, *args: str, user: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    if user:
        env["KEELSON_TOKEN"] = TOKENS[user]
    return subprocess.run(
        [str(keelson_bin()), "model", "--server", server.url, *args],
        capture_output=True, text=True, timeout=120, env=env,
    )


def train_and_register(name: str, accuracy: float, git_commit: str = "0" * 40) -> str:
    """Logs a run with `accuracy`, a sklearn model, a dataset input; registers it; returns the version."""
    mlflow.set_experiment(f"governance-{name}")
    with mlflow.start_run() as run:
        mlflow.set_tag("mlflow.source.git.commit", git_commit)
        mlflow.log_params({"C": "1.0", "features": "2"})
        mlflow.log_metric("accuracy", accuracy)
        dataset = mlflow.data.from_numpy(X, targets=Y, name="train-set")
        mlflow.log_input(dataset, context="training")
        model = LogisticRegression().fit(X, Y)
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
    version = mlflow.register_model(info.model_uri, name)
    assert version.run_id == run.info.run_id
    return version.version


def alias_of(name: str, alias: str) -> str | None:
    try:
        return MlflowClient().get_model_version_by_alias(name, alias).version
    except MlflowException:
        return None


POLICY = {
    "metric_thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}],
    "champion_comparisons": [{"metric": "accuracy", "higher_is_better": True, "min_improvement": 0.01}],
    "required_tags": [{"key": "validation", "value": "passed"}],
    "required_approvals": [{"role": "approver", "count": 1}],
}


def test_policy_holds_on_every_door_and_rollback_restores(server, tmp_path):
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    client = MlflowClient()
    v1 = train_and_register(name, 0.91)
    v2 = train_and_register(name, 0.85)
    v3 = train_and_register(name, 0.95)

    policy_path = f"/api/v1/models/{name}/aliases/production/policy"
    assert api(server, "PUT", policy_path, json=POLICY).status_code == 200
    bad = api(server, "PUT", policy_path, json={"required_approvals": [{"role": "approver", "count": 0}]})
    assert bad.status_code == 400 and "at least 1" in bad.json()["message"]
    assert api(server, "GET", policy_path).json()["policy"]["policy"] == POLICY, "the refused update changed nothing"

    # v1: no tag, no approval yet -> refused through the MLflow client with every reason.
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias(name, "production", v1)
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert "validation" in refused.value.message and "approval" in refused.value.message
    client.set_model_version_tag(name, v1, "validation", "passed")
    anonymous = api(server, "POST", f"/api/v1/models/{name}/versions/{v1}/approvals", json={"alias": "production"})
    assert anonymous.status_code == 400, anonymous.text
    approved = api(server, "POST", f"/api/v1/models/{name}/versions/{v1}/approvals", user="alice",
                   json={"alias": "production", "comment": "reviewed the eval report"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["approval"]["roles"] == ["approver"]
    client.set_registered_model_alias(name, "production", v1)
    assert alias_of(name, "production") == v1

    # v2 misses the threshold and does not beat the champion: refused by all three doors.
    client.set_model_version_tag(name, v2, "validation", "passed")
    api(server, "POST", f"/api/v1/models/{name}/versions/{v2}/approvals", user="bob", json={"alias": "production"})
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias(name, "production", v2)
    assert "accuracy" in refused.value.message and ">= 0.9" in refused.value.message
    native = api(server, "PUT", f"/api/v1/models/{name}/aliases/production", json={"version": v2, "reason": "try"})
    assert native.status_code == 403 and native.json()["error_code"] == "PERMISSION_DENIED"
    assert "current holder" in native.json()["message"]
    from_cli = cli(server, "set-alias", name, "production", v2, "--reason", "cli try")
    assert from_cli.returncode == 1 and "PERMISSION_DENIED" in from_cli.stderr, from_cli.stderr
    assert alias_of(name, "production") == v1, "no refused move was written"

    # v3 is better but has no approval by the role: carol's approval does not count.
    client.set_model_version_tag(name, v3, "validation", "passed")
    carol = api(server, "POST", f"/api/v1/models/{name}/versions/{v3}/approvals", user="carol",
                json={"alias": "production"})
    assert carol.status_code == 200
    from_cli = cli(server, "set-alias", name, "production", v3, user="bob")
    assert from_cli.returncode == 1 and "0 of 1 required approval(s) by role 'approver'" in from_cli.stderr
    from_cli = cli(server, "approve", name, v3, "--alias", "production", "--comment", "ok", user="alice")
    assert from_cli.returncode == 0, from_cli.stderr
    assert "as alice" in from_cli.stdout
    from_cli = cli(server, "set-alias", name, "production", v3, "--reason", "better model", user="bob")
    assert from_cli.returncode == 0, from_cli.stderr
    assert alias_of(name, "production") == v3

    # A version an alias points at cannot be deleted; nothing changes.
    with pytest.raises(MlflowException) as refused:
        client.delete_model_version(name, v3)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE" and "production" in refused.value.message
    assert client.get_model_version(name, v3).version == v3

    # Rollback moves production back to v1 at once, without consulting the policy.
    from_cli = cli(server, "rollback", name, "production", user="carol")
    assert from_cli.returncode == 0, from_cli.stderr
    assert f"version {v3} -> version {v1}" in from_cli.stdout
    assert alias_of(name, "production") == v1
    history = api(server, "GET", f"/api/v1/models/{name}/alias-history", params={"alias": "production"}).json()
    moves = [(e["from_version"], e["to_version"], e["actor"]) for e in history["events"]]
    assert moves == [(None, v1, "anonymous"), (v1, v3, "bob"), (v3, v1, "carol")]
    reasons = [e["reason"] for e in history["events"]]
    assert reasons[1] == "better model" and reasons[2].startswith("rollback")
    ids = [e["id"] for e in history["events"]]
    assert ids == sorted(ids)
    listing = cli(server, "history", name, "--alias", "production")
    assert listing.returncode == 0 and len(listing.stdout.strip().splitlines()) == 3, listing.stdout

    # Deleting the alias is recorded too; a second rollback brings it back.
    client.delete_registered_model_alias(name, "production")
    assert alias_of(name, "production") is None
    assert cli(server, "rollback", name, "production").returncode == 0
    assert alias_of(name, "production") == v1


def test_lineage_tree_and_metrics_at_registration(server):
    name = f"lineage-{uuid.uuid4().hex[:8]}"
    commit = uuid.uuid4().hex + "abcdefgh"
    version = train_and_register(name, 0.93, git_commit=commit)
    mv = MlflowClient().get_model_version(name, version)
    # Logging after registration must not rewrite what lineage says was known at registration.
    MlflowClient().log_metric(mv.run_id, "accuracy", 0.10, step=5)

    answer = api(server, "GET", f"/api/v1/models/{name}/versions/{version}/lineage").json()
    summary = answer["summary"]
    assert summary["run_id"] == mv.run_id and summary["git_commit"] == commit
    assert summary["params"] == {"C": "1.0", "features": "2"}
    assert summary["metrics"] == {"accuracy": 0.93}
    assert [d["name"] for d in summary["datasets"]] == ["train-set"]
    assert summary["datasets"][0]["context"] == "training" and summary["datasets"][0]["digest"]
    assert any(r.startswith("scikit-learn") for r in summary["requirements"]), summary["requirements"]
    assert [column["type"] for column in answer["signature"]["inputs"]] == ["tensor"]
    labels = [child["label"] for child in answer["lineage"]["children"]]
    assert f"run {mv.run_id}" in labels and "metrics at registration" in labels and "signature" in labels

    tree = cli(server, "lineage", name, version)
    assert tree.returncode == 0, tree.stderr
    assert f"{name} v{version}" in tree.stdout.splitlines()[0]
    assert f"git commit {commit}" in tree.stdout and "train-set" in tree.stdout and "└── " in tree.stdout
    missing = cli(server, "lineage", name, "99")
    assert missing.returncode == 1 and "RESOURCE_DOES_NOT_EXIST" in missing.stderr


def package_files(directory: Path) -> dict[str, str]:
    manifest = json.loads((directory / "manifest.json").read_text())
    return {f["path"]: f["sha256"] for f in manifest["files"]}


def test_export_import_between_servers_keeps_digests_signature_and_lineage(server, tmp_path):
    name = f"promote-{uuid.uuid4().hex[:8]}"
    commit = "c0ffee" * 6 + "beef"
    version = train_and_register(name, 0.97, git_commit=commit)
    client = MlflowClient()
    client.set_model_version_tag(name, version, "validation", "passed")
    client.set_registered_model_alias(name, "candidate", version)

    exported = tmp_path / "export-a"
    done = cli(server, "export", f"{name}@candidate", str(exported))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["model"]["name"] == name and manifest["model"]["version"] == version
    files = package_files(exported)
    weights = [path for path in files if path.startswith("model.")]  # model.skops or model.pkl
    assert "MLmodel" in files and len(weights) == 1, files
    for path, digest in files.items():
        assert hashlib.sha256((exported / "model" / path).read_bytes()).hexdigest() == digest

    # A damaged package is refused before anything is written.
    damaged = tmp_path / "damaged"
    subprocess.run(["cp", "-r", str(exported), str(damaged)], check=True)
    weights_path = damaged / "model" / weights[0]
    weights_path.write_bytes(weights_path.read_bytes() + b"\0")

    other = start_governed(tmp_path / "server-b", "sqlite")
    try:
        refused = cli(other, "import", str(damaged))
        assert refused.returncode == 1 and "does not match its digest" in refused.stderr
        assert other.get("/api/2.0/mlflow/registered-models/search").json().get("registered_models", []) == []

        done = cli(other, "import", str(exported))
        assert done.returncode == 0, done.stderr
        imported = other.get("/api/2.0/mlflow/model-versions/search", params={"filter": f"name = '{name}'"}).json()
        assert [v["version"] for v in imported["model_versions"]] == ["1"]
        tags = {t["key"]: t["value"] for t in imported["model_versions"][0]["tags"]}
        assert tags["validation"] == "passed" and tags["keelson.import.package_digest"] == manifest["package_digest"]

        mlflow.set_tracking_uri(other.url)
        try:
            loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
            assert loaded.predict(X).tolist() == LogisticRegression().fit(X, Y).predict(X).tolist()
        finally:
            mlflow.set_tracking_uri(server.url)

        again = tmp_path / "export-b"
        done = cli(other, "export", f"{name}/1", str(again))
        assert done.returncode == 0, done.stderr
        second = json.loads((again / "manifest.json").read_text())
        assert package_files(again) == files, "file digests survive the round trip"
        assert second["package_digest"] == manifest["package_digest"]
        assert second["signature"] == manifest["signature"] and manifest["signature"]["inputs"]
        for key in ("git_commit", "params", "metrics", "requirements"):
            assert second["summary"][key] == manifest["summary"][key], key
        assert [(d["name"], d["digest"]) for d in second["summary"]["datasets"]] == [
            (d["name"], d["digest"]) for d in manifest["summary"]["datasets"]
        ]
    finally:
        stop_server(other)
