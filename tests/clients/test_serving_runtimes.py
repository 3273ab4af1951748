"""Keelson serving: the runtimes other than tract, and progressive rollouts.

- `runtime: onnxruntime`: the same registered models served by the onnxruntime library of the
  pinned PyPI wheel (the test servers are started with `serving.onnxruntime_library` pointing at
  it, see conftest), answers equal to onnxruntime's own in Python.
- `runtime: external`: a deployment that forwards to another Open Inference Protocol server; here
  the remote is a Keelson endpoint reached over HTTP, driven with tritonclient (binary tensors).
- Rollouts: a healthy canary is stepped up and promoted; a canary whose error rate fails the
  check (its remote backend stops serving) is rolled back by the controller on its own, and every
  step is recorded.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from conftest import REFERENCE_MLFLOW
from serving_models import (
    MODEL_KEYS,
    N_ROWS,
    api_error,
    assert_outputs_match,
    build,
    create_endpoint,
    deploy,
    get_endpoint,
    log_and_register,
    put_deployment,
    set_traffic,
    unique,
    v2_outputs,
    wait_until,
)

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own serving API; not MLflow's")

HEADER = "x-keelson-deployment"


@pytest.fixture(scope="module")
def server(mlflow_tracking):
    return mlflow_tracking


@pytest.fixture(scope="module")
def registered(server) -> dict[str, dict]:
    """Every test model registered and served by tract on the endpoint named after its key."""
    served = {}
    for key in MODEL_KEYS:
        name = unique(f"rt-{key}")
        version = log_and_register(build(key), name)
        create_endpoint(server, key, f"runtimes test model {key}")
        deploy(server, key, "tract", name, version)
        served[key] = {"name": name, "version": version}
    return served


def infer_json(server, endpoint: str, model, rows: int, deployment: str | None = None) -> dict:
    headers = {HEADER: deployment} if deployment else None
    response = server.post(f"/v2/models/{endpoint}/infer", json={"inputs": model.v2_inputs(rows)}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- onnxruntime ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_onnxruntime_runtime_matches_onnxruntime(server, registered, key):
    model = build(key)
    body = deploy(server, key, "ort", registered[key]["name"], registered[key]["version"],
                  runtime="onnxruntime", replicas=2)
    assert body["runtime"] == "onnxruntime" and body["execution"].startswith("onnxruntime"), body
    tract = get_endpoint(server, key)
    assert body["inputs"] == [d for d in tract["deployments"] if d["name"] == "tract"][0]["inputs"]
    for rows in (1, N_ROWS):
        answer = infer_json(server, key, model, rows, deployment="ort")
        assert answer["model_name"] == key
        assert_outputs_match(model, v2_outputs(answer), rows)
    # The new deployment took no traffic: the first one still answers untargeted requests.
    assert get_endpoint(server, key)["traffic"] == {"tract": 100}


def test_onnxruntime_refuses_bad_input_with_a_4xx(server, registered):
    model = build("logreg")
    deploy(server, "logreg", "ort-bad", registered["logreg"]["name"], registered["logreg"]["version"],
           runtime="onnxruntime")
    wrong = model.v2_inputs(2)
    wrong[0]["shape"] = [2, wrong[0]["shape"][1] + 1]
    wrong[0]["data"] = wrong[0]["data"] + [0.0, 0.0]
    response = server.post("/v2/models/logreg/infer", json={"inputs": wrong}, headers={HEADER: "ort-bad"})
    assert response.status_code == 400 and "shape" in response.json()["error"], response.text


# --- external ---------------------------------------------------------------------------------------


def external_body(server, model: str, **external) -> dict:
    return {"runtime": "external", "external": {"url": server.url, "model": model, **external}}


@pytest.mark.parametrize("key", ["logreg", "rf-reg", "pipeline"])
def test_external_deployment_forwards_to_a_v2_server(server, registered, key):
    import tritonclient.http as httpclient

    model = build(key)
    endpoint = unique(f"ext-{key}")
    create_endpoint(server, endpoint)
    response = put_deployment(server, endpoint, "remote", external_body(server, key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["runtime"] == "external" and body["external"]["model"] == key, body
    assert body["model"] == "" and key in body["execution"], body
    remote = server.get(f"/v2/models/{key}").json()
    assert [{k: i[k] for k in ("name", "datatype", "shape")} for i in body["inputs"]] == remote["inputs"]
    meta = server.get(f"/v2/models/{endpoint}").json()
    assert meta["platform"] == "external" and meta["outputs"] == remote["outputs"], meta

    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    inputs = []
    for name, value in model.batch(N_ROWS).items():
        tensor = httpclient.InferInput(name, list(value.shape), {np.float32: "FP32", np.int64: "INT64"}[value.dtype.type])
        tensor.set_data_from_numpy(value, binary_data=True)
        inputs.append(tensor)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=True) for name in model.output_names]
    result = client.infer(endpoint, inputs, outputs=outputs)
    assert_outputs_match(model, {name: result.as_numpy(name) for name in model.output_names}, N_ROWS)
    # The remote's errors come back as the proxy's: a bad shape is the client's mistake.
    bad = server.post(f"/v2/models/{endpoint}/infer", json={"inputs": [
        {**model.v2_inputs(1)[0], "shape": [1, 999], "data": [0.0] * 999}]})
    assert bad.status_code == 400, bad.text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_external_deployments_that_cannot_serve_are_refused(server, registered):
    endpoint = unique("ext-bad")
    create_endpoint(server, endpoint)
    nobody = f"http://127.0.0.1:{free_port()}"
    cases = [
        ({"runtime": "external", "external": {"url": nobody, "model": "logreg"}}, "did not answer"),
        (external_body(server, "no-such-model"), "404"),
        (external_body(server, "logreg", version="999"), "404"),
        ({"runtime": "external"}, "external"),
        ({**external_body(server, "logreg"), "model": "x", "version": "1"}, "leave out"),
        ({"runtime": "external", "external": {"url": "ftp://127.0.0.1/", "model": "logreg"}}, "http"),
        ({"runtime": "external", "external": {"url": server.url, "model": "a/b"}}, "external.model"),
        ({"model": registered["logreg"]["name"], "version": "1", "external": {"url": server.url, "model": "m"}},
         "only for deployments with runtime `external`"),
    ]
    for body, words in cases:
        response = put_deployment(server, endpoint, "remote", body)
        message = api_error(response, (400,), "INVALID_PARAMETER_VALUE")["message"]
        assert words in message, (body, message)
    assert get_endpoint(server, endpoint)["deployments"] == []


# --- rollouts ---------------------------------------------------------------------------------------


class Load:
    """Untargeted requests to an endpoint from a background thread until stopped."""

    def __init__(self, server, endpoint: str, model):
        self.server, self.endpoint, self.model = server, endpoint, model
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        import requests

        session = requests.Session()
        body = {"inputs": self.model.v2_inputs(1)}
        deadline = time.monotonic() + 90  # bounded whatever happens to the test
        while not self.stop.is_set() and time.monotonic() < deadline:
            response = session.post(f"{self.server.url}/v2/models/{self.endpoint}/infer", json=body, timeout=10)
            self.statuses.append(response.status_code)
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=15)


def latest_rollout(server, endpoint: str) -> dict:
    response = server.get(f"/api/v1/endpoints/{endpoint}/rollouts")
    assert response.status_code == 200, response.text
    return response.json()["rollouts"][0]


def start_rollout(server, endpoint: str, spec: dict) -> dict:
    response = server.post(f"/api/v1/endpoints/{endpoint}/rollouts", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def test_healthy_canary_is_promoted(server, registered):
    model = build("logreg")
    endpoint = unique("roll-ok")
    create_endpoint(server, endpoint)
    deploy(server, endpoint, "blue", registered["logreg"]["name"], registered["logreg"]["version"])
    deploy(server, endpoint, "green", registered["logreg"]["name"], registered["logreg"]["version"],
           runtime="onnxruntime")
    spec = {"canary": "green", "step_weight": 25, "max_weight": 50, "interval_seconds": 1, "threshold": 2,
            "checks": {"max_error_rate": 0.0, "min_requests": 3}}
    started = start_rollout(server, endpoint, spec)
    assert started["status"] == "progressing" and started["primary"] == "blue", started
    assert get_endpoint(server, endpoint)["traffic"] == {"blue": 75, "green": 25}
    with Load(server, endpoint, model) as load:
        done = wait_until(lambda: (r := latest_rollout(server, endpoint))["status"] != "progressing" and r,
                          timeout_s=60, interval_s=0.2, what="the rollout to finish")
    assert done["status"] == "succeeded", done
    assert get_endpoint(server, endpoint)["traffic"] == {"green": 100}
    actions = [step["action"] for step in done["steps"]]
    weights = [step["weight"] for step in done["steps"]]
    assert 50 in weights and weights[-1] == 100, done["steps"]
    assert any("promot" in action for action in actions), actions
    assert set(load.statuses) == {200}, "no request failed while traffic moved"


def test_canary_failing_its_error_rate_is_rolled_back_by_itself(server, registered):
    model = build("logreg")
    name, version = registered["logreg"]["name"], registered["logreg"]["version"]
    backend = unique("roll-backend")
    create_endpoint(server, backend)
    deploy(server, backend, "only", name, version)
    endpoint = unique("roll-bad")
    create_endpoint(server, endpoint)
    deploy(server, endpoint, "blue", name, version)
    response = put_deployment(server, endpoint, "green", external_body(server, backend))
    assert response.status_code == 200, response.text  # healthy when deployed: it passes validation
    # The canary's backend stops serving: every request the canary gets fails from now on.
    assert set_traffic(server, backend, {"only": 0}).status_code == 200
    spec = {"canary": "green", "step_weight": 20, "max_weight": 60, "interval_seconds": 1, "threshold": 2,
            "checks": {"min_requests": 1}}
    start_rollout(server, endpoint, spec)
    with Load(server, endpoint, model) as load:
        done = wait_until(lambda: (r := latest_rollout(server, endpoint))["status"] != "progressing" and r,
                          timeout_s=60, interval_s=0.2, what="the rollout to finish")
    assert done["status"] == "rolled_back", done
    assert get_endpoint(server, endpoint)["traffic"] == {"blue": 100}
    steps = done["steps"]
    failed = [step for step in steps if step.get("failures")]
    assert len(failed) >= 2 and all("error rate" in " ".join(step["failures"]) for step in failed), steps
    assert steps[-1]["weight"] == 0, steps
    assert max(step["weight"] for step in steps) == 20, "a failing canary never steps up"
    # Only the canary's share failed; the primary answered every request routed to it.
    assert 200 in load.statuses and any(status >= 500 for status in load.statuses), set(load.statuses)
    after = server.post(f"/v2/models/{endpoint}/infer", json={"inputs": model.v2_inputs(1)})
    assert after.status_code == 200 and after.headers[HEADER] == "blue", after.text


# --- the command line -------------------------------------------------------------------------------


def keelson_cli(server, *args: str, stdin: str | None = None):
    import subprocess

    from conftest import keelson_bin

    return subprocess.run(
        [str(keelson_bin()), "endpoint", "--server", server.url, *args],
        input=stdin, capture_output=True, text=True, timeout=120,
    )


def test_cli_deploys_moves_traffic_and_rolls_back(server, registered):
    import json

    endpoint = unique("cli")
    created = keelson_cli(server, "create", endpoint, "--description", "from the CLI")
    assert created.returncode == 0, created.stderr
    spec = {"model": registered["logreg"]["name"], "version": registered["logreg"]["version"]}
    for deployment, runtime in (("blue", "tract"), ("green", "onnxruntime")):
        done = keelson_cli(server, "deploy", endpoint, deployment, "-", stdin=json.dumps({**spec, "runtime": runtime}))
        assert done.returncode == 0 and f"{endpoint}/{deployment} ready" in done.stdout, done.stderr
    assert get_endpoint(server, endpoint)["traffic"] == {"blue": 100}

    moved = keelson_cli(server, "traffic", endpoint, "blue=90", "green=10", "--reason", "canary by hand")
    assert moved.returncode == 0 and "blue=90 green=10" in moved.stdout, moved.stderr
    assert get_endpoint(server, endpoint)["traffic"] == {"blue": 90, "green": 10}

    refused = keelson_cli(server, "traffic", endpoint, "blue=50", "green=10")
    assert refused.returncode == 1 and "100" in refused.stderr, refused.stderr
    typo = keelson_cli(server, "traffic", endpoint, "blue=ninety")
    assert typo.returncode == 1 and "not a whole number" in typo.stderr, typo.stderr
    assert get_endpoint(server, endpoint)["traffic"] == {"blue": 90, "green": 10}, "refused changes change nothing"

    rolled = keelson_cli(server, "rollback", endpoint)
    assert rolled.returncode == 0 and "blue=100" in rolled.stdout, rolled.stderr
    assert get_endpoint(server, endpoint)["traffic"] == {"blue": 100}
    history = keelson_cli(server, "history", endpoint)
    assert history.returncode == 0 and "canary by hand" in history.stdout, history.stderr
    listed = keelson_cli(server, "list")
    assert listed.returncode == 0 and endpoint in listed.stdout, listed.stderr
    shown = keelson_cli(server, "show", endpoint)
    assert shown.returncode == 0 and json.loads(shown.stdout)["description"] == "from the CLI"


class Webhook:
    """A local HTTP listener standing in for a monitor: answers each POST with `status` and keeps
    the JSON bodies it got."""

    def __init__(self, status: int):
        import http.server
        import json

        self.status = status
        self.bodies: list[dict] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                answer = b"drift over the bar" if hook.status >= 400 else b"ok"
                self.send_response(hook.status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/check"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [200, 503])
def test_a_monitor_webhook_decides_the_rollout(server, registered, status):
    """Healthy by error rate either way: the webhook's answer alone promotes or rolls back."""
    model = build("logreg")
    name, version = registered["logreg"]["name"], registered["logreg"]["version"]
    endpoint = unique("roll-hook")
    create_endpoint(server, endpoint)
    deploy(server, endpoint, "blue", name, version)
    deploy(server, endpoint, "green", name, version)
    with Webhook(status) as hook:
        spec = {"canary": "green", "step_weight": 50, "max_weight": 50, "interval_seconds": 1, "threshold": 2,
                "checks": {"min_requests": 1, "webhooks": [{"name": "drift-monitor", "url": hook.url}]}}
        start_rollout(server, endpoint, spec)
        with Load(server, endpoint, model) as load:
            done = wait_until(lambda: (r := latest_rollout(server, endpoint))["status"] != "progressing" and r,
                              timeout_s=60, interval_s=0.2, what="the rollout to finish")
    assert set(load.statuses) == {200}, "the canary itself never failed a request"
    body = hook.bodies[0]
    assert (body["endpoint"], body["canary"], body["primary"], body["check"]) == (endpoint, "green", "blue",
                                                                                 "drift-monitor"), body
    assert body["weight"] == 50 and body["window"]["requests"] >= 1 and body["window"]["failed"] == 0, body
    if status == 200:
        assert done["status"] == "succeeded", done
        assert get_endpoint(server, endpoint)["traffic"] == {"green": 100}
    else:
        assert done["status"] == "rolled_back", done
        assert get_endpoint(server, endpoint)["traffic"] == {"blue": 100}
        failures = [f for step in done["steps"] for f in step.get("failures", [])]
        assert len(failures) == 2 and all("drift-monitor" in f and "503" in f for f in failures), failures


