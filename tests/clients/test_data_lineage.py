"""Lineage of DataOps work: every ingest, recipe and validation records OpenLineage RunEvents, so
the graph API walks from a gold dataset back through its recipes to the raw source, and the PII
rule keeps tagged columns out of gold unless a recipe masks them. Recipes and ingests also run as
queue jobs (`data.recipe`, `data.ingest`), the form pipelines and workers use."""

from __future__ import annotations

import time

import pandas as pd

from data_helpers import api_error, ingest, ok, run_recipe, source_spec, validate, write_csv


def graph(server, node: str, direction: str) -> dict[str, dict]:
    body = ok(server.get("/api/v1/lineage", params={"nodeId": node, "direction": direction, "depth": 10}))
    return {n["id"]: n for n in body["graph"]}


def test_ingest_recipe_and_validation_are_in_the_lineage_graph(data_server):
    frame = pd.DataFrame({"id": [1, 2, 3], "email": ["a@x.io", "b@x.io", None], "amount": [1.5, 2.5, 4.0]})
    write_csv(frame, data_server.import_root / "lineage_raw.csv")
    raw = ok(ingest(data_server, "lin_raw", source_spec("lineage_raw.csv", "csv")))["version"]
    ok(data_server.request("PATCH", "/api/v1/datasets/lin_raw", json={"pii_columns": ["email"]}))
    recipe = {
        "version": 1, "name": "lin_clean", "inputs": {"raw": "lin_raw"},
        "output": {"dataset": "lin_silver", "layer": "silver"},
        "steps": [{"drop_missing": {"columns": ["email"]}}],
    }
    silver = ok(run_recipe(data_server, recipe))["version"]
    assert silver["inputs"] == [{"dataset": "lin_raw", "version": raw["version"]}]

    # Gold refuses the PII column until a recipe masks it.
    gold = {
        "version": 1, "name": "lin_gold", "inputs": {"silver": "lin_silver"},
        "output": {"dataset": "lin_gold", "layer": "gold"}, "steps": [{"select": ["id", "email", "amount"]}],
    }
    message = api_error(run_recipe(data_server, gold))
    assert "email" in message and "mask" in message, message
    assert data_server.get("/api/v1/datasets/lin_gold").status_code == 404
    gold["steps"].append({"mask": {"columns": ["email"], "method": "hash"}})
    gold_version = ok(run_recipe(data_server, gold))["version"]
    assert gold_version["masked_columns"] == ["email"]
    validate(data_server, "lin_gold", gold_version["version"], {"version": 1, "expectations": [
        {"type": "not_null", "column": "id"}]})

    upstream = graph(data_server, "dataset:keelson:lin_gold", "upstream")
    for node in ("job:keelson:lin_gold", "dataset:keelson:lin_silver", "job:keelson:lin_clean",
                 "dataset:keelson:lin_raw", "job:keelson:ingest.lin_raw"):
        assert node in upstream, (node, sorted(upstream))
    gold_node = upstream["dataset:keelson:lin_gold"]
    fields = [f["name"] for f in gold_node["data"]["facets"]["schema"]["fields"]]
    assert fields == ["id", "email", "amount"]
    assert "columnLineage" in gold_node["data"]["facets"]

    downstream = graph(data_server, "dataset:keelson:lin_raw", "downstream")
    assert "dataset:keelson:lin_gold" in downstream and "job:keelson:validate.lin_gold" in downstream

    # A refused run is recorded as a failed run of its job.
    failed = graph(data_server, "job:keelson:lin_gold", "both")["job:keelson:lin_gold"]
    assert failed["type"] == "JOB" and "latestRun" in failed["data"]


def wait_for_job(server, job_id: str, deadline_s: float = 60.0) -> dict:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        job = ok(server.get(f"/api/v1/jobs/{job_id}"))
        if job["status"] in ("succeeded", "dead", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish within {deadline_s} s")


def test_recipes_and_ingests_run_as_queue_jobs(data_server):
    frame = pd.DataFrame({"id": [3, 1, 2, 1], "amount": [1.0, 2.0, None, 2.0]})
    write_csv(frame, data_server.import_root / "job_raw.csv")
    ingest_job = ok(data_server.post("/api/v1/jobs", json={"kind": "data.ingest", "payload": {
        "dataset": "job_raw", "source": source_spec("job_raw.csv", "csv")}}), statuses=(201,))
    done = wait_for_job(data_server, ingest_job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["version"]["row_count"] == 4 and done["result"]["created"] is True

    recipe = {"version": 1, "name": "job_clean", "inputs": {"raw": "job_raw"},
              "output": {"dataset": "job_silver", "layer": "silver"},
              "steps": [{"deduplicate": {"columns": ["id"]}}, {"fill_missing": {"amount": {"value": 0}}}]}
    recipe_job = ok(data_server.post("/api/v1/jobs", json={"kind": "data.recipe", "payload": {"recipe": recipe}}),
                    statuses=(201,))
    done = wait_for_job(data_server, recipe_job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["version"]["row_count"] == 3
    assert done["result"]["version"]["inputs"] == [{"dataset": "job_raw", "version": 1}]
    rows = ok(data_server.get("/api/v1/datasets/job_silver/versions/latest/data"))
    assert rows["rows"] == [[3, 1.0], [1, 2.0], [2, 0.0]]

    # A user's mistake is not retried: the job is dead at once with the message.
    bad = ok(data_server.post("/api/v1/jobs", json={"kind": "data.recipe", "payload": {
        "recipe": {**recipe, "steps": [{"select": ["nope"]}]}}}), statuses=(201,))
    done = wait_for_job(data_server, bad["id"])
    assert done["status"] == "dead" and done["attempts"] == 1, done
    assert "nope" in done["last_error"], done
