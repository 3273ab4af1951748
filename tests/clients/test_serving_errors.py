"""Keelson serving: bad requests. The inference protocols answer 4xx with `{"error": "..."}`
naming the problem (V2 JSON and binary, KServe V1, MLflow's /invocations); Keelson's endpoint
API answers 400/404/409 with `{"error_code", "message"}` and changes nothing (a GET afterwards
shows the old state). Both metadata backends.
"""

from __future__ import annotations

import http.client
import json
import select

import numpy as np
import pytest

from conftest import REFERENCE_MLFLOW
from serving_models import (
    api_error,
    binary_request,
    build,
    create_endpoint,
    deploy,
    get_endpoint,
    log_and_register,
    protocol_error,
    put_deployment,
    set_traffic,
    unique,
    v2_tensor,
)

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own serving API; not MLflow's")

ONE = "errs"  # logreg: one input, FP32 [-1, 6]
MULTI = "errs-multi"  # the pipeline: num_a, num_b, num_c FP32 [-1, 1], cat INT64 [-1, 1]
OVERSIZE_BYTES = 64 * 1024 * 1024  # over the server's default server.max_body_bytes (16 MiB)


@pytest.fixture(scope="module")
def server(mlflow_tracking):
    return mlflow_tracking


@pytest.fixture(scope="module")
def served(server) -> dict:
    """`errs` (logreg) with `blue` (v1) and `green` (v2, 0%); `errs-multi` (the pipeline)."""
    name = unique("errs-logreg")
    v1 = log_and_register(build("logreg"), name)
    v2 = log_and_register(build("logreg"), name)
    create_endpoint(server, ONE)
    deploy(server, ONE, "blue", name, v1)
    deploy(server, ONE, "green", name, v2)
    multi = unique("errs-pipeline")
    mv = log_and_register(build("pipeline"), multi)
    create_endpoint(server, MULTI)
    deploy(server, MULTI, "blue", multi, mv)
    return {"name": name, "v1": v1, "v2": v2, "multi": multi}


def good_input(rows: int = 2) -> dict:
    return build("logreg").v2_inputs(rows)[0]


def assert_still_serves(server) -> None:
    response = server.post(f"/v2/models/{ONE}/infer", json={"inputs": [good_input()]})
    assert response.status_code == 200, response.text


# --- V2 JSON ------------------------------------------------------------------------------------


def _with(**changes) -> dict:
    tensor = good_input()
    tensor.update(changes)
    return tensor


def _pipeline_inputs(rows: int) -> list[dict]:
    return build("pipeline").v2_inputs(rows)


# (id, endpoint, request body (built when the test runs), words one of which the message names)
V2_BAD_BODIES = [
    ("wrong-shape", ONE, lambda: {"inputs": [_with(shape=[3, 4])]}, ["shape"]),
    ("wrong-rank", ONE, lambda: {"inputs": [_with(shape=[12])]}, ["shape", "rank", "dimension"]),
    ("wrong-datatype", ONE, lambda: {"inputs": [_with(datatype="INT64", data=[1] * 12)]}, ["datatype", "type"]),
    ("unknown-datatype", ONE, lambda: {"inputs": [_with(datatype="FLOAT32")]}, ["datatype", "float32"]),
    ("data-not-numbers", ONE, lambda: {"inputs": [_with(data=["a"] * 12)]}, ["data", "number", "fp32", "invalid"]),
    ("data-shorter-than-shape", ONE, lambda: {"inputs": [_with(data=[0.5] * 11)]}, ["12", "11", "shape", "element"]),
    ("data-longer-than-shape", ONE, lambda: {"inputs": [_with(data=[0.5] * 13)]}, ["12", "13", "shape", "element"]),
    ("unknown-input", ONE, lambda: {"inputs": [_with(name="inputz")]}, ["inputz"]),
    ("extra-input", ONE, lambda: {"inputs": [good_input(), _with(name="surplus")]}, ["surplus"]),
    ("no-inputs", ONE, lambda: {"inputs": []}, ["input"]),
    ("inputs-missing", ONE, lambda: {"outputs": [{"name": "output_label"}]}, ["inputs"]),
    ("missing-input", MULTI, lambda: {"inputs": _pipeline_inputs(2)[:3]}, ["cat"]),
    ("batch-mismatch", MULTI, lambda: {"inputs": _pipeline_inputs(2)[:3] + _pipeline_inputs(3)[3:]},
     ["shape", "batch", "dimension", "cat", "rows"]),
    ("unknown-output", ONE, lambda: {"inputs": [good_input()], "outputs": [{"name": "no_such_output"}]},
     ["no_such_output"]),
    ("negative-dim", ONE, lambda: {"inputs": [_with(shape=[-2, 6])]}, ["shape", "-2", "negative"]),
]