def test_webhook_checks_are_validated(server, registered):
    endpoint = unique("roll-hook-bad")
    create_endpoint(server, endpoint)
    deploy(server, endpoint, "blue", registered["logreg"]["name"], registered["logreg"]["version"])
    deploy(server, endpoint, "green", registered["logreg"]["name"], registered["logreg"]["version"])
    bad = {"canary": "green", "checks": {"webhooks": [{"name": "x", "url": "ftp://127.0.0.1/"}]}}
    response = server.post(f"/api/v1/endpoints/{endpoint}/rollouts", json=bad)
    assert "http" in api_error(response, (400,), "INVALID_PARAMETER_VALUE")["message"]
    assert get_endpoint(server, endpoint)["traffic"] == {"blue": 100}, "a refused rollout moves nothing"


# --- restart ----------------------------------------------------------------------------------------


def test_deployments_come_back_after_a_restart_and_a_registry_rename(tmp_path):
    """Endpoints load again at start-up with their runtimes and split, and a model renamed in the
    registry meanwhile is found under its new name."""
    import mlflow
    from mlflow import MlflowClient

    from conftest import start_server, stop_server

    model = build("rf-clf")
    server = start_server(tmp_path, "sqlite")
    # The module's server is the client's target (conftest sets it); this test's own server is,
    # for as long as it registers there.
    previous = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(server.url)
        name = unique("restart")
        version = log_and_register(model, name)
        create_endpoint(server, "restart")
        deploy(server, "restart", "blue", name, version)
        deploy(server, "restart", "green", name, version, runtime="onnxruntime")
        assert set_traffic(server, "restart", {"blue": 70, "green": 30}).status_code == 200
        MlflowClient(server.url).rename_registered_model(name, f"{name}-renamed")
    finally:
        mlflow.set_tracking_uri(previous)
        stop_server(server)
    server = start_server(tmp_path, "sqlite")
    try:
        endpoint = get_endpoint(server, "restart")
        assert endpoint["traffic"] == {"blue": 70, "green": 30}, endpoint
        states = {d["name"]: (d["state"], d["runtime"], d["model"]) for d in endpoint["deployments"]}
        assert states == {"blue": ("ready", "tract", f"{name}-renamed"),
                          "green": ("ready", "onnxruntime", f"{name}-renamed")}, endpoint["deployments"]
        for deployment in ("blue", "green"):
            assert_outputs_match(model, v2_outputs(infer_json(server, "restart", model, N_ROWS, deployment)), N_ROWS)
    finally:
        stop_server(server)
