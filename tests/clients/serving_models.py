"""Models and helpers the serving tests (test_serving_*.py) share.

Models: small scikit-learn models trained with fixed seeds and exported to ONNX with skl2onnx
(opsets below), each with fixed test inputs (64 rows) and onnxruntime's outputs on them, the
reference Keelson must match. Classifiers keep skl2onnx's default ZipMap: onnxruntime returns
`output_probability` as a list of {class: probability}; Keelson answers it as an FP32 tensor
[N, n_classes] with the columns in class order (ZipMap's `classlabels_*`, i.e. sorted `classes_`),
and `reference` holds it in that form.

The pipeline (ColumnTransformer: StandardScaler on three float columns, OneHotEncoder on an int64
column, then LogisticRegression) is exported with one ONNX input per column (`num_a`, `num_b`,
`num_c`: FP32 [-1, 1]; `cat`: INT64 [-1, 1]): skl2onnx maps a ColumnTransformer's column names
to input names, so a float block and an int block as two inputs do not export; four does cleanly.

Helpers: logging a model with the unmodified MLflow client (`log_and_register`), and thin
wrappers over Keelson's serving API and the Open Inference Protocol (V2) used by every module.
"""

from __future__ import annotations

import functools
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import requests

SEED = 20261125
N_ROWS = 64  # rows of fixed test input per model; the batch-size tests use the first 1 and all 64
# Opsets every test model is exported with: onnxruntime runs them, and they are the ones
# skl2onnx's converters for these estimators are written against (ai.onnx.ml 3: TreeEnsemble*,
# LinearClassifier, Scaler, OneHotEncoder, ZipMap).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
RTOL = 1e-5
ATOL = 1e-5

NUMPY_TO_V2 = {
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
    np.dtype(np.int64): "INT64",
    np.dtype(np.int32): "INT32",
    np.dtype(np.bool_): "BOOL",
}
V2_TO_NUMPY = {v: k for k, v in NUMPY_TO_V2.items()}


@dataclass(frozen=True)
class TensorSpec:
    """A tensor as V2 metadata describes it (-1 for a dynamic dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def as_json(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass
class ServingModel:
    key: str  # also the endpoint name the tests serve it under (matches ^[a-z0-9][a-z0-9-]{0,62}$)
    kind: str  # "classifier" or "regressor"
    onnx_model: Any = field(repr=False)  # onnx.ModelProto
    inputs: dict[str, np.ndarray] = field(repr=False)  # N_ROWS rows each, in ONNX input order
    reference: dict[str, np.ndarray] = field(repr=False)  # onnxruntime's outputs, Keelson's form
    input_specs: list[TensorSpec]
    output_specs: list[TensorSpec]
    classes: list[int] | None = None
    label_output: str | None = None
    probability_output: str | None = None

    @property
    def onnx_bytes(self) -> bytes:
        return self.onnx_model.SerializeToString()

    @property
    def single_input(self) -> bool:
        return len(self.inputs) == 1

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.output_specs]

    @property
    def main_output(self) -> str:
        """What a classifier predicts (its label) or a regressor's value."""
        return self.label_output or self.output_specs[0].name

    def batch(self, rows: int = N_ROWS, start: int = 0) -> dict[str, np.ndarray]:
        return {name: value[start : start + rows] for name, value in self.inputs.items()}

    def expected(self, rows: int = N_ROWS, start: int = 0) -> dict[str, np.ndarray]:
        return {name: value[start : start + rows] for name, value in self.reference.items()}

    def v2_inputs(self, rows: int = N_ROWS, start: int = 0) -> list[dict]:
        """V2 JSON input objects (flat row-major `data`)."""
        return [v2_tensor(name, value) for name, value in self.batch(rows, start).items()]

    def input_example(self, rows: int = 5) -> np.ndarray | dict[str, np.ndarray]:
        """What the tests pass as `input_example` to `mlflow.onnx.log_model`."""
        batch = self.batch(rows)
        return next(iter(batch.values())) if self.single_input else batch

    def validation(self, rows: int = 4, tolerance: float = 1e-5) -> dict:
        """A deployment's `validation` block: these rows and onnxruntime's outputs on them."""
        expected = {name: value.reshape(-1).tolist() for name, value in self.expected(rows).items()}
        return {"inputs": self.v2_inputs(rows), "expected_outputs": expected, "tolerance": tolerance}


