"""Runs through the unmodified `mlflow` client: lifecycle, metrics, params, tags, batches, dataset
inputs and metric history. MLflow service.proto: CreateRun, GetRun, UpdateRun, DeleteRun,
RestoreRun, LogMetric, LogParam, SetTag, DeleteTag, LogBatch, LogInputs, GetMetricHistory,
GetMetricHistoryBulkInterval."""

from __future__ import annotations

import math
import sys
import time

import mlflow
import mlflow.tracking._tracking_service.client as tracking_service_client
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from mlflow_helpers import API, assert_client_error, assert_rest_error, unique

DBL_MAX = sys.float_info.max


@pytest.fixture(scope="module")
def client(mlflow_tracking) -> MlflowClient:
    return MlflowClient(mlflow_tracking.url)


@pytest.fixture(scope="module")
def experiment_id(client) -> str:
    return client.create_experiment(unique("runs"))


def now_ms() -> int:
    return int(time.time() * 1000)


def test_start_run_with_name_and_tags(client, experiment_id):
    before = now_ms() - 5_000
    with mlflow.start_run(
        experiment_id=experiment_id, run_name="first-run", tags={"owner": "ana", "kind": "smoke"}
    ) as active:
        run_id = active.info.run_id
        assert active.info.status == "RUNNING"

    run = client.get_run(run_id)
    assert run.info.run_id == run_id
    assert run.info.experiment_id == experiment_id
    assert run.info.run_name == "first-run"
    assert run.info.lifecycle_stage == "active"
    # Leaving the `with` block ends the run as FINISHED.
    assert run.info.status == "FINISHED"
    assert before <= run.info.start_time <= run.info.end_time <= now_ms() + 5_000
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    assert run.info.artifact_uri.endswith(f"{run_id}/artifacts")
    tags = run.data.tags
    assert tags["owner"] == "ana" and tags["kind"] == "smoke"
    # The client adds its own system tags; the run name is mirrored in `mlflow.runName`.
    assert tags["mlflow.runName"] == "first-run"
    assert "mlflow.user" in tags and "mlflow.source.name" in tags
    assert run.data.metrics == {} and run.data.params == {}


def test_create_run_gets_a_generated_name(client, experiment_id):
    run = client.create_run(experiment_id)
    assert run.info.run_name, run.info
    assert run.info.status == "RUNNING"
    assert client.get_run(run.info.run_id).data.tags["mlflow.runName"] == run.info.run_name


def test_set_terminated_and_rename(client, experiment_id):
    run = client.create_run(experiment_id, run_name="before", start_time=1_700_000_000_000)
    run_id = run.info.run_id
    assert run.info.start_time == 1_700_000_000_000

    client.set_terminated(run_id, status="FAILED", end_time=1_700_000_123_456)
    info = client.get_run(run_id).info
    assert info.status == "FAILED"
    assert info.end_time == 1_700_000_123_456

    client.update_run(run_id, name="after")
    run = client.get_run(run_id)
    assert run.info.run_name == "after"
    assert run.info.status == "FAILED"
    assert run.data.tags["mlflow.runName"] == "after"

    client.update_run(run_id, status="KILLED")
    assert client.get_run(run_id).info.status == RunStatus.to_string(RunStatus.KILLED)


def test_delete_and_restore_run(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"


def test_log_metric_param_and_tags(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "loss", 0.5, timestamp=1_000, step=0)
    client.log_metric(run_id, "loss", 0.25, timestamp=2_000, step=2)
    client.log_metric(run_id, "loss", 0.4, timestamp=3_000, step=1)
    client.log_metric(run_id, "acc", 1, timestamp=1_000)
    client.log_param(run_id, "lr", 0.01)
    client.log_param(run_id, "layers", "3")
    client.set_tag(run_id, "phase", "train")
    client.set_tag(run_id, "drop-me", "x")
    client.set_tag(run_id, "phase", "eval")  # tags, unlike params, can change
    client.delete_tag(run_id, "drop-me")

    data = client.get_run(run_id).data
    # The run shows the latest value: the one with the highest step (then timestamp).
    assert data.metrics == {"loss": 0.25, "acc": 1.0}
    assert data.params == {"lr": "0.01", "layers": "3"}  # params are strings on the wire
    assert data.tags["phase"] == "eval"
    assert "drop-me" not in data.tags

    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (0, 0.5, 1_000),
        (2, 0.25, 2_000),
        (1, 0.4, 3_000),
    ]
    assert all(m.key == "loss" for m in history)
    assert client.get_metric_history(run_id, "never-logged") == []


