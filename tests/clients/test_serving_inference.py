"""Keelson model serving: every test model (serving_models.py), logged with the unmodified MLflow
client and deployed on its own endpoint, answers the same as onnxruntime through each protocol:
the Open Inference Protocol (V2) with tritonclient (binary tensor extension and JSON) and with
plain `requests` (JSON, binary with the content type the KServe client sends), KServe V1
`:predict`, and MLflow's scoring protocol (`/endpoints/{e}/invocations`); V2 metadata and
readiness; batches of 1 and 64 rows. Both metadata backends.

The KServe Python client (`kserve.InferenceRESTClient`) is not used: no kserve release installs
beside these pins (0.20/0.21 need protobuf<7 and pandas<3, older ones numpy<2, an old fastapi
or starlette==0.49.1); the binary request it sends is covered by `test_v2_binary_octet_stream`.

What MLflow's own scoring server answers for an ONNX-flavour model (`mlflow models serve -m
models:/NAME/1 --env-manager local`, MLflow 3.17.2, models logged with `mlflow.onnx.log_model`
and an `input_example`, observed once; MLflow stores no signature for them), which the
/invocations tests below encode:
- `dataframe_split` (with or without `columns`) and `dataframe_records` -> 200 `{"predictions":
  [ROW, ...]}`, one record per input row, ROW = `{output_name: value}` for every output:
  an output of shape [N] or [N, 1] gives a scalar (`{"variable": 24.91}`; labels as JSON ints),
  a ZipMap output gives `{"<class>": probability, ...}` (class labels as strings, class order).
- `instances` and `inputs` (a list of rows, or `{input_name: rows}`; `instances` may also be a
  list of `{input_name: row}`) -> 200 `{"predictions": {output_name: value}}`, value the whole
  output as nested lists in its ONNX shape (`{"variable": [[24.91], [-12.6]]}`,
  `{"output_label": [0, 1]}`), a ZipMap output as a list of `{"<class>": probability}`.
- The multi-input pipeline (inputs FP32/INT64 [-1, 1]) answers 400 to both dataframe formats
  (MLflow feeds each column 1-D), so it is tested with `instances` and `inputs` only.
- Bad input -> 400 `{"error_code": "BAD_REQUEST", "message": ...}` (test_serving_errors.py).
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import REFERENCE_MLFLOW
from serving_models import (
    MODEL_KEYS,
    N_ROWS,
    SINGLE_INPUT_KEYS,
    assert_outputs_match,
    binary_request,
    build,
    create_endpoint,
    deploy,
    get_endpoint,
    infer,
    log_and_register,
    parse_binary_response,
    unique,
    v2_outputs,
    wait_until,
)

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own serving API; not MLflow's")

DEPLOYMENT = "blue"
ROWS = [pytest.param(1, id="rows1"), pytest.param(N_ROWS, id="rows64")]
HEADER = "x-keelson-deployment"


@pytest.fixture(scope="module")
def server(mlflow_tracking):
    return mlflow_tracking


@pytest.fixture(scope="module")
def deployed(server) -> dict:
    """Every model registered and deployed as `blue` on an endpoint named after its key:
    key -> {"registered": name, "version": v, "deployment": PUT answer, "endpoint": GET after},
    or key -> the error that stopped it (so one model that fails fails only its own tests)."""
    result: dict = {}
    for key in MODEL_KEYS:
        try:
            model = build(key)
            registered = unique(f"serving-{key}")
            version = log_and_register(model, registered)
            create_endpoint(server, key, description=f"test model {key}")
            answer = deploy(server, key, DEPLOYMENT, registered, version)
            result[key] = {
                "registered": registered,
                "version": version,
                "deployment": answer,
                "endpoint": get_endpoint(server, key),
            }
        except AssertionError as error:
            result[key] = f"deploying {key} failed: {error}"
    return result


class Served:
    """`served[key]`: that model's deployment, or the test fails with why it is missing."""

    def __init__(self, deployed: dict):
        self.deployed = deployed

    def __getitem__(self, key: str) -> dict:
        info = self.deployed[key]
        if isinstance(info, str):
            pytest.fail(info, pytrace=False)
        return info


@pytest.fixture
def served(deployed) -> Served:
    return Served(deployed)


def answered_by(response, deployment: str = DEPLOYMENT) -> None:
    assert response.headers.get(HEADER) == deployment, (dict(response.headers), response.text[:300])


