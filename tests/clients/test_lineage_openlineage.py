"""OpenLineage ingest with the real `openlineage-python` client (HttpTransport): START, COMPLETE
and FAIL RunEvents with input and output datasets and a schema facet, then the lineage graph read
back from GET /api/v1/lineage (Marquez's shape), bad events refused with 400 naming the field,
and `keelson lineage show`. Both metadata backends.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest
import requests
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.uuid import generate_new_uuid

from conftest import REFERENCE_MLFLOW, keelson_bin

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own API")

PRODUCER = "https://github.com/keelson/keelson/tests/clients"
NAMESPACE = "keelson"


def client_for(server) -> OpenLineageClient:
    return OpenLineageClient(transport=HttpTransport(HttpConfig(url=server.url)))


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def orders_schema() -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name="order_id", type="Int64"),
            schema_dataset.SchemaDatasetFacetFields(name="amount", type="Float64"),
        ]
    )


def event(state: RunState, run_id: str, job: str, inputs: list[str], outputs: list[str]) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=now(),
        run=Run(runId=run_id),
        job=Job(namespace="etl", name=job),
        producer=PRODUCER,
        inputs=[InputDataset(namespace=NAMESPACE, name=name) for name in inputs],
        outputs=[OutputDataset(namespace=NAMESPACE, name=name, facets={"schema": orders_schema()}) for name in outputs],
    )


def graph(server, node_id: str, **params) -> list[dict]:
    response = server.get("/api/v1/lineage", params={"nodeId": node_id, **params})
    assert response.status_code == 200, response.text
    return response.json()["graph"]


def by_id(nodes: list[dict]) -> dict[str, dict]:
    return {node["id"]: node for node in nodes}


@pytest.fixture(scope="module")
def emitted(keelson_server):
    """clean_orders reads raw_orders and writes orders (START, COMPLETE); score_orders reads
    orders and fails."""
    client = client_for(keelson_server)
    clean_run = str(generate_new_uuid())
    client.emit(event(RunState.START, clean_run, "clean_orders", ["raw_orders"], []))
    client.emit(event(RunState.COMPLETE, clean_run, "clean_orders", ["raw_orders"], ["orders"]))
    failed_run = str(generate_new_uuid())
    client.emit(event(RunState.START, failed_run, "score_orders", ["orders"], []))
    client.emit(event(RunState.FAIL, failed_run, "score_orders", ["orders"], ["scores"]))
    return {"clean": clean_run, "failed": failed_run}


def test_the_graph_holds_the_client_events(keelson_server, emitted):
    nodes = by_id(graph(keelson_server, "dataset:keelson:orders", depth=20))
    assert set(nodes) == {
        "dataset:keelson:raw_orders",
        "job:etl:clean_orders",
        "dataset:keelson:orders",
        "job:etl:score_orders",
        "dataset:keelson:scores",
    }
    orders = nodes["dataset:keelson:orders"]
    assert orders["type"] == "DATASET"
    schema = orders["data"]["facets"]["schema"]
    assert [(f["name"], f["type"]) for f in schema["fields"]] == [("order_id", "Int64"), ("amount", "Float64")]
    assert schema["_producer"].startswith("https://github.com/OpenLineage/OpenLineage")  # the facet's producer: the client
    assert "SchemaDatasetFacet" in schema["_schemaURL"]
    assert orders["inEdges"] == [{"origin": "job:etl:clean_orders", "destination": "dataset:keelson:orders"}]
    assert orders["outEdges"] == [{"origin": "dataset:keelson:orders", "destination": "job:etl:score_orders"}]

    clean = nodes["job:etl:clean_orders"]
    assert clean["type"] == "JOB"
    assert clean["data"]["latestRun"]["runId"] == emitted["clean"]
    assert clean["data"]["latestRun"]["state"] == "COMPLETED"
    assert clean["inEdges"] == [{"origin": "dataset:keelson:raw_orders", "destination": "job:etl:clean_orders"}]
    failed = nodes["job:etl:score_orders"]
    assert failed["data"]["latestRun"]["runId"] == emitted["failed"]
    assert failed["data"]["latestRun"]["state"] == "FAILED"


def test_direction_and_depth(keelson_server, emitted):
    upstream = by_id(graph(keelson_server, "dataset:keelson:orders", direction="upstream"))
    assert set(upstream) == {"dataset:keelson:orders", "job:etl:clean_orders", "dataset:keelson:raw_orders"}
    downstream = by_id(graph(keelson_server, "dataset:keelson:orders", direction="downstream", depth=1))
    assert set(downstream) == {"dataset:keelson:orders", "job:etl:score_orders"}
    assert downstream["job:etl:score_orders"]["outEdges"] == []  # scores lies beyond depth 1


def test_unknown_nodes_and_bad_queries(keelson_server, emitted):
    response = keelson_server.get("/api/v1/lineage", params={"nodeId": "dataset:keelson:missing"})
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    for params in ({"nodeId": "dataset:keelson:orders", "depth": "1000"}, {"nodeId": "x", "direction": "sideways"}):
        response = keelson_server.get("/api/v1/lineage", params=params)
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def valid_body() -> dict:
    return {
        "eventType": "START",
        "eventTime": now(),
        "run": {"runId": str(generate_new_uuid())},
        "job": {"namespace": "etl", "name": "raw_job"},
        "inputs": [],
        "outputs": [],
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("run", "runId"), "not-a-uuid", "run.runId"),
        (("eventType",), "FINISHED", "eventType"),
        (("eventTime",), "yesterday", "eventTime"),
        (("job", "name"), None, "job.name"),
        (("producer",), "no scheme", "producer"),
    ],
)
def test_bad_events_are_refused_with_the_field_named(keelson_server, path, value, field):
    body = valid_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    response = keelson_server.post("/api/v1/lineage", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert f"`{field}`" in response.json()["message"]


def test_the_client_sees_a_refusal_as_an_http_error(keelson_server):
    # The client checks runId itself; an empty job name it sends as is.
    bad = event(RunState.START, str(generate_new_uuid()), "", [], [])
    with pytest.raises(requests.HTTPError) as caught:
        client_for(keelson_server).emit(bad)
    assert caught.value.response.status_code == 400
    assert "`job.name` must not be empty" in caught.value.response.json()["message"]


def test_cli_shows_the_graph(keelson_server, emitted):
    result = subprocess.run(
        [str(keelson_bin()), "lineage", "show", "dataset:keelson:orders", "--upstream", "--depth", "1",
         "--server", keelson_server.url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    nodes = by_id(json.loads(result.stdout)["graph"])
    assert set(nodes) == {"dataset:keelson:orders", "job:etl:clean_orders"}
    missing = subprocess.run(
        [str(keelson_bin()), "lineage", "show", "dataset:keelson:missing", "--server", keelson_server.url],
        capture_output=True, text=True, timeout=60,
    )
    assert missing.returncode == 1
    assert "RESOURCE_DOES_NOT_EXIST" in missing.stderr