def test_fluent_logging_uses_the_active_run(client, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("m", 1.5, step=3)
        mlflow.log_metrics({"a": 1.0, "b": 2.0}, step=1)
        mlflow.log_param("p", "v")
        mlflow.log_params({"q": 1, "r": True})
        mlflow.set_tag("t", "1")
        mlflow.set_tags({"u": "2"})
    data = client.get_run(run.info.run_id).data
    assert data.metrics == {"m": 1.5, "a": 1.0, "b": 2.0}
    assert data.params == {"p": "v", "q": "1", "r": "True"}
    assert data.tags["t"] == "1" and data.tags["u"] == "2"
    assert client.get_metric_history(run.info.run_id, "m")[0].step == 3


def test_log_batch_round_trips(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    metrics = [Metric("batch", float(i), 10_000 + i, i) for i in range(50)]
    params = [Param(f"p{i}", f"v{i}") for i in range(20)]
    tags = [RunTag(f"t{i}", f"w{i}") for i in range(20)]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    run = client.get_run(run_id)
    assert run.data.metrics == {"batch": 49.0}
    assert run.data.params == {f"p{i}": f"v{i}" for i in range(20)}
    assert all(run.data.tags[f"t{i}"] == f"w{i}" for i in range(20))
    history = client.get_metric_history(run_id, "batch")
    assert [(m.value, m.timestamp, m.step) for m in history] == [
        (float(i), 10_000 + i, i) for i in range(50)
    ]


def test_params_are_immutable(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "alpha", "0.5")
    client.log_param(run_id, "alpha", "0.5")  # the same value again is fine
    with pytest.raises(MlflowException) as excinfo:
        client.log_param(run_id, "alpha", "0.7")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as excinfo:
        client.log_batch(run_id, params=[Param("alpha", "0.9")])
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    client.log_batch(run_id, params=[Param("alpha", "0.5")])
    assert client.get_run(run_id).data.params == {"alpha": "0.5"}


def test_nan_and_infinite_metrics_round_trip(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "nan", math.nan, timestamp=1, step=0)
    client.log_metric(run_id, "pos_inf", math.inf, timestamp=1, step=0)
    client.log_metric(run_id, "neg_inf", -math.inf, timestamp=1, step=0)
    client.log_batch(run_id, metrics=[Metric("batch_nan", math.nan, 1, 0)])

    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert math.isnan(metrics["batch_nan"])
    # MLflow's SQL store keeps ±inf as ±DBL_MAX (SqlAlchemyStore: "sqlite/mysql do not support
    # inf"); a server that stores the infinity itself is just as faithful to the client.
    assert metrics["pos_inf"] in (math.inf, DBL_MAX)
    assert metrics["neg_inf"] in (-math.inf, -DBL_MAX)
    history = client.get_metric_history(run_id, "nan")
    assert len(history) == 1 and math.isnan(history[0].value)


def test_log_input_dataset(client, experiment_id):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    train = mlflow.data.from_pandas(
        frame, source="https://example.com/toy.csv", targets="y", name="toy-data", digest="d1g3st"
    )
    holdout = mlflow.data.from_pandas(frame.head(2), name="toy-holdout", digest="h0ld0ut")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_input(train, context="training", tags={"split": "train"})
        mlflow.log_input(holdout, context="validation")
        # A dataset the run already has is not added again, whatever the context.
        mlflow.log_input(train, context="testing")

    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    by_name = {dataset_input.dataset.name: dataset_input for dataset_input in inputs}
    assert sorted(by_name) == ["toy-data", "toy-holdout"]

    logged = by_name["toy-data"].dataset
    assert logged.digest == "d1g3st"
    assert logged.source_type == "http"
    assert "https://example.com/toy.csv" in logged.source
    assert '"x"' in logged.schema and '"y"' in logged.schema
    assert '"num_rows": 3' in logged.profile
    tags = {tag.key: tag.value for tag in by_name["toy-data"].tags}
    assert tags == {"mlflow.data.context": "training", "split": "train"}

    assert by_name["toy-holdout"].dataset.digest == "h0ld0ut"
    tags = {tag.key: tag.value for tag in by_name["toy-holdout"].tags}
    assert tags == {"mlflow.data.context": "validation"}


def test_metric_history_pages(client, experiment_id, mlflow_tracking, monkeypatch):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_batch(run_id, metrics=[Metric("h", i * 0.5, 5_000 + i, i) for i in range(23)])

    # The client asks for pages of 25,000 values; make that 7 so its page-token walk is exercised.
    monkeypatch.setattr(tracking_service_client, "GET_METRIC_HISTORY_MAX_RESULTS", 7)
    history = client.get_metric_history(run_id, "h")
    assert [m.step for m in history] == list(range(23))

    # The same walk over the wire (service.proto GetMetricHistory: max_results, page_token).
    steps, token, pages = [], None, 0
    while True:
        params = {"run_id": run_id, "metric_key": "h", "max_results": 10}
        if token:
            params["page_token"] = token
        response = mlflow_tracking.get(f"{API}/metrics/get-history", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        steps += [metric["step"] for metric in body.get("metrics", [])]
        token = body.get("next_page_token")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert steps == list(range(23))

    # Without max_results the whole history comes back at once.
    whole = mlflow_tracking.get(
        f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "h"}
    )
    assert len(whole.json()["metrics"]) == 23
    assert "next_page_token" not in whole.json()


def test_metric_history_bulk_interval(client, experiment_id, mlflow_tracking):
    """The UI's sampled history across runs (GetMetricHistoryBulkInterval, an ajax-api route)."""
    run_a = client.create_run(experiment_id).info.run_id
    run_b = client.create_run(experiment_id).info.run_id
    client.log_batch(run_a, metrics=[Metric("curve", float(i), 1_000 + i, i) for i in range(30)])
    client.log_batch(run_b, metrics=[Metric("curve", -float(i), 1_000 + i, i) for i in range(5)])
    path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"

    everything = mlflow_tracking.get(
        path, params={"run_ids": [run_a, run_b], "metric_key": "curve", "max_results": 100}
    )
    assert everything.status_code == 200, everything.text
    metrics = everything.json()["metrics"]
    by_run: dict[str, list[dict]] = {}
    for metric in metrics:
        assert metric["key"] == "curve"
        by_run.setdefault(metric["run_id"], []).append(metric)
    assert sorted(m["step"] for m in by_run[run_a]) == list(range(30))
    assert sorted(m["step"] for m in by_run[run_b]) == list(range(5))
    assert {m["step"]: m["value"] for m in by_run[run_b]} == {i: -float(i) for i in range(5)}

    window = mlflow_tracking.get(
        path,
        params={
            "run_ids": [run_a],
            "metric_key": "curve",
            "start_step": 10,
            "end_step": 14,
            "max_results": 100,
        },
    )
    assert window.status_code == 200, window.text
    assert sorted(m["step"] for m in window.json()["metrics"]) == [10, 11, 12, 13, 14]

    sampled = mlflow_tracking.get(
        path, params={"run_ids": [run_a], "metric_key": "curve", "max_results": 5}
    )
    assert sampled.status_code == 200, sampled.text
    steps = sorted(m["step"] for m in sampled.json()["metrics"])
    # Down-sampled, keeping the first and the last point.
    assert 2 <= len(steps) <= 6, steps
    assert steps[0] == 0 and steps[-1] == 29

    only_start = mlflow_tracking.get(
        path, params={"run_ids": [run_a], "metric_key": "curve", "start_step": 3}
    )
    assert_rest_error(only_start, 400, "INVALID_PARAMETER_VALUE")


def test_unknown_run_is_resource_does_not_exist(client):
    with pytest.raises(MlflowException) as excinfo:
        client.get_run("0123456789abcdef0123456789abcdef")
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as excinfo:
        client.log_metric("0123456789abcdef0123456789abcdef", "m", 1.0)
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