# --- deployment and metadata ----------------------------------------------------------------------


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_deployment_json_describes_the_model(served, key):
    model = build(key)
    info = served[key]
    deployment = info["deployment"]
    assert deployment["name"] == DEPLOYMENT and deployment["endpoint"] == key
    assert deployment["model"] == info["registered"] and str(deployment["version"]) == info["version"]
    assert deployment["runtime"] == "tract", "tract is the default runtime"
    assert deployment["state"] == "ready"
    assert deployment["inputs"] == [spec.as_json() for spec in model.input_specs]
    # A ZipMap's probabilities come as a matrix whose columns the deployment names by class.
    labelled = {model.probability_output: [str(c) for c in model.classes]} if model.classes else {}
    assert deployment["outputs"] == [
        {**spec.as_json(), **({"class_labels": labelled[spec.name]} if spec.name in labelled else {})}
        for spec in model.output_specs
    ]
    stats = deployment["stats"]
    assert (stats["requests"], stats["mirrored_requests"], stats["errors"]) == (0, 0, 0), stats

    endpoint = info["endpoint"]
    assert endpoint["name"] == key and endpoint["description"] == f"test model {key}"
    # The first deployment of an endpoint without traffic takes all of it.
    assert endpoint["traffic"] == {DEPLOYMENT: 100}
    assert endpoint["mirror"] == {} and endpoint["sticky_header"] is None
    assert [d["name"] for d in endpoint["deployments"]] == [DEPLOYMENT]
    assert endpoint["deployments"][0]["state"] == "ready"


def test_endpoints_are_listed(server, served):
    response = server.get("/api/v1/endpoints")
    assert response.status_code == 200, response.text
    names = [e["name"] for e in response.json()["endpoints"]]
    assert set(MODEL_KEYS) <= set(names), names


def test_server_metadata_and_health(server, served):
    meta = server.get("/v2")
    assert meta.status_code == 200, meta.text
    body = meta.json()
    assert isinstance(body.get("name"), str) and body["name"], body
    assert isinstance(body.get("version"), str) and body["version"], body
    assert isinstance(body.get("extensions"), list), body
    assert server.get("/v2/health/live").status_code == 200
    assert server.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_model_metadata_and_readiness(server, served, key):
    model = build(key)
    response = server.get(f"/v2/models/{key}")
    assert response.status_code == 200, response.text
    meta = response.json()
    assert meta["name"] == key
    assert served[key]["version"] in [str(v) for v in meta["versions"]], meta
    assert meta["platform"] == "onnx"
    assert meta["inputs"] == [spec.as_json() for spec in model.input_specs]
    assert meta["outputs"] == [spec.as_json() for spec in model.output_specs]
    assert server.get(f"/v2/models/{key}/ready").status_code == 200
    version = served[key]["version"]
    assert server.get(f"/v2/models/{key}/versions/{version}/ready").status_code == 200
    versioned = server.get(f"/v2/models/{key}/versions/{version}")
    assert versioned.status_code == 200 and versioned.json()["inputs"] == meta["inputs"], versioned.text


# --- V2 with tritonclient -------------------------------------------------------------------------


def triton(server):
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=60)


def triton_infer(server, key: str, rows: int, binary: bool, outputs: list[str] | None = None,
                 version: str = ""):
    import tritonclient.http as httpclient

    model = build(key)
    client = triton(server)
    try:
        inputs = []
        for name, value in model.batch(rows).items():
            tensor = httpclient.InferInput(name, list(value.shape), model_datatype(value))
            tensor.set_data_from_numpy(value, binary_data=binary)
            inputs.append(tensor)
        wanted = [httpclient.InferRequestedOutput(name, binary_data=binary)
                  for name in (outputs or model.output_names)]
        result = client.infer(key, inputs, outputs=wanted, model_version=version)
        return result, {name: result.as_numpy(name) for name in (outputs or model.output_names)}
    finally:
        client.close()


def model_datatype(value: np.ndarray) -> str:
    from serving_models import NUMPY_TO_V2

    return NUMPY_TO_V2[value.dtype]


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("key", MODEL_KEYS)
def test_tritonclient_binary(server, served, key, rows):
    served[key]  # fails with the reason when this model did not deploy
    result, outputs = triton_infer(server, key, rows, binary=True)
    response = result.get_response()
    assert response["model_name"] == key
    for output in response["outputs"]:
        # Binary outputs were asked for: each comes as raw bytes, not a `data` list.
        assert "data" not in output and output["parameters"]["binary_data_size"] > 0, output
    assert_outputs_match(build(key), outputs, rows)


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("key", MODEL_KEYS)
def test_tritonclient_json(server, served, key, rows):
    served[key]  # fails with the reason when this model did not deploy
    result, outputs = triton_infer(server, key, rows, binary=False)
    response = result.get_response()
    assert response["model_name"] == key
    assert all("data" in output for output in response["outputs"]), response
    assert_outputs_match(build(key), outputs, rows)


