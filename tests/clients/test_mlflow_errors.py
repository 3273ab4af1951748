"""MLflow's error contract on the wire: status codes and `error_code`s as the reference `mlflow
server` 3.17.2 answers them (KEELSON_TEST_REFERENCE_MLFLOW=1 proves each case there). Raw
`requests` where the client would validate before sending; the client where it would not.
Error codes: mlflow/protos/databricks.proto; statuses: mlflow/exceptions.py."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode

from mlflow_helpers import API, ARTIFACTS_API, assert_client_error, assert_rest_error, unique

UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"
UNKNOWN_EXPERIMENT = "987654321"


@pytest.fixture(scope="module")
def client(mlflow_tracking) -> MlflowClient:
    return MlflowClient(mlflow_tracking.url)


@pytest.fixture(scope="module")
def experiment_id(client) -> str:
    return client.create_experiment(unique("errors"))


@pytest.fixture
def run_id(client, experiment_id) -> str:
    return client.create_run(experiment_id).info.run_id


def run_data(server, run_id: str) -> dict:
    response = server.get(f"{API}/runs/get", params={"run_id": run_id})
    assert response.status_code == 200, response.text
    return response.json()["run"].get("data", {})


# --- malformed requests -------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"run_id": "', b"[]"])
def test_malformed_json_body(mlflow_tracking, body):
    response = mlflow_tracking.post(
        f"{API}/runs/log-batch", data=body, headers={"Content-Type": "application/json"}
    )
    if mlflow_tracking.reference:
        # MLflow 3.17.2 answers a body that is not a JSON object with Flask's HTML 500 page, no
        # error_code (an unhandled JSONDecodeError/AttributeError in _get_request_message). The
        # client never sends such a body; keelson answers a proper 400 instead.
        assert response.status_code == 500, response.text[:500]
        return
    assert response.status_code == 400, response.text[:500]
    code = response.json()["error_code"]
    assert code in ("MALFORMED_REQUEST", "INVALID_PARAMETER_VALUE", "BAD_REQUEST"), code
    ErrorCode.Value(code)  # a code the client's enum knows


def test_missing_content_type_is_invalid_parameter_value(mlflow_tracking, run_id):
    response = mlflow_tracking.post(
        f"{API}/runs/log-batch", data=b'{"run_id": "%s"}' % run_id.encode()
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_wrong_field_type_is_invalid_parameter_value(mlflow_tracking, run_id):
    response = mlflow_tracking.post(f"{API}/runs/log-batch", json={"run_id": 5})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    response = mlflow_tracking.post(
        f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": "x"}
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_missing_required_field_is_invalid_parameter_value(mlflow_tracking, run_id):
    assert_rest_error(mlflow_tracking.get(f"{API}/runs/get"), 400, "INVALID_PARAMETER_VALUE")
    response = mlflow_tracking.post(
        f"{API}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1.0}
    )  # no timestamp
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    response = mlflow_tracking.post(f"{API}/experiments/create", json={"name": ""})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


# --- unknown resources --------------------------------------------------------------------------


def test_unknown_experiment_is_404(mlflow_tracking, client):
    response = mlflow_tracking.get(
        f"{API}/experiments/get", params={"experiment_id": UNKNOWN_EXPERIMENT}
    )
    assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    response = mlflow_tracking.get(
        f"{API}/experiments/get-by-name", params={"experiment_name": unique("nope")}
    )
    assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    response = mlflow_tracking.post(
        f"{API}/runs/create", json={"experiment_id": UNKNOWN_EXPERIMENT}
    )
    assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as excinfo:
        client.delete_experiment(UNKNOWN_EXPERIMENT)
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")


def test_non_numeric_experiment_id_is_invalid_parameter_value(mlflow_tracking):
    response = mlflow_tracking.get(f"{API}/experiments/get", params={"experiment_id": "abc"})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_unknown_run_is_404(mlflow_tracking):
    assert_rest_error(
        mlflow_tracking.get(f"{API}/runs/get", params={"run_id": UNKNOWN_RUN}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    for path, body in [
        ("runs/log-metric", {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}),
        ("runs/log-parameter", {"key": "p", "value": "v"}),
        ("runs/set-tag", {"key": "t", "value": "v"}),
        ("runs/log-batch", {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]}),
        ("runs/update", {"status": "FINISHED"}),
        ("runs/delete", {}),
    ]:
        response = mlflow_tracking.post(f"{API}/{path}", json={"run_id": UNKNOWN_RUN, **body})
        assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_endpoint_is_404(mlflow_tracking):
    for path in [f"{API}/no/such/endpoint", "/ajax-api/2.0/mlflow/no/such/endpoint"]:
        response = mlflow_tracking.get(path)
        assert response.status_code == 404, response.text[:500]
        if not mlflow_tracking.reference:
            # MLflow answers Flask's HTML 404, which its client reads as ENDPOINT_NOT_FOUND.
            assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_unknown_artifact_is_404(mlflow_tracking, client, run_id):
    response = mlflow_tracking.get(f"{ARTIFACTS_API}/0/{UNKNOWN_RUN}/artifacts/none.txt")
    assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    # Listing a directory that does not exist is not an error: it is empty.
    response = mlflow_tracking.get(ARTIFACTS_API, params={"path": f"0/{UNKNOWN_RUN}/artifacts"})
    assert response.status_code == 200, response.text
    assert response.json().get("files", []) == []


def test_artifact_path_traversal_is_refused(mlflow_tracking):
    response = mlflow_tracking.get(ARTIFACTS_API, params={"path": "../../etc"})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    response = mlflow_tracking.get(f"{ARTIFACTS_API}/0/%2E%2E/%2E%2E/etc/passwd")
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


# --- invalid values -----------------------------------------------------------------------------


def test_string_metric_value_is_invalid_parameter_value(mlflow_tracking, run_id):
    response = mlflow_tracking.post(
        f"{API}/runs/log-metric",
        json={"run_id": run_id, "key": "m", "value": "abc", "timestamp": 1, "step": 0},
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert run_data(mlflow_tracking, run_id).get("metrics", []) == []


def test_proto_json_number_forms_are_accepted(mlflow_tracking, run_id):
    """Proto3 JSON lets a double be a number or a string ("1.5", "NaN", "Infinity"); the client
    sends NaN as "NaN"."""
    for key, value in [("numeric_string", "1.5"), ("nan", "NaN"), ("int", 3)]:
        response = mlflow_tracking.post(
            f"{API}/runs/log-metric",
            json={"run_id": run_id, "key": key, "value": value, "timestamp": 1, "step": 0},
        )
        assert response.status_code == 200, response.text
    metrics = {m["key"]: m["value"] for m in run_data(mlflow_tracking, run_id)["metrics"]}
    assert metrics == {"numeric_string": 1.5, "nan": "NaN", "int": 3}


@pytest.mark.parametrize(
    "path, body",
    [
        ("runs/log-parameter", {"key": "k" * 251, "value": "v"}),
        ("runs/set-tag", {"key": "k" * 251, "value": "v"}),
        ("runs/log-metric", {"key": "k" * 251, "value": 1.0, "timestamp": 1, "step": 0}),
        ("runs/log-batch", {"params": [{"key": "k" * 251, "value": "v"}]}),
    ],
    ids=["param", "tag", "metric", "batch-param"],
)
def test_over_long_key_is_invalid_parameter_value(mlflow_tracking, run_id, path, body):
    response = mlflow_tracking.post(f"{API}/{path}", json={"run_id": run_id, **body})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    data = run_data(mlflow_tracking, run_id)
    assert data.get("params", []) == [] and data.get("metrics", []) == []


def test_key_that_escapes_its_directory_is_invalid(mlflow_tracking, run_id):
    response = mlflow_tracking.post(
        f"{API}/runs/log-metric",
        json={"run_id": run_id, "key": "../x", "value": 1.0, "timestamp": 1, "step": 0},
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_changing_a_param_is_invalid_parameter_value(mlflow_tracking, run_id):
    url = f"{API}/runs/log-parameter"
    assert (
        mlflow_tracking.post(url, json={"run_id": run_id, "key": "p", "value": "a"}).status_code
        == 200
    )
    assert (
        mlflow_tracking.post(url, json={"run_id": run_id, "key": "p", "value": "a"}).status_code
        == 200
    )
    response = mlflow_tracking.post(url, json={"run_id": run_id, "key": "p", "value": "b"})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


# --- log-batch limits: all or nothing -----------------------------------------------------------


def metric(i: int) -> dict:
    return {"key": f"m{i}", "value": float(i), "timestamp": 1, "step": 0}


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [metric(i) for i in range(1001)]},
        {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
        {"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]},
        # Each list within its limit, 1,001 entries in all.
        {
            "metrics": [metric(i) for i in range(901)],
            "params": [{"key": f"p{i}", "value": "v"} for i in range(50)],
            "tags": [{"key": f"t{i}", "value": "v"} for i in range(50)],
        },
    ],
    ids=["1001-metrics", "101-params", "101-tags", "1001-in-all"],
)
def test_log_batch_over_limits_writes_nothing(mlflow_tracking, run_id, body):
    response = mlflow_tracking.post(f"{API}/runs/log-batch", json={"run_id": run_id, **body})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    data = run_data(mlflow_tracking, run_id)
    assert data.get("metrics", []) == []
    assert data.get("params", []) == []
    assert {t["key"] for t in data.get("tags", [])} <= {"mlflow.runName", "mlflow.user"}


def test_log_batch_at_the_limits_is_accepted(mlflow_tracking, run_id):
    body = {
        "run_id": run_id,
        "metrics": [metric(i) for i in range(800)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(100)],
        "tags": [{"key": f"t{i}", "value": "v"} for i in range(100)],
    }
    response = mlflow_tracking.post(f"{API}/runs/log-batch", json=body)
    assert response.status_code == 200, response.text[:500]
    data = run_data(mlflow_tracking, run_id)
    assert len(data["metrics"]) == 800 and len(data["params"]) == 100


def test_log_batch_with_a_changed_param_writes_nothing(mlflow_tracking, run_id):
    url = f"{API}/runs/log-batch"
    assert (
        mlflow_tracking.post(
            url, json={"run_id": run_id, "params": [{"key": "p", "value": "a"}]}
        ).status_code
        == 200
    )
    response = mlflow_tracking.post(
        url,
        json={"run_id": run_id, "metrics": [metric(1)], "params": [{"key": "p", "value": "b"}]},
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    data = run_data(mlflow_tracking, run_id)
    assert data.get("metrics", []) == []
    assert data["params"] == [{"key": "p", "value": "a"}]


# --- lifecycle, search and names ----------------------------------------------------------------


def test_writing_to_a_deleted_run_is_invalid_parameter_value(mlflow_tracking, client, run_id):
    client.delete_run(run_id)
    response = mlflow_tracking.post(
        f"{API}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1}
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    # A deleted run can still be read.
    assert mlflow_tracking.get(f"{API}/runs/get", params={"run_id": run_id}).status_code == 200


def test_creating_a_run_in_a_deleted_experiment_is_invalid_parameter_value(mlflow_tracking, client):
    experiment_id = client.create_experiment(unique("deleted"))
    client.delete_experiment(experiment_id)
    response = mlflow_tracking.post(f"{API}/runs/create", json={"experiment_id": experiment_id})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    "body",
    [
        {"filter": "metrics.acc >>> 1"},
        {"filter": "metrics.acc > 1 OR metrics.acc < 0"},
        {"filter": "params.p > 'a'"},
        {"filter": "nonsense.key = 'x'"},
        {"order_by": ["metrics.x SIDEWAYS"]},
        {"page_token": "garbage"},
        {"max_results": 50001},
    ],
    ids=[
        "comparator",
        "or",
        "param-comparator",
        "identifier",
        "order-by",
        "page-token",
        "max-results",
    ],
)
def test_bad_search_is_invalid_parameter_value(mlflow_tracking, experiment_id, body):
    response = mlflow_tracking.post(
        f"{API}/runs/search", json={"experiment_ids": [experiment_id], **body}
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_bad_filter_through_the_client(client, experiment_id):
    with pytest.raises(MlflowException) as excinfo:
        client.search_runs([experiment_id], "attributes.status LIKE")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as excinfo:
        client.search_experiments(filter_string="name >< 'x'")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")


def test_duplicate_experiment_name_is_resource_already_exists(mlflow_tracking, client):
    name = unique("dup")
    client.create_experiment(name)
    response = mlflow_tracking.post(f"{API}/experiments/create", json={"name": name})
    assert_rest_error(response, 400, "RESOURCE_ALREADY_EXISTS")
    with pytest.raises(MlflowException) as excinfo:
        client.create_experiment(name)
    assert_client_error(excinfo, "RESOURCE_ALREADY_EXISTS")


def test_renaming_onto_a_taken_name_is_400(mlflow_tracking, client):
    taken = unique("taken")
    client.create_experiment(taken)
    other = client.create_experiment(unique("rename-me"))
    response = mlflow_tracking.post(
        f"{API}/experiments/update", json={"experiment_id": other, "new_name": taken}
    )
    # MLflow lets the database's UNIQUE constraint fail and answers BAD_REQUEST with the SQL in
    # the message; RESOURCE_ALREADY_EXISTS (also 400) is what create answers and just as good.
    expected = (
        ("BAD_REQUEST",)
        if mlflow_tracking.reference
        else ("BAD_REQUEST", "RESOURCE_ALREADY_EXISTS")
    )
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] in expected, response.text
    assert client.get_experiment(other).name != taken