def v2_tensor(name: str, value: np.ndarray) -> dict:
    return {
        "name": name,
        "datatype": NUMPY_TO_V2[value.dtype],
        "shape": list(value.shape),
        "data": value.reshape(-1).tolist(),
    }


# --- building the models --------------------------------------------------------------------------


def _zipmap_to_matrix(rows: list[dict], classes: list[int]) -> np.ndarray:
    return np.array([[row[c] for c in classes] for row in rows], dtype=np.float32)


def _run_onnxruntime(onnx_model, inputs: dict[str, np.ndarray]) -> tuple[dict[str, Any], list[str]]:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, inputs)
    return dict(zip(names, values)), names


def _finish(
    key: str,
    estimator,
    onnx_model,
    inputs: dict[str, np.ndarray],
    kind: str,
) -> ServingModel:
    raw, names = _run_onnxruntime(onnx_model, inputs)
    input_specs = [
        TensorSpec(name, NUMPY_TO_V2[value.dtype], (-1, *value.shape[1:]))
        for name, value in inputs.items()
    ]
    if kind == "classifier":
        classes = [int(c) for c in estimator.classes_]
        label, probability = names  # skl2onnx: output_label, output_probability (ZipMap)
        assert isinstance(raw[probability], list) and isinstance(raw[probability][0], dict), key
        assert sorted(raw[probability][0]) == classes, (key, raw[probability][0], classes)
        reference = {
            label: np.asarray(raw[label], dtype=np.int64),
            probability: _zipmap_to_matrix(raw[probability], classes),
        }
        output_specs = [
            TensorSpec(label, "INT64", (-1,)),
            TensorSpec(probability, "FP32", (-1, len(classes))),
        ]
        model = ServingModel(
            key, kind, onnx_model, inputs, reference, input_specs, output_specs,
            classes=classes, label_output=label, probability_output=probability,
        )
        # The export must agree with scikit-learn itself on the labels: a sanity check of the
        # reference, not of Keelson.
        features = _sklearn_features(key, inputs)
        agree = np.mean(estimator.predict(features) == reference[label])
        assert agree >= 0.95, (key, agree)
        return model
    (name,) = names
    value = np.asarray(raw[name], dtype=np.float32)
    assert value.shape == (N_ROWS, 1), (key, value.shape)
    reference = {name: value}
    output_specs = [TensorSpec(name, "FP32", (-1, 1))]
    features = _sklearn_features(key, inputs)
    np.testing.assert_allclose(
        estimator.predict(features).reshape(-1, 1), value, rtol=1e-3, atol=1e-3 * np.abs(value).max()
    )
    return ServingModel(key, kind, onnx_model, inputs, reference, input_specs, output_specs)


def _sklearn_features(key: str, inputs: dict[str, np.ndarray]):
    if key == "pipeline":
        import pandas as pd

        return pd.DataFrame({name: value[:, 0] for name, value in inputs.items()})
    return inputs["input"]


def _convert(estimator, initial_types):
    from skl2onnx import convert_sklearn

    return convert_sklearn(estimator, initial_types=initial_types, target_opset=TARGET_OPSET)


def _float_input(n_features: int):
    from skl2onnx.common.data_types import FloatTensorType

    return [("input", FloatTensorType([None, n_features]))]


def _classification_data(n_classes: int, labels: list[int] | None = None):
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=400, n_features=6, n_informative=4, n_redundant=1, n_classes=n_classes,
        n_clusters_per_class=1, random_state=SEED,
    )
    if labels is not None:
        y = np.asarray(labels, dtype=np.int64)[y]
    test = np.random.default_rng(SEED + 1).normal(size=(N_ROWS, 6)) * x.std(axis=0) + x.mean(axis=0)
    return x.astype(np.float32), y.astype(np.int64), test.astype(np.float32)


def _regression_data():
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=400, n_features=5, n_informative=4, noise=0.5, random_state=SEED)
    test = np.random.default_rng(SEED + 2).normal(size=(N_ROWS, 5)) * x.std(axis=0) + x.mean(axis=0)
    return x.astype(np.float32), y.astype(np.float32), test.astype(np.float32)