def test_tritonclient_health_metadata_and_version(server, served):
    version = served["rf-clf"]["version"]
    served["logreg"]
    served["pipeline"]
    client = triton(server)
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("logreg")
        assert not client.is_model_ready(unique("absent"))
        meta = client.get_model_metadata("pipeline")
        assert [i["name"] for i in meta["inputs"]] == ["num_a", "num_b", "num_c", "cat"]
        assert [i["datatype"] for i in meta["inputs"]] == ["FP32", "FP32", "FP32", "INT64"]
    finally:
        client.close()
    _, outputs = triton_infer(server, "rf-clf", 8, binary=True, version=version)
    assert_outputs_match(build("rf-clf"), outputs, 8)


@pytest.mark.parametrize("key", ["logreg", "pipeline", "rf-clf"])
def test_tritonclient_requested_output_subset(server, served, key):
    served[key]  # fails with the reason when this model did not deploy
    model = build(key)
    result, outputs = triton_infer(server, key, 5, binary=True, outputs=[model.probability_output])
    assert [o["name"] for o in result.get_response()["outputs"]] == [model.probability_output]
    np.testing.assert_allclose(outputs[model.probability_output], model.expected(5)[model.probability_output],
                               rtol=1e-5, atol=1e-5)


# --- V2 with requests (JSON, binary, versions) ----------------------------------------------------


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("key", MODEL_KEYS)
def test_v2_json_with_requests(server, served, key, rows):
    model = build(key)
    response = server.post(
        f"/v2/models/{key}/infer", json={"id": f"req-{key}-{rows}", "inputs": model.v2_inputs(rows)}
    )
    assert response.status_code == 200, response.text
    answered_by(response)
    body = response.json()
    assert body["model_name"] == key and body["id"] == f"req-{key}-{rows}"
    if "model_version" in body:  # optional in V2; when given, the version that answered
        assert str(body["model_version"]) == served[key]["version"], body
    assert [o["name"] for o in body["outputs"]] == model.output_names
    for output, spec in zip(body["outputs"], model.output_specs):
        assert output["datatype"] == spec.datatype
        assert output["shape"] == [rows, *spec.shape[1:]], (output["shape"], spec)
    assert_outputs_match(model, v2_outputs(body), rows)


@pytest.mark.parametrize("key", ["linreg", "gb-clf", "pipeline", "mlp-clf"])
def test_v2_rows_are_independent_of_the_batch(server, served, key):
    """Row 10 alone and inside a 64-row batch gives the same answer (and rows 10..19 too)."""
    served[key]  # fails with the reason when this model did not deploy
    model = build(key)
    response = infer(server, key, model.v2_inputs(10, start=10))
    assert response.status_code == 200, response.text
    assert_outputs_match(model, v2_outputs(response.json()), 10, start=10)


@pytest.mark.parametrize("content_type", [None, "application/octet-stream"], ids=["no-type", "octet-stream"])
@pytest.mark.parametrize("key", ["logreg", "pipeline", "rf-reg"])
def test_v2_binary_octet_stream(server, served, key, content_type):
    """The binary extension as tritonclient sends it (no Content-Type) and as the KServe client
    does (`application/octet-stream`); binary outputs back."""
    served[key]  # fails with the reason when this model did not deploy
    model = build(key)
    body, header_length = binary_request(model.batch(N_ROWS), model.output_names)
    headers = {"Inference-Header-Content-Length": str(header_length)}
    if content_type:
        headers["Content-Type"] = content_type
    response = server.post(f"/v2/models/{key}/infer", data=body, headers=headers)
    assert response.status_code == 200, response.text[:1000]
    answered_by(response)
    assert "Inference-Header-Content-Length" in response.headers, dict(response.headers)
    header, outputs = parse_binary_response(response)
    assert header["model_name"] == key
    assert_outputs_match(model, outputs, N_ROWS)