@pytest.mark.parametrize(
    "endpoint,make_body,words", [pytest.param(e, b, w, id=i) for i, e, b, w in V2_BAD_BODIES]
)
def test_v2_bad_json_request(server, served, endpoint, make_body, words):
    response = server.post(f"/v2/models/{endpoint}/infer", json=make_body())
    message = protocol_error(response, (400,))
    assert any(word.lower() in message.lower() for word in words), (message, words)
    assert_still_serves(server)


@pytest.mark.parametrize(
    "raw",
    [b'{"inputs": [', b"not json at all", b"[1, 2, 3]", b'{"inputs": {"name": "input"}}', b""],
    ids=["truncated", "not-json", "array", "inputs-not-list", "empty"],
)
def test_v2_malformed_json(server, served, raw):
    response = server.post(f"/v2/models/{ONE}/infer", data=raw, headers={"Content-Type": "application/json"})
    protocol_error(response, (400,))


# --- V2 binary extension ---------------------------------------------------------------------------


def binary_post(server, body: bytes, header_length: str, path: str = f"/v2/models/{ONE}/infer"):
    return server.post(path, data=body, headers={"Inference-Header-Content-Length": header_length})


def logreg_binary() -> tuple[bytes, int]:
    model = build("logreg")
    return binary_request(model.batch(4), model.output_names)


def test_binary_header_length_larger_than_body(server, served):
    body, length = logreg_binary()
    message = protocol_error(binary_post(server, body, str(len(body) + 10)), (400,))
    assert "inference-header-content-length" in message.lower() or "header" in message.lower(), message


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", ""], ids=["letters", "negative", "fraction", "empty"])
def test_binary_header_length_not_a_number(server, served, value):
    body, _ = logreg_binary()
    message = protocol_error(binary_post(server, body, value), (400,))
    assert "inference-header-content-length" in message.lower() or "header" in message.lower(), message


def test_binary_header_length_cuts_the_json(server, served):
    body, length = logreg_binary()
    protocol_error(binary_post(server, body, str(length - 5)), (400,))


@pytest.mark.parametrize("delta", [-4, 4, -96], ids=["short-by-4", "long-by-4", "zero"])
def test_binary_data_size_not_matching(server, served, delta):
    """`binary_data_size` that disagrees with shape x datatype (4 x 6 x 4 = 96 bytes), with the
    body trimmed or padded so that the sizes in the header add up to the body."""
    model = build("logreg")
    x = model.batch(4)["input"]
    blob = x.tobytes()
    size = len(blob) + delta
    header = {"inputs": [{"name": "input", "shape": [4, 6], "datatype": "FP32",
                          "parameters": {"binary_data_size": size}}]}
    head = json.dumps(header).encode()
    data = blob[:size] if delta < 0 else blob + b"\0" * delta
    message = protocol_error(binary_post(server, head + data, str(len(head))), (400,))
    assert any(w in message.lower() for w in ("binary_data_size", "size", "bytes", "shape")), message


def test_binary_data_size_beyond_the_body(server, served):
    model = build("logreg")
    blob = model.batch(4)["input"].tobytes()
    header = {"inputs": [{"name": "input", "shape": [4, 6], "datatype": "FP32",
                          "parameters": {"binary_data_size": len(blob)}}]}
    head = json.dumps(header).encode()
    protocol_error(binary_post(server, head + blob[:50], str(len(head))), (400,))


def test_binary_trailing_bytes(server, served):
    body, length = logreg_binary()
    protocol_error(binary_post(server, body + b"extra", str(length)), (400,))


