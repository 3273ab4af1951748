"""Proxied artifacts (`mlflow-artifacts:` URIs) through the unmodified `mlflow` client: upload,
list, download (files, directories, a 50 MB file) and delete. MLflow mlflow_artifacts.proto:
UploadArtifact (PUT), DownloadArtifact (GET), ListArtifacts (GET ?path=), DeleteArtifact (DELETE),
served under /api/2.0/mlflow-artifacts/artifacts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import mlflow.artifacts
import pytest
from mlflow import MlflowClient

from mlflow_helpers import ARTIFACTS_API, unique

LARGE_BYTES = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def client(mlflow_tracking) -> MlflowClient:
    return MlflowClient(mlflow_tracking.url)


@pytest.fixture(scope="module")
def run_id(client) -> str:
    experiment_id = client.create_experiment(unique("artifacts"))
    return client.create_run(experiment_id).info.run_id


def proxy_path(client, run_id: str, artifact_path: str = "") -> str:
    """The artifact proxy's path for a run's artifact: `mlflow-artifacts:/<exp>/<run>/artifacts`
    maps to `/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts`."""
    root = urlparse(client.get_run(run_id).info.artifact_uri).path.strip("/")
    return f"{root}/{artifact_path}".rstrip("/")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def listing(client, run_id: str, path: str | None = None) -> dict[str, tuple[bool, int | None]]:
    return {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id, path)}


def test_run_artifact_uri_is_proxied(client, run_id):
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:")


def test_empty_and_small_files(client, run_id, tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    small = tmp_path / "hello.txt"
    small.write_text("hello, artifacts\n")
    client.log_artifact(run_id, str(empty))
    client.log_artifact(run_id, str(small))
    client.log_artifact(run_id, str(small), artifact_path="copies")

    root = listing(client, run_id)
    # MLflow's proxy omits `file_size` for an empty file (the proto default), so the client
    # reads None; 0 is just as true.
    assert root["empty.bin"] in ((False, None), (False, 0))
    assert root["hello.txt"] == (False, small.stat().st_size)
    assert root["copies"] == (True, None)
    assert listing(client, run_id, "copies") == {"copies/hello.txt": (False, small.stat().st_size)}

    out = tmp_path / "out"
    out.mkdir()
    got_empty = Path(client.download_artifacts(run_id, "empty.bin", str(out)))
    assert got_empty.read_bytes() == b""
    got_small = Path(client.download_artifacts(run_id, "copies/hello.txt", str(out)))
    assert got_small.read_text() == "hello, artifacts\n"


def test_nested_directories(client, run_id, tmp_path):
    source = tmp_path / "tree"
    (source / "a" / "b").mkdir(parents=True)
    (source / "top.txt").write_text("top")
    (source / "a" / "mid.json").write_text('{"k": 1}')
    (source / "a" / "b" / "deep.csv").write_text("x,y\n1,2\n")
    client.log_artifacts(run_id, str(source), artifact_path="bundle")

    assert listing(client, run_id, "bundle") == {
        "bundle/a": (True, None),
        "bundle/top.txt": (False, 3),
    }
    assert listing(client, run_id, "bundle/a") == {
        "bundle/a/b": (True, None),
        "bundle/a/mid.json": (False, 8),
    }
    assert listing(client, run_id, "bundle/a/b") == {"bundle/a/b/deep.csv": (False, 8)}
    assert client.list_artifacts(run_id, "no/such/dir") == []

    # A whole directory comes down with its structure.
    out = Path(client.download_artifacts(run_id, "bundle", str(tmp_path / "client-dl")))
    assert (out / "top.txt").read_text() == "top"
    assert (out / "a" / "b" / "deep.csv").read_text() == "x,y\n1,2\n"

    out = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="bundle/a", dst_path=str(tmp_path / "fluent-dl")
        )
    )
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "b",
        "b/deep.csv",
        "mid.json",
    ]
    # Any of the URI forms the client resolves against the tracking server.
    by_runs_uri = mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{run_id}/bundle/top.txt", dst_path=str(tmp_path / "runs-uri")
    )
    assert Path(by_runs_uri).read_text() == "top"
    artifact_uri = client.get_run(run_id).info.artifact_uri
    by_proxy_uri = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{artifact_uri}/bundle/a/mid.json", dst_path=str(tmp_path / "proxy-uri")
    )
    assert Path(by_proxy_uri).read_text() == '{"k": 1}'


def test_text_and_dict_helpers(client, run_id):
    with mlflow.start_run(run_id=run_id):
        mlflow.log_text("some text", "notes/readme.md")
        mlflow.log_dict({"a": [1, 2]}, "notes/config.json")
    artifact_uri = client.get_run(run_id).info.artifact_uri
    assert mlflow.artifacts.load_text(f"{artifact_uri}/notes/readme.md") == "some text"
    assert mlflow.artifacts.load_dict(f"{artifact_uri}/notes/config.json") == {"a": [1, 2]}


def test_large_file_round_trip(client, run_id, tmp_path):
    large = tmp_path / "large.bin"
    with open(large, "wb") as file:
        for _ in range(LARGE_BYTES // (1 << 20)):
            file.write(os.urandom(1 << 20))
    expected = sha256_of(large)

    client.log_artifact(run_id, str(large), artifact_path="big")
    assert listing(client, run_id, "big") == {"big/large.bin": (False, LARGE_BYTES)}
    downloaded = Path(client.download_artifacts(run_id, "big/large.bin", str(tmp_path / "dl")))
    assert downloaded.stat().st_size == LARGE_BYTES
    assert sha256_of(downloaded) == expected


def test_wire_list_and_download(client, run_id, mlflow_tracking, tmp_path):
    """The proxy's own routes, as the client calls them."""
    source = tmp_path / "wire.txt"
    source.write_text("over the wire")
    client.log_artifact(run_id, str(source), artifact_path="wire")

    listed = mlflow_tracking.get(ARTIFACTS_API, params={"path": proxy_path(client, run_id, "wire")})
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"files": [{"path": "wire.txt", "is_dir": False, "file_size": 13}]}

    fetched = mlflow_tracking.get(f"{ARTIFACTS_API}/{proxy_path(client, run_id, 'wire/wire.txt')}")
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == b"over the wire"

    uploaded = mlflow_tracking.request(
        "PUT", f"{ARTIFACTS_API}/{proxy_path(client, run_id, 'wire/put.bin')}", data=b"\x00\x01\x02"
    )
    assert uploaded.status_code == 200, uploaded.text
    assert {f.path for f in client.list_artifacts(run_id, "wire")} == {
        "wire/wire.txt",
        "wire/put.bin",
    }


def test_delete_artifacts(client, run_id, mlflow_tracking, tmp_path):
    """MlflowClient has no delete; the proxy's DELETE route is what MLflow's
    HttpArtifactRepository.delete_artifacts calls."""
    source = tmp_path / "gone"
    (source / "inner").mkdir(parents=True)
    (source / "one.txt").write_text("1")
    (source / "inner" / "two.txt").write_text("2")
    client.log_artifacts(run_id, str(source), artifact_path="trash")
    client.log_artifact(run_id, str(source / "one.txt"), artifact_path="kept")

    deleted = mlflow_tracking.request(
        "DELETE", f"{ARTIFACTS_API}/{proxy_path(client, run_id, 'trash/one.txt')}"
    )
    assert deleted.status_code == 200, deleted.text
    assert set(listing(client, run_id, "trash")) == {"trash/inner"}

    # The artifact repository the client builds for the run deletes through the same route.
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repository = get_artifact_repository(client.get_run(run_id).info.artifact_uri)
    repository.delete_artifacts("trash/inner")
    assert client.list_artifacts(run_id, "trash/inner") == []
    assert listing(client, run_id, "kept") == {"kept/one.txt": (False, 1)}