def test_v2_binary_inputs_json_outputs(server, served):
    served["gb-clf"]
    model = build("gb-clf")
    body, header_length = binary_request(model.batch(N_ROWS), model.output_names, binary_outputs=False)
    response = server.post("/v2/models/gb-clf/infer", data=body,
                           headers={"Inference-Header-Content-Length": str(header_length)})
    assert response.status_code == 200, response.text[:1000]
    assert_outputs_match(model, v2_outputs(response.json()), N_ROWS)


@pytest.mark.parametrize("key", ["linreg", "logreg"])
def test_v2_versioned_infer(server, served, key):
    model = build(key)
    version = served[key]["version"]
    response = server.post(f"/v2/models/{key}/versions/{version}/infer", json={"inputs": model.v2_inputs(3)})
    assert response.status_code == 200, response.text
    answered_by(response)
    assert str(response.json()["model_version"]) == version
    assert_outputs_match(model, v2_outputs(response.json()), 3)


# --- KServe V1 ----------------------------------------------------------------------------------


def assert_v1_predictions(model, predictions, rows: int) -> None:
    """One prediction per instance. The contract does not fix a prediction's form, so either the
    model's main output row (a classifier's label; a regressor's value, bare or as [value]) or
    a record `{output_name: row}` with every output."""
    assert isinstance(predictions, list) and len(predictions) == rows, predictions
    expected = model.expected(rows)
    for i, prediction in enumerate(predictions):
        if isinstance(prediction, dict):
            assert set(prediction) == set(model.output_names), prediction
            for name, value in prediction.items():
                want = expected[name][i]
                if isinstance(value, dict):  # probabilities keyed by class
                    assert sorted(int(k) for k in value) == model.classes, value
                    value = [value[k] for k in sorted(value, key=int)]
                assert_row(model, name, value, want)
        else:
            assert_row(model, model.main_output, prediction, expected[model.main_output][i])