def post_oversized(server, path: str, size: int) -> tuple[int, dict, bytes]:
    """POST a binary V2 request of about `size` bytes (zeros for a [n, 6] FP32 input), stopping
    as soon as the server answers: it may refuse on Content-Length, or part-way through, and
    close the connection."""
    rows = size // 24
    header = {"inputs": [{"name": "input", "shape": [rows, 6], "datatype": "FP32",
                          "parameters": {"binary_data_size": rows * 24}}]}
    head = json.dumps(header).encode()
    filler = rows * 24
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Inference-Header-Content-Length", str(len(head)))
        conn.putheader("Content-Length", str(len(head) + filler))
        conn.endheaders()
        chunk = b"\0" * (256 * 1024)
        try:
            conn.send(head)
            sent = 0
            while sent < filler:
                readable, _, _ = select.select([conn.sock], [], [], 0)
                if readable:
                    break  # the server answered early
                n = min(len(chunk), filler - sent)
                conn.send(chunk[:n])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed after answering; the answer is still in our buffer
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


def test_oversized_payload_is_413(server, served):
    status, headers, body = post_oversized(server, f"/v2/models/{ONE}/infer", OVERSIZE_BYTES)
    assert status == 413, body[:1000]
    parsed = json.loads(body)
    assert isinstance(parsed.get("error"), str) and parsed["error"], parsed
    assert_still_serves(server)


# --- unknown things -----------------------------------------------------------------------------


def test_unknown_endpoint_is_404(server, served):
    name = unique("nowhere")
    protocol_error(server.post(f"/v2/models/{name}/infer", json={"inputs": [good_input()]}), (404,))
    protocol_error(server.get(f"/v2/models/{name}"), (404,))
    assert server.get(f"/v2/models/{name}/ready").status_code == 404
    protocol_error(server.post(f"/v1/models/{name}:predict", json={"instances": [[0.0] * 6]}), (404,))
    invocations = server.post(f"/endpoints/{name}/invocations", json={"inputs": [[0.0] * 6]})
    assert invocations.status_code == 404, invocations.text


def test_unknown_version_is_404(server, served):
    response = server.post(f"/v2/models/{ONE}/versions/99/infer", json={"inputs": [good_input()]})
    message = protocol_error(response, (404,))
    assert "99" in message, message


def test_unknown_deployment_header(server, served):
    response = server.post(f"/v2/models/{ONE}/infer", json={"inputs": [good_input()]},
                           headers={"x-keelson-deployment": "no-such-deployment"})
    message = protocol_error(response, (400, 404))
    assert "no-such-deployment" in message, message


# --- KServe V1 and MLflow invocations -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"instances": [[0.5] * 5]}),  # 5 features for 6
        json.dumps({"instances": "x"}),
        json.dumps({"instances": [["a"] * 6]}),
        json.dumps({"instances": [[0.5] * 6, [0.5] * 5]}),  # ragged
        json.dumps({"foo": [[0.5] * 6]}),
        '{"instances": [',
    ],
    ids=["wrong-width", "not-a-list", "strings", "ragged", "no-instances", "malformed"],
)
def test_v1_bad_input(server, served, raw):
    response = server.post(f"/v1/models/{ONE}:predict", data=raw, headers={"Content-Type": "application/json"})
    protocol_error(response, (400,))


def invocations_error(response) -> None:
    """MLflow's scoring server answers bad input with 400 `{"error_code": "BAD_REQUEST",
    "message"}`; the contract's inference errors are `{"error"}`. Either shape, with a message."""
    assert response.status_code == 400, (response.status_code, response.text[:1000])
    body = response.json()
    if "error_code" in body:
        assert body["error_code"] == "BAD_REQUEST" and body.get("message"), body
    else:
        assert isinstance(body.get("error"), str) and body["error"], body


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"inputs": [[0.5] * 4]}),
        json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}),
        json.dumps({"dataframe_records": [{"a": 1.0}]}),
        json.dumps({"instances": [["x"] * 6]}),
        json.dumps({"foo": 1}),
        json.dumps({"inputs": [[0.5] * 6], "instances": [[0.5] * 6]}),  # two formats at once
        "not json",
    ],
    ids=["wrong-width", "split-wrong-width", "records-wrong-width", "strings", "no-format", "two-formats",
         "malformed"],
)
def test_invocations_bad_input(server, served, raw):
    response = server.post(f"/endpoints/{ONE}/invocations", data=raw, headers={"Content-Type": "application/json"})
    invocations_error(response)


