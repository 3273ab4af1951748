"""Models and traces through the unmodified `mlflow` client: an sklearn model logged as an MLflow 3
logged model (`models:/m-...`) and loaded back, autologging, and `@mlflow.trace`. MLflow
service.proto: CreateLoggedModel, FinalizeLoggedModel, GetLoggedModel, SearchLoggedModels...;
traces under /api/3.0/mlflow/traces and OTLP /v1/traces."""

from __future__ import annotations

import time

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from mlflow_helpers import unique

TRACE_WAIT_S = 30.0


@pytest.fixture(scope="module")
def client(mlflow_tracking) -> MlflowClient:
    return MlflowClient(mlflow_tracking.url)


@pytest.fixture(scope="module")
def experiment_id(client) -> str:
    return client.create_experiment(unique("models"))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    features = rng.normal(size=(60, 3))
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(int)
    return features, labels


@pytest.fixture(scope="module")
def logged(experiment_id, data):
    """A fitted LogisticRegression logged with an input example; (model, model_info, run_id)."""
    features, labels = data
    model = LogisticRegression(max_iter=200).fit(features, labels)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = mlflow.sklearn.log_model(model, name="classifier", input_example=features[:3])
    return model, info, run.info.run_id


def test_log_model_returns_a_logged_model_uri(client, logged, experiment_id):
    _, info, run_id = logged
    assert info.model_uri.startswith("models:/m-"), info.model_uri
    assert info.model_id and info.model_uri == f"models:/{info.model_id}"
    assert info.run_id == run_id
    assert info.signature is not None  # inferred from the input example

    logged_model = client.get_logged_model(info.model_id)
    assert logged_model.name == "classifier"
    assert logged_model.experiment_id == experiment_id
    assert logged_model.source_run_id == run_id
    assert str(logged_model.status).endswith("READY"), logged_model.status

    found = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    assert [m.model_id for m in found] == [info.model_id]
    # The run lists the model among its outputs.
    outputs = client.get_run(run_id).outputs
    assert [o.model_id for o in outputs.model_outputs] == [info.model_id]


def test_load_model_predicts_like_the_original(logged, data):
    model, info, _ = logged
    features, _ = data
    expected = model.predict(features)

    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert isinstance(loaded, LogisticRegression)
    np.testing.assert_array_equal(loaded.predict(features), expected)
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features))

    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_array_equal(np.asarray(pyfunc.predict(features)), expected)


def test_runs_uri_still_loads_the_model(logged, data):
    model, _, run_id = logged
    features, _ = data
    loaded = mlflow.sklearn.load_model(f"runs:/{run_id}/classifier")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_autolog_records_params_and_metrics(client, experiment_id, data):
    features, labels = data
    mlflow.sklearn.autolog(log_models=False, log_datasets=True, silent=True)
    try:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            LogisticRegression(C=0.5, max_iter=150).fit(features, labels)
    finally:
        mlflow.sklearn.autolog(disable=True)

    result = client.get_run(run.info.run_id)
    assert result.data.params["C"] == "0.5"
    assert result.data.params["max_iter"] == "150"
    assert 0.5 <= result.data.metrics["training_accuracy_score"] <= 1.0
    assert "training_log_loss" in result.data.metrics
    assert result.data.tags["estimator_name"] == "LogisticRegression"
    assert result.inputs.dataset_inputs, "autolog logs the training set as a dataset input"


@mlflow.trace
def add_and_scale(a: int, b: int, scale: float = 2.0) -> float:
    return (a + b) * scale


def test_trace_is_searchable_with_inputs_and_outputs(client, experiment_id):
    mlflow.set_experiment(experiment_id=experiment_id)
    assert add_and_scale(2, 3, scale=1.5) == 7.5
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id

    deadline = time.monotonic() + TRACE_WAIT_S
    traces = []
    while time.monotonic() < deadline:
        traces = mlflow.search_traces(locations=[experiment_id], return_type="list", flush=True)
        if traces:
            break
        time.sleep(0.5)
    assert [t.info.trace_id for t in traces] == [trace_id]

    trace = client.get_trace(trace_id)
    assert trace.info.trace_id == trace_id
    assert trace.info.state == "OK" or str(trace.info.state).endswith("OK"), trace.info.state
    spans = trace.data.spans
    assert [span.name for span in spans] == ["add_and_scale"]
    assert spans[0].inputs == {"a": 2, "b": 3, "scale": 1.5}
    assert spans[0].outputs == 7.5