def assert_row(model, name: str, value, want: np.ndarray) -> None:
    got = np.asarray(value).reshape(-1)
    want = np.asarray(want).reshape(-1)
    assert got.shape == want.shape, (name, value, want)
    if name == model.label_output:
        assert got.tolist() == want.tolist() and all(float(v).is_integer() for v in got), (name, value, want)
    else:
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("key", SINGLE_INPUT_KEYS)
def test_v1_predict(server, served, key, rows):
    served[key]  # fails with the reason when this model did not deploy
    model = build(key)
    instances = model.batch(rows)["input"].tolist()
    response = server.post(f"/v1/models/{key}:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    answered_by(response)
    assert_v1_predictions(model, response.json()["predictions"], rows)


# --- MLflow scoring protocol ------------------------------------------------------------------------


def close_json(got, want, where: str = "predictions") -> None:
    """`got` has exactly `want`'s JSON structure (object keys in any order); ints equal, floats
    to 1e-5."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), (where, got, want)
        for k in want:
            close_json(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (where, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            close_json(g, w, f"{where}[{i}]")
    elif isinstance(want, bool) or isinstance(want, str):
        assert got == want, (where, got, want)
    elif isinstance(want, int):
        assert isinstance(got, int) and not isinstance(got, bool) and got == want, (where, got, want)
    else:
        assert isinstance(got, (int, float)) and not isinstance(got, bool), (where, got, want)
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-5), (where, got, want)


def mlflow_value(model, name: str, value: np.ndarray):
    """One output (or one row of it) in MLflow's JSON form: ZipMap rows as {"<class>": p}."""
    if name == model.probability_output:
        if value.ndim == 1:
            return {str(c): float(p) for c, p in zip(model.classes, value)}
        return [{str(c): float(p) for c, p in zip(model.classes, row)} for row in value]
    return value.tolist()


def mlflow_records(model, rows: int) -> list[dict]:
    """What MLflow answers to the dataframe formats: one {output: scalar-or-record} per row."""
    expected = model.expected(rows)
    records = []
    for i in range(rows):
        record = {}
        for name in model.output_names:
            row = expected[name][i]
            if name == model.probability_output:
                record[name] = mlflow_value(model, name, row)
            else:
                record[name] = np.asarray(row).reshape(-1)[0].item()  # [N] and [N, 1] -> scalar
        records.append(record)
    return records


def mlflow_tensors(model, rows: int) -> dict:
    """What MLflow answers to `instances` / `inputs`: each output whole, in its ONNX shape."""
    expected = model.expected(rows)
    return {name: mlflow_value(model, name, expected[name]) for name in model.output_names}


def invocation_bodies(model, rows: int) -> dict[str, tuple[dict, str]]:
    """format -> (request body, "records" or "tensors": which answer MLflow gives)."""
    batch = model.batch(rows)
    if not model.single_input:
        return {
            "instances": ({"instances": [{n: v[i].tolist() for n, v in batch.items()} for i in range(rows)]},
                          "tensors"),
            "inputs": ({"inputs": {n: v.tolist() for n, v in batch.items()}}, "tensors"),
        }
    x = batch["input"]
    columns = [f"f{i}" for i in range(x.shape[1])]
    return {
        "dataframe_split": ({"dataframe_split": {"columns": columns, "data": x.tolist()}}, "records"),
        "dataframe_split_no_columns": ({"dataframe_split": {"data": x.tolist()}}, "records"),
        "dataframe_records": ({"dataframe_records": [dict(zip(columns, r)) for r in x.tolist()]}, "records"),
        "instances": ({"instances": x.tolist()}, "tensors"),
        "inputs": ({"inputs": x.tolist()}, "tensors"),
        "inputs_named": ({"inputs": {"input": x.tolist()}}, "tensors"),
    }


INVOCATION_CASES = [
    pytest.param(key, fmt, id=f"{key}-{fmt}")
    for key in MODEL_KEYS
    for fmt in (["instances", "inputs"] if key == "pipeline" else
                ["dataframe_split", "dataframe_split_no_columns", "dataframe_records", "instances",
                 "inputs", "inputs_named"])
]


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("key,fmt", INVOCATION_CASES)
def test_invocations(server, served, key, fmt, rows):
    served[key]  # fails with the reason when this model did not deploy
    model = build(key)
    body, form = invocation_bodies(model, rows)[fmt]
    response = server.post(f"/endpoints/{key}/invocations", json=body)
    assert response.status_code == 200, response.text[:1000]
    answered_by(response)
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert list(answer) == ["predictions"], answer
    want = mlflow_records(model, rows) if form == "records" else mlflow_tensors(model, rows)
    close_json(answer["predictions"], want)


# --- metrics and stats ----------------------------------------------------------------------------


def serving_requests(server, endpoint: str, deployment: str) -> float:
    response = server.get("/metrics")
    assert response.status_code == 200
    total = 0.0
    found = False
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if (sample.name == "keelson_serving_requests_total"
                    and sample.labels.get("endpoint") == endpoint
                    and sample.labels.get("deployment") == deployment):
                total += sample.value
                found = True
    return total if found else -1.0


def test_metrics_and_stats_count_requests(server, served):
    served["mlp-reg"]
    model = build("mlp-reg")
    before = max(serving_requests(server, "mlp-reg", DEPLOYMENT), 0.0)
    stats_before = get_endpoint(server, "mlp-reg")["deployments"][0]["stats"]
    for _ in range(3):
        assert infer(server, "mlp-reg", model.v2_inputs(2)).status_code == 200
    # Counted once each, possibly just after the answer went out: wait (bounded) for 3 more.
    def metric_grew():
        now = serving_requests(server, "mlp-reg", DEPLOYMENT)
        return now if now - before >= 3 else None

    def stats_grew():
        now = get_endpoint(server, "mlp-reg")["deployments"][0]["stats"]
        return now if now["requests"] - stats_before["requests"] >= 3 else None

    after = wait_until(metric_grew, timeout_s=10,
                       what='keelson_serving_requests_total{endpoint="mlp-reg",deployment="blue"} +3')
    assert after - before == 3, (before, after)
    stats = wait_until(stats_grew, timeout_s=10, what="stats.requests +3")
    assert stats["requests"] - stats_before["requests"] == 3, (stats_before, stats)
    assert stats["errors"] == stats_before["errors"]


def test_v2_concurrent_async_requests(server, served):
    """An asyncio client (aiohttp, as the KServe REST client uses underneath) gets the same
    answers as the synchronous ones for 16 concurrent requests."""
    import aiohttp

    served["logreg"]
    model = build("logreg")

    async def main():
        async with aiohttp.ClientSession() as session:
            async def one(start):
                body = {"inputs": model.v2_inputs(4, start=start)}
                async with session.post(f"{server.url}/v2/models/logreg/infer", json=body) as r:
                    assert r.status == 200, await r.text()
                    assert r.headers.get(HEADER) == DEPLOYMENT
                    return start, await r.json()
            return await asyncio.gather(*(one(s) for s in range(0, 64, 4)))

    for start, body in asyncio.run(main()):
        assert_outputs_match(model, v2_outputs(body), 4, start=start)