def _linear_regression() -> ServingModel:
    from sklearn.linear_model import LinearRegression

    x, y, test = _regression_data()
    est = LinearRegression().fit(x, y)
    return _finish("linreg", est, _convert(est, _float_input(5)), {"input": test}, "regressor")


def _logistic_regression() -> ServingModel:
    from sklearn.linear_model import LogisticRegression

    x, y, test = _classification_data(3)
    est = LogisticRegression(max_iter=2000).fit(x, y)
    return _finish("logreg", est, _convert(est, _float_input(6)), {"input": test}, "classifier")


def _random_forest_classifier() -> ServingModel:
    from sklearn.ensemble import RandomForestClassifier

    # Labels that are not 0..k-1: the answer must carry the class labels, not their indices.
    x, y, test = _classification_data(3, labels=[3, 7, 11])
    est = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=SEED).fit(x, y)
    return _finish("rf-clf", est, _convert(est, _float_input(6)), {"input": test}, "classifier")


def _gradient_boosting_classifier() -> ServingModel:
    from sklearn.ensemble import GradientBoostingClassifier

    x, y, test = _classification_data(3)
    est = GradientBoostingClassifier(n_estimators=25, max_depth=3, random_state=SEED).fit(x, y)
    return _finish("gb-clf", est, _convert(est, _float_input(6)), {"input": test}, "classifier")


def _random_forest_regressor() -> ServingModel:
    from sklearn.ensemble import RandomForestRegressor

    x, y, test = _regression_data()
    est = RandomForestRegressor(n_estimators=20, max_depth=8, random_state=SEED).fit(x, y)
    return _finish("rf-reg", est, _convert(est, _float_input(5)), {"input": test}, "regressor")


PIPELINE_NUMERIC = ["num_a", "num_b", "num_c"]


def _pipeline() -> ServingModel:
    import pandas as pd
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(SEED + 3)

    def frame(rows: int) -> pd.DataFrame:
        numeric = (rng.normal(size=(rows, 3)) * [1.0, 5.0, 0.2] + [0.0, 10.0, -1.0]).astype(np.float32)
        data = {name: numeric[:, i] for i, name in enumerate(PIPELINE_NUMERIC)}
        data["cat"] = rng.integers(0, 5, size=rows).astype(np.int64)
        return pd.DataFrame(data)

    train = frame(400)
    score = train["num_a"] + 0.2 * (train["num_b"] - 10) + 0.8 * (train["cat"] - 2)
    y = np.digitize(score, [-0.8, 0.8]).astype(np.int64)  # three classes
    prep = ColumnTransformer([
        ("num", StandardScaler(), PIPELINE_NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["cat"]),
    ])
    est = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=2000))]).fit(train, y)
    types = [(name, FloatTensorType([None, 1])) for name in PIPELINE_NUMERIC]
    types.append(("cat", Int64TensorType([None, 1])))
    test = frame(N_ROWS)
    inputs = {name: test[name].to_numpy().reshape(-1, 1) for name in [*PIPELINE_NUMERIC, "cat"]}
    return _finish("pipeline", est, _convert(est, types), inputs, "classifier")


def _mlp_classifier() -> ServingModel:
    from sklearn.neural_network import MLPClassifier

    x, y, test = _classification_data(3)
    est = MLPClassifier(hidden_layer_sizes=(64, 16), max_iter=600, random_state=SEED).fit(x, y)
    onnx_model = _convert(est, _float_input(6))
    # Weights as `raw_data`, as torch.onnx and most exporters write them (skl2onnx writes
    # `float_data`): mlflow.onnx.log_model saves with save_as_external_data=True, so the two
    # weight matrices over 1 KiB go to a side file next to model.onnx (a uuid-named `.data`)
    # that a server must fetch with the model.
    _weights_as_raw_data(onnx_model)
    return _finish("mlp-clf", est, onnx_model, {"input": test}, "classifier")


def _weights_as_raw_data(onnx_model) -> None:
    from onnx import numpy_helper

    for index, init in enumerate(onnx_model.graph.initializer):
        if init.data_type == 1:  # FLOAT
            onnx_model.graph.initializer[index].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(init), init.name)
            )


