"""The model catalog: sync from catalog files (YAML and JSON, a path and an HTTP URL), reports of
what each sync added, changed and removed, the new-model hook (a job per added model),
evaluation scores, the schedule, the CLI, and bad catalog files refused without partial writes.
Both metadata backends.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import BACKENDS, REFERENCE_MLFLOW, keelson_bin, start_server, stop_server

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own API")

VENDOR_YAML = """version: 1
models:
  - id: openai/gpt-4o-mini
    provider: openai
    model: gpt-4o-mini
    task: chat
    modalities: [text, image]
    context_length: 128000
    price: {input_per_1k: 0.00015, output_per_1k: 0.0006}
    license: proprietary
  - id: anthropic/claude-haiku
    provider: anthropic
    model: claude-3-5-haiku
    task: chat
    context_length: 200000
    price: {input_per_1k: 0.0008, output_per_1k: 0.004}
  - id: local/llama-gguf
    provider: local-gguf
    model: llama-3.2-1b-instruct
    task: chat
    uri: models:/llama-1b/1
    license: llama3.2
"""

LOCAL_JSON = {
    "version": 1,
    "models": [
        {"id": "local/fraud-onnx", "provider": "local-onnx", "model": "fraud", "task": "classification",
         "modalities": ["tabular"], "uri": "models:/fraud@production", "license": "internal"},
        {"id": "vllm/qwen", "provider": "openai-compatible", "model": "qwen2.5-7b", "task": "chat",
         "endpoint": "http://127.0.0.1:8000/v1", "context_length": 32768},
    ],
}


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def file_server(tmp_path_factory):
    """A directory served over HTTP on loopback. A catalog location given through the API must be
    a URL the egress policy allows (the test servers allow loopback); files on the server are
    read only for sources configured in `catalog.sources`."""
    root = tmp_path_factory.mktemp("served")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def served(file_server, name: str, text: str) -> str:
    root, base = file_server
    unique = f"{uuid.uuid4().hex[:8]}-{name}"
    (root / unique).write_text(text)
    return f"{base}/{unique}"


@pytest.fixture(scope="module", params=BACKENDS)
def catalog_server(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"catalog-{request.param}")
    vendor = directory / "vendor.yaml"
    vendor.write_text(VENDOR_YAML)
    config = directory / "keelson.toml"
    config.write_text(
        "[catalog]\n"
        'on_new_model_job = "system.noop"\n'
        "[catalog.sources]\n"
        f'vendor = "{vendor}"\n'
    )
    server = start_server(directory, request.param, ["--config", str(config)])
    server.vendor_path = vendor
    server.workdir = directory
    try:
        yield server
    finally:
        stop_server(server)


def sync(server, **body):
    return server.post("/api/v1/catalog/sync", json=body)


def models(server, **params):
    response = server.get("/api/v1/catalog/models", params=params)
    assert response.status_code == 200, response.text
    return {m["id"]: m for m in response.json()["models"]}


def test_sync_reports_added_changed_removed_and_starts_hooks(catalog_server, tmp_path):
    server = catalog_server
    first = sync(server, source="vendor")
    assert first.status_code == 200, first.text
    [report] = first.json()["reports"]
    assert sorted(report["added"]) == ["anthropic/claude-haiku", "local/llama-gguf", "openai/gpt-4o-mini"]
    assert report["changed"] == [] and report["removed"] == [] and report["unchanged"] == 0
    assert len(report["hooks"]) == 3

    listed = models(server)
    gpt = listed["openai/gpt-4o-mini"]
    assert gpt["provider"] == "openai" and gpt["context_length"] == 128000
    assert gpt["modalities"] == ["text", "image"] and gpt["license"] == "proprietary"
    assert gpt["price"] == {"input_per_1k": 0.00015, "output_per_1k": 0.0006, "currency": "USD"}
    assert gpt["source"] == "vendor" and gpt["status"] == "active"

    # The hook started one job per added model, carrying the model.
    jobs = server.get("/api/v1/jobs", params={"kind": "system.noop", "limit": 50}).json()
    hooked = {j["payload"]["model"]["id"] for j in jobs["jobs"] if j["payload"].get("event") == "catalog.model_added"}
    assert {"anthropic/claude-haiku", "local/llama-gguf", "openai/gpt-4o-mini"} <= hooked

    # Same file again: nothing changes, no new hooks.
    [again] = sync(server, source="vendor").json()["reports"]
    assert (again["added"], again["changed"], again["removed"], again["unchanged"]) == ([], [], [], 3)

    # A price change, a removal and an addition.
    text = VENDOR_YAML.replace("input_per_1k: 0.0008", "input_per_1k: 0.001")
    text = text.split("  - id: local/llama-gguf")[0] + (
        "  - id: google/gemma-gguf\n    provider: local-gguf\n    model: gemma-2b\n    task: chat\n"
        "    uri: models:/gemma/3\n"
    )
    server.vendor_path.write_text(text)
    [third] = sync(server, source="vendor").json()["reports"]
    assert third["added"] == ["google/gemma-gguf"]
    assert third["changed"] == ["anthropic/claude-haiku"]
    assert third["removed"] == ["local/llama-gguf"]
    assert third["unchanged"] == 1
    listed = models(server)
    assert "local/llama-gguf" not in listed
    assert listed["anthropic/claude-haiku"]["price"]["input_per_1k"] == 0.001
    assert models(server, include_removed="true")["local/llama-gguf"]["status"] == "removed"

    history = server.get("/api/v1/catalog/syncs").json()["syncs"]
    assert history[0]["report"]["removed"] == ["local/llama-gguf"]
    server.vendor_path.write_text(VENDOR_YAML)


def test_json_source_scores_filters_and_cli(catalog_server, file_server):
    server = catalog_server
    local = served(file_server, "local.json", json.dumps(LOCAL_JSON))
    response = sync(server, source="local", location=local)
    assert response.status_code == 200, response.text
    assert sorted(response.json()["reports"][0]["added"]) == ["local/fraud-onnx", "vllm/qwen"]

    score = server.post("/api/v1/catalog/scores", json={"model_id": "vllm/qwen", "metric": "groundedness",
                                                        "value": 0.82, "evaluation": "eval-run-1"})
    assert score.status_code == 200, score.text
    server.post("/api/v1/catalog/scores", json={"model_id": "vllm/qwen", "metric": "groundedness", "value": 0.86})
    model = server.get("/api/v1/catalog/model", params={"id": "vllm/qwen"}).json()["model"]
    assert [(s["metric"], s["value"]) for s in model["scores"]] == [("groundedness", 0.86)], "latest score per metric"
    missing = server.post("/api/v1/catalog/scores", json={"model_id": "nope/x", "metric": "m", "value": 1.0})
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    assert set(models(server, provider="local-onnx")) == {"local/fraud-onnx"}
    assert set(models(server, task="classification")) == {"local/fraud-onnx"}

    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    listing = subprocess.run([str(keelson_bin()), "catalog", "--server", server.url, "list"],
                             capture_output=True, text=True, timeout=60, env=env)
    assert listing.returncode == 0, listing.stderr
    assert "vllm/qwen" in listing.stdout and "openai-compatible" in listing.stdout
    synced = subprocess.run([str(keelson_bin()), "catalog", "--server", server.url, "sync", "local",
                             "--location", local], capture_output=True, text=True, timeout=60, env=env)
    assert synced.returncode == 0, synced.stderr
    assert "local: added [] changed [] removed [] unchanged 2" in synced.stdout


@pytest.mark.parametrize(
    "text, message",
    [
        ("version: 2\nmodels: []\n", "version 2"),
        ("version: 1\nmodels:\n  - id: x\n    provider: openai\n", "missing field"),
        ("version: 1\nmodels:\n  - {id: y, provider: openai-compatible, model: m, task: chat}\n", "endpoint"),
        ("version: 1\nmodels:\n  - {id: z, provider: openai, model: m, task: chat, colour: red}\n", "unknown field"),
        ("version: 1\nmodels: [\n", "not valid"),
        ('{"version": 1, "models": [', "not valid JSON"),
        ("version: 1\nmodels:\n  - {id: openai/gpt-4o-mini, provider: openai, model: m, task: chat}\n",
         "already listed by catalog source `vendor`"),
    ],
    ids=["version", "missing-field", "no-endpoint", "unknown-field", "yaml-syntax", "json-syntax", "id-conflict"],
)
def test_bad_catalog_files_are_refused_without_partial_writes(catalog_server, file_server, text, message):
    server = catalog_server
    sync(server, source="vendor")
    before = models(catalog_server, include_removed="true")
    bad = served(file_server, "bad.yaml", text)
    response = sync(server, source="other", location=bad)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"], response.json()["message"]
    assert models(catalog_server, include_removed="true") == before


def test_unknown_and_unreadable_sources(catalog_server, file_server, tmp_path):
    response = sync(catalog_server, source="nope")
    assert response.status_code == 400 and "not configured" in response.json()["message"]
    response = sync(catalog_server, source="gone", location=f"{file_server[1]}/missing.yaml")
    assert response.status_code == 400 and "cannot read catalog" in response.json()["message"]
    assert "HTTP 404" in response.json()["message"]
    response = sync(catalog_server, source="../up", location=f"{file_server[1]}/x.yaml")
    assert response.status_code == 400 and "source name" in response.json()["message"]


def test_api_locations_read_no_server_files(catalog_server, tmp_path):
    # Security regression: a location given through the API once read any file the server could.
    secret = tmp_path / "secret.yaml"
    secret.write_text("version: 1\nmodels:\n  - id: leaked/secret-model\n")
    for location in [str(secret), f"file://{secret}", "/etc/passwd"]:
        response = sync(catalog_server, source="attack", location=location)
        assert response.status_code == 400, response.text
        assert "must be an http(s) URL" in response.json()["message"]
        assert "root:" not in response.text
    assert "leaked/secret-model" not in models(catalog_server, include_removed="true")


class _CatalogHandler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "application/yaml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_url_source_on_a_schedule(tmp_path):
    """A source served over HTTP, synced by the schedule (every second) without any request."""
    _CatalogHandler.body = VENDOR_YAML.encode()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CatalogHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/catalog.yaml"
    config = tmp_path / "keelson.toml"
    config.write_text(f'[catalog]\nsync_interval_seconds = 1\n[catalog.sources]\nremote = "{url}"\n')
    server = start_server(tmp_path, "sqlite", ["--config", str(config)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(models(server)) < 3:
            time.sleep(0.2)
        assert set(models(server)) == {"anthropic/claude-haiku", "local/llama-gguf", "openai/gpt-4o-mini"}
        _CatalogHandler.body = VENDOR_YAML.split("  - id: anthropic/claude-haiku")[0].encode()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(models(server)) != 1:
            time.sleep(0.2)
        assert set(models(server)) == {"openai/gpt-4o-mini"}
    finally:
        stop_server(server)
        httpd.shutdown()