def test_invocations_unsupported_content_type_is_415(server, served):
    # As MLflow's scoring server: JSON, CSV and parquet only.
    response = server.post(f"/endpoints/{ONE}/invocations", data="{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415, response.text


# --- Keelson's endpoint API -------------------------------------------------------------------------


def snapshot(server) -> dict:
    """What must not change: the endpoint list and `errs` as GET shows it (less the stats)."""
    names = sorted(e["name"] for e in server.get("/api/v1/endpoints").json()["endpoints"])
    state = get_endpoint(server, ONE)
    for deployment in state["deployments"]:
        deployment.pop("stats", None)
    return {"endpoints": names, ONE: state}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Iris"},
        {"name": "-iris"},
        {"name": ""},
        {"name": "a" * 64},
        {"name": "iris_1"},
        {"name": "iris.1"},
        {"name": "iris 1"},
        {"name": "iris/1"},
        {"name": 123},
        {"description": "no name"},
    ],
    ids=["upper", "leading-dash", "empty", "64-chars", "underscore", "dot", "space", "slash", "number", "missing"],
)
def test_bad_endpoint_name_is_400(server, served, body):
    before = snapshot(server)
    api_error(server.post("/api/v1/endpoints", json=body), (400,), "INVALID_PARAMETER_VALUE")
    assert snapshot(server) == before


def test_longest_and_shortest_endpoint_names_are_accepted(server, served):
    for name in ("a" * 63, "0", "9-a-b"):
        create_endpoint(server, name)
        assert get_endpoint(server, name)["name"] == name


def test_duplicate_endpoint(server, served):
    before = snapshot(server)
    response = server.post("/api/v1/endpoints", json={"name": ONE, "description": "again"})
    api_error(response, (400, 409), "RESOURCE_ALREADY_EXISTS")
    assert snapshot(server) == before


def test_unknown_endpoint_in_the_api_is_404(server, served):
    name = unique("nowhere")
    api_error(server.get(f"/api/v1/endpoints/{name}"), (404,), "RESOURCE_DOES_NOT_EXIST")
    api_error(server.request("DELETE", f"/api/v1/endpoints/{name}"), (404,), "RESOURCE_DOES_NOT_EXIST")
    api_error(set_traffic(server, name, {"blue": 100}), (404,), "RESOURCE_DOES_NOT_EXIST")
    api_error(put_deployment(server, name, "blue", {"model": served["name"], "version": served["v1"]}),
              (404,), "RESOURCE_DOES_NOT_EXIST")


def missing_resource(response) -> None:
    """An unknown model, version or alias: 404 RESOURCE_DOES_NOT_EXIST (as MLflow's registry
    answers) or 400 INVALID_PARAMETER_VALUE (a deployment that cannot be made)."""
    if response.status_code == 404:
        api_error(response, (404,), "RESOURCE_DOES_NOT_EXIST")
    else:
        api_error(response, (400,), "INVALID_PARAMETER_VALUE")


MODEL, VERSION = "<registered model>", "<its version 1>"  # filled in from `served`
BAD_DEPLOYMENTS = [
    # (id, body, "invalid": 400 INVALID_PARAMETER_VALUE | "missing": see missing_resource)
    ("version-and-alias", {"model": MODEL, "version": VERSION, "alias": "champion"}, "invalid"),
    ("neither-version-nor-alias", {"model": MODEL}, "invalid"),
    ("no-model", {"version": VERSION}, "invalid"),
    ("unknown-runtime", {"model": MODEL, "version": VERSION, "runtime": "tensorflow"}, "invalid"),
    ("zero-replicas", {"model": MODEL, "version": VERSION, "replicas": 0}, "invalid"),
    ("negative-replicas", {"model": MODEL, "version": VERSION, "replicas": -1}, "invalid"),
    ("version-not-a-number", {"model": MODEL, "version": "one"}, "missing"),
    ("unknown-model", {"model": "no-such-model-7f3a", "version": "1"}, "missing"),
    ("unknown-version", {"model": MODEL, "version": "99"}, "missing"),
    ("unknown-alias", {"model": MODEL, "alias": "no-such-alias"}, "missing"),
]


@pytest.mark.parametrize("body,kind", [pytest.param(b, k, id=i) for i, b, k in BAD_DEPLOYMENTS])
def test_bad_deployment_changes_nothing(server, served, body, kind):
    fill = {MODEL: served["name"], VERSION: served["v1"]}
    body = {key: fill.get(value, value) if isinstance(value, str) else value for key, value in body.items()}
    before = snapshot(server)
    # A new deployment name, and the existing `green` (which must keep its model and version).
    for deployment in ("yellow", "green"):
        response = put_deployment(server, ONE, deployment, body)
        if kind == "invalid":
            api_error(response, (400,), "INVALID_PARAMETER_VALUE")
        else:
            missing_resource(response)
        assert snapshot(server) == before, deployment