def _mlp_regressor() -> ServingModel:
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler

    x, y, test = _regression_data()
    scale = StandardScaler().fit(x)
    xs = scale.transform(x).astype(np.float32)
    ts = scale.transform(test).astype(np.float32)
    est = MLPRegressor(hidden_layer_sizes=(32,), max_iter=800, random_state=SEED).fit(xs, y)
    return _finish("mlp-reg", est, _convert(est, _float_input(5)), {"input": ts}, "regressor")


BUILDERS: dict[str, Callable[[], ServingModel]] = {
    "linreg": _linear_regression,
    "logreg": _logistic_regression,
    "rf-clf": _random_forest_classifier,
    "gb-clf": _gradient_boosting_classifier,
    "rf-reg": _random_forest_regressor,
    "pipeline": _pipeline,
    "mlp-clf": _mlp_classifier,
    "mlp-reg": _mlp_regressor,
}
MODEL_KEYS = list(BUILDERS)
SINGLE_INPUT_KEYS = [key for key in MODEL_KEYS if key != "pipeline"]


@functools.lru_cache(maxsize=None)
def build(key: str) -> ServingModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning and friends: the models are fixed
        return BUILDERS[key]()


def build_all() -> dict[str, ServingModel]:
    return {key: build(key) for key in MODEL_KEYS}


def assert_outputs_match(model: ServingModel, outputs: dict[str, np.ndarray], rows: int, start: int = 0):
    """Outputs (by name) equal onnxruntime's: labels exactly, numbers to RTOL/ATOL."""
    expected = model.expected(rows, start)
    assert set(outputs) >= set(expected), (sorted(outputs), sorted(expected))
    for name, want in expected.items():
        got = np.asarray(outputs[name])
        assert got.size == want.size, (name, got.shape, want.shape)
        got = got.reshape(want.shape)
        if name == model.label_output:
            np.testing.assert_array_equal(got.astype(np.int64), want, err_msg=f"{model.key}.{name}")
        else:
            np.testing.assert_allclose(
                got.astype(np.float64), want.astype(np.float64), rtol=RTOL, atol=ATOL,
                err_msg=f"{model.key}.{name}",
            )


# --- the MLflow client ------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def log_and_register(model: ServingModel, name: str, onnx_model=None, input_example=None) -> str:
    """Logs `model` with the unmodified MLflow client against MLFLOW_TRACKING_URI and registers
    it as `name`; returns the new version ("1", "2", ...). `onnx_model` / `input_example` replace
    the model's own (to log a broken model or an example that does not fit)."""
    import mlflow
    import onnx
    import onnxruntime

    mlflow.set_experiment("serving-tests")
    # mlflow.onnx saves with external data by rewriting the proto it is given in place (its
    # initializers then point at a file of that save); the models are cached and shared, so it
    # gets a copy.
    logged = onnx.ModelProto()
    logged.CopyFrom(onnx_model if onnx_model is not None else model.onnx_model)
    with mlflow.start_run():
        info = mlflow.onnx.log_model(
            logged,
            name="model",
            input_example=input_example if input_example is not None else model.input_example(),
            registered_model_name=name,
            # Given, not inferred: inferring runs a subprocess that takes ~7 s per model.
            pip_requirements=[f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}"],
        )
    version = info.registered_model_version
    assert version is not None, info
    return str(version)


# --- Keelson's serving API ------------------------------------------------------------------------


def api_error(response: requests.Response, statuses: tuple[int, ...], error_code: str) -> dict:
    """Keelson's API error: one of `statuses`, `{"error_code", "message"}`."""
    assert response.status_code in statuses, (response.status_code, response.text[:1000])
    body = response.json()
    assert body.get("error_code") == error_code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


def protocol_error(response: requests.Response, statuses: tuple[int, ...] = (400,)) -> str:
    """An inference protocol error: one of `statuses`, `{"error": "<non-empty message>"}`."""
    assert response.status_code in statuses, (response.status_code, response.text[:1000])
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    return body["error"]


def create_endpoint(server, name: str, description: str = "") -> dict:
    response = server.post("/api/v1/endpoints", json={"name": name, "description": description})
    assert response.status_code == 201, (response.status_code, response.text)
    return response.json()


