"""Multipart artifact upload through the unmodified `mlflow` client
(MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD): Keelson hands out part URLs on itself, stages the parts
and joins them on completion. (MLflow's own server supports this only over cloud stores, so this
module runs against Keelson only.)"""

from __future__ import annotations

import hashlib
import os

import mlflow
import mlflow.artifacts
import pytest
import requests
from mlflow import MlflowClient

from mlflow_helpers import unique

MIB = 1024 * 1024


@pytest.fixture()
def multipart_env(monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MIB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MIB))


def test_large_file_uploads_in_parts_and_round_trips(keelson_server, multipart_env, tmp_path):
    client = MlflowClient(keelson_server.url)
    run_id = client.create_run(client.create_experiment(unique("mpu"))).info.run_id
    data = os.urandom(12 * MIB + 321)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    client.log_artifact(run_id, str(source), artifact_path="blobs")

    log = keelson_server.log_path.read_text()
    assert log.count("/mlflow-artifacts/mpu/upload/") >= 3, "the client did not use multipart upload"
    assert "/mlflow-artifacts/mpu/complete/" in log

    mlflow.set_tracking_uri(keelson_server.url)
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="blobs/weights.bin", dst_path=str(tmp_path / "out")
    )
    assert hashlib.sha256(open(downloaded, "rb").read()).hexdigest() == hashlib.sha256(data).hexdigest()
    # Staged parts are gone: the run's artifact tree holds only the file.
    assert [f.path for f in client.list_artifacts(run_id, "blobs")] == ["blobs/weights.bin"]


def test_completion_refuses_missing_parts_and_unknown_uploads(keelson_server):
    base = f"{keelson_server.url}/api/2.0/mlflow-artifacts/mpu"
    created = requests.post(
        f"{base}/create/0/abc/artifacts", json={"path": "/tmp/f.bin", "num_parts": 2}, timeout=10
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert [c["part_number"] for c in body["credentials"]] == [1, 2]
    upload_id = body["upload_id"]
    part = requests.put(body["credentials"][0]["url"], data=b"x" * 10, timeout=10)
    assert part.status_code == 200 and part.headers.get("ETag")

    gap = requests.post(
        f"{base}/complete/0/abc/artifacts",
        json={"path": "/tmp/f.bin", "upload_id": upload_id, "parts": [{"part_number": 1}, {"part_number": 2}]},
        timeout=10,
    )
    assert gap.status_code == 400 and gap.json()["error_code"] == "INVALID_PARAMETER_VALUE", gap.text

    elsewhere = requests.post(
        f"{base}/complete/0/other/artifacts",
        json={"path": "/tmp/f.bin", "upload_id": upload_id, "parts": [{"part_number": 1}]},
        timeout=10,
    )
    assert elsewhere.status_code == 400, elsewhere.text

    unknown = requests.post(
        f"{base}/abort/0/abc/artifacts",
        json={"path": "/tmp/f.bin", "upload_id": "00000000-0000-4000-8000-000000000000"},
        timeout=10,
    )
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    aborted = requests.post(
        f"{base}/abort/0/abc/artifacts", json={"path": "/tmp/f.bin", "upload_id": upload_id}, timeout=10
    )
    assert aborted.status_code == 200, aborted.text
    late = requests.put(body["credentials"][1]["url"], data=b"y", timeout=10)
    assert late.status_code == 404, late.text

    hostile = requests.post(f"{base}/create/0/abc/artifacts", json={"path": "../../etc/passwd", "num_parts": 1}, timeout=10)
    # Only the file name of the local path is used, so this lands at 0/abc/artifacts/passwd.
    assert hostile.status_code == 200, hostile.text
    too_many = requests.post(f"{base}/create/0/abc/artifacts", json={"path": "f", "num_parts": 10001}, timeout=10)
    assert too_many.status_code == 400


def test_server_info_turns_multipart_on_without_client_settings(keelson_server, monkeypatch, tmp_path):
    """Without MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD the client asks /api/3.0/mlflow/server-info
    (unauthenticated) and uploads in parts because Keelson advertises it."""
    info = requests.get(f"{keelson_server.url}/api/3.0/mlflow/server-info", timeout=30)
    assert info.status_code == 200
    assert info.json()["multipart_uploads_enabled"] is True
    assert info.json()["multipart_downloads_enabled"] is False
    monkeypatch.delenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", raising=False)
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MIB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MIB))
    client = MlflowClient(keelson_server.url)
    run = client.create_run(client.create_experiment(unique("mpu-info")))
    data = os.urandom(11 * MIB)
    source = tmp_path / "auto.bin"
    source.write_bytes(data)
    before = keelson_server.log_path.read_text().count("/mlflow-artifacts/mpu/complete/")
    client.log_artifact(run.info.run_id, str(source))
    assert keelson_server.log_path.read_text().count("/mlflow-artifacts/mpu/complete/") == before + 1
    downloaded = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{run.info.artifact_uri}/auto.bin", dst_path=str(tmp_path / "out")
    )
    assert hashlib.sha256(open(downloaded, "rb").read()).hexdigest() == hashlib.sha256(data).hexdigest()