@pytest.mark.parametrize("name", ["Blue", "-blue", "blue_1", "b" * 64])
def test_bad_deployment_name_is_400(server, served, name):
    before = snapshot(server)
    response = put_deployment(server, ONE, name, {"model": served["name"], "version": served["v1"]})
    api_error(response, (400,), "INVALID_PARAMETER_VALUE")
    assert snapshot(server) == before


BAD_TRAFFIC = [
    ("sum-90", {"traffic": {"blue": 60, "green": 30}}),
    ("sum-110", {"traffic": {"blue": 60, "green": 50}}),
    ("unknown-deployment", {"traffic": {"blue": 50, "purple": 50}}),
    ("negative-percent", {"traffic": {"blue": 110, "green": -10}}),
    ("percent-as-string", {"traffic": {"blue": "100"}}),
    ("traffic-not-an-object", {"traffic": [["blue", 100]]}),
    ("mirror-to-live", {"traffic": {"blue": 50, "green": 50}, "mirror": {"green": 10}}),
    ("mirror-over-100", {"traffic": {"blue": 100}, "mirror": {"green": 101}}),
    ("mirror-negative", {"traffic": {"blue": 100}, "mirror": {"green": -1}}),
    ("mirror-unknown", {"traffic": {"blue": 100}, "mirror": {"purple": 10}}),
    ("sticky-header-empty", {"traffic": {"blue": 100}, "sticky_header": ""}),
]


@pytest.mark.parametrize("body", [pytest.param(b, id=i) for i, b in BAD_TRAFFIC])
def test_bad_traffic_changes_nothing(server, served, body):
    before = snapshot(server)
    response = server.request("PUT", f"/api/v1/endpoints/{ONE}/traffic", json=body)
    api_error(response, (400,), "INVALID_PARAMETER_VALUE")
    assert snapshot(server) == before
    # Requests still follow the old split: blue answers everything.
    for _ in range(5):
        answer = server.post(f"/v2/models/{ONE}/infer", json={"inputs": [good_input()]})
        assert answer.status_code == 200 and answer.headers.get("x-keelson-deployment") == "blue"


def test_traffic_to_zero_is_allowed_and_stops_serving(server, served):
    """Traffic may sum to 0: the endpoint then routes nothing (except by header)."""
    endpoint = unique("zero")
    create_endpoint(server, endpoint)
    deploy(server, endpoint, "blue", served["name"], served["v1"])
    response = set_traffic(server, endpoint, {"blue": 0})
    assert response.status_code == 200, response.text
    assert not any(get_endpoint(server, endpoint)["traffic"].values())
    refused = server.post(f"/v2/models/{endpoint}/infer", json={"inputs": [good_input()]})
    assert 400 <= refused.status_code < 600 and isinstance(refused.json().get("error"), str), refused.text
    targeted = server.post(f"/v2/models/{endpoint}/infer", json={"inputs": [good_input()]},
                           headers={"x-keelson-deployment": "blue"})
    assert targeted.status_code == 200, targeted.text
    # Traffic stopped on purpose stays stopped when a deployment is added.
    deploy(server, endpoint, "green", served["name"], served["v1"])
    assert get_endpoint(server, endpoint)["traffic"] == {"blue": 0}


def test_validation_block_errors(server, served):
    """A validation block that is itself broken is refused like a failing one."""
    before = snapshot(server)
    model = build("logreg")
    cases = [
        {"inputs": [v2_tensor("input", np.zeros((2, 5), dtype=np.float32))]},  # wrong width
        {"inputs": model.v2_inputs(2), "expected_outputs": {"no_such_output": [1, 2]}},
        {"inputs": model.v2_inputs(2), "expected_outputs": {"output_label": [0]}},  # wrong length
    ]
    for validation in cases:
        response = put_deployment(server, ONE, "yellow",
                                  {"model": served["name"], "version": served["v1"], "validation": validation})
        api_error(response, (400,), "INVALID_PARAMETER_VALUE")
        assert snapshot(server) == before