def get_endpoint(server, name: str) -> dict:
    response = server.get(f"/api/v1/endpoints/{name}")
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def put_deployment(server, endpoint: str, deployment: str, body: dict) -> requests.Response:
    # Loading and validating a model can take a moment: a generous timeout.
    return server.request(
        "PUT", f"/api/v1/endpoints/{endpoint}/deployments/{deployment}", json=body, timeout=120
    )


def deploy(server, endpoint: str, deployment: str, model: str, version: str, **extra) -> dict:
    response = put_deployment(server, endpoint, deployment, {"model": model, "version": version, **extra})
    assert response.status_code == 200, (response.status_code, response.text)
    body = response.json()
    assert body["state"] == "ready", body
    return body


def set_traffic(server, endpoint: str, traffic: dict, **extra) -> requests.Response:
    return server.request("PUT", f"/api/v1/endpoints/{endpoint}/traffic", json={"traffic": traffic, **extra})


def deployment_of(endpoint_json: dict, name: str) -> dict:
    for deployment in endpoint_json["deployments"]:
        if deployment["name"] == name:
            return deployment
    raise AssertionError(f"no deployment {name!r} in {endpoint_json}")


def infer(server, endpoint: str, inputs: list[dict], outputs: list[dict] | None = None,
          headers: dict | None = None, session: requests.Session | None = None) -> requests.Response:
    body: dict = {"inputs": inputs}
    if outputs is not None:
        body["outputs"] = outputs
    if session is not None:
        return session.post(f"{server.url}/v2/models/{endpoint}/infer", json=body, headers=headers, timeout=30)
    return server.post(f"/v2/models/{endpoint}/infer", json=body, headers=headers)


def v2_outputs(body: dict) -> dict[str, np.ndarray]:
    """A V2 JSON response's outputs, by name, shaped and typed as declared."""
    result = {}
    for output in body["outputs"]:
        dtype = V2_TO_NUMPY[output["datatype"]]
        result[output["name"]] = np.asarray(output["data"], dtype=dtype).reshape(output["shape"])
    return result


# --- the binary tensor extension -------------------------------------------------------------------


def binary_request(
    inputs: dict[str, np.ndarray],
    outputs: list[str] | None = None,
    binary_outputs: bool = True,
) -> tuple[bytes, int]:
    """A V2 request with every input in the binary tensor extension: (body, JSON header length).
    The same bytes tritonclient sends (checked in the sanity check of serving_models)."""
    import json

    header: dict = {"inputs": []}
    blobs = []
    for name, value in inputs.items():
        blob = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
        header["inputs"].append({
            "name": name,
            "shape": list(value.shape),
            "datatype": NUMPY_TO_V2[value.dtype],
            "parameters": {"binary_data_size": len(blob)},
        })
        blobs.append(blob)
    if outputs is not None:
        header["outputs"] = [{"name": o, "parameters": {"binary_data": binary_outputs}} for o in outputs]
    else:
        header["parameters"] = {"binary_data_output": binary_outputs}
    head = json.dumps(header).encode()
    return head + b"".join(blobs), len(head)


def parse_binary_response(response: requests.Response) -> tuple[dict, dict[str, np.ndarray]]:
    """A V2 response that may use the binary extension: (JSON header, outputs by name)."""
    import json

    body = response.content
    length = response.headers.get("Inference-Header-Content-Length")
    head_len = int(length) if length is not None else len(body)
    header = json.loads(body[:head_len])
    offset = head_len
    outputs = {}
    for output in header["outputs"]:
        dtype = V2_TO_NUMPY[output["datatype"]]
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            value = np.asarray(output["data"], dtype=dtype)
        else:
            value = np.frombuffer(body[offset : offset + size], dtype=dtype.newbyteorder("<"))
            offset += size
        outputs[output["name"]] = value.reshape(output["shape"])
    assert offset == len(body), f"{len(body) - offset} bytes after the last binary output"
    return header, outputs


def wait_until(predicate: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.1,
               what: str = "condition"):
    """Polls `predicate` until it returns something truthy (returned); fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"{what} not reached within {timeout_s} s (last: {last!r})")
