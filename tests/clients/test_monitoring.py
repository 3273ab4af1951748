"""Keelson monitoring, end to end on both metadata backends: a regression model served on two
deployments with data collection on, one receiving traffic like the reference data and one
receiving traffic with two features shifted. Monitors over each deployment's collected traffic
must pass on the first and alert on exactly the shifted features on the second, fire a signed
webhook (received by a listener in this test), start the configured retraining job with the
alert as input, de-duplicate a repeat, measure performance once ground truth arrives (checked
against scikit-learn), publish drift scores on /metrics, and run on their schedule. Drift
reports between two datasets are checked against scipy. Bad specs get clear errors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats

from conftest import secret_canary, BACKENDS, REFERENCE_MLFLOW, start_server, stop_server
from data_helpers import ok, write_parquet
from serving_models import (
    _regression_data,
    _run_onnxruntime,
    api_error,
    build,
    create_endpoint,
    deploy,
    log_and_register,
    unique,
    wait_until,
)

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own monitoring API; not MLflow's")

SECRET = "hook-signing-value-4d1c"
# Names in Keelson's secret store; channels name them, never the values.
SECRET_NAME = "monitor-hook-key"
SMTP_PASSWORD = "mail-login-value-9e27"
SMTP_PASSWORD_NAME = "monitor-smtp-password"
FEATURES = ["f0", "f1", "f2", "f3", "f4"]
SHIFTED = ["f1", "f3"]
REFERENCE_ROWS = 600
CURRENT_ROWS = 200
BATCH = 10
DEPLOYMENT_HEADER = "x-keelson-deployment"
CORRELATION_HEADER = "x-keelson-correlation-id"


class Hook:
    """A loopback HTTP listener that records every POST (path, headers, body) and answers 200."""

    def __init__(self):
        self.received: list[tuple[str, dict, bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                hook.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def posts_to(self, path: str) -> list[tuple[dict, bytes]]:
        return [(headers, body) for p, headers, body in self.received if p == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hook():
    listener = Hook()
    yield listener
    listener.close()


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    """A keelson with an import root, a collector that flushes every 50 ms and a one-second monitor
    scheduler; MLFLOW_TRACKING_URI points at it for model logging. Channel secrets are stored
    through the API by the tests that need them (`store_secret`), not given to the process."""
    import mlflow

    workdir = tmp_path_factory.mktemp(f"keelson-monitor-{request.param}")
    import_root = workdir / "imports"
    import_root.mkdir()
    env = {
        "KEELSON_DATA__IMPORT_ROOT": str(import_root),
        "KEELSON_SERVING__COLLECTOR_FLUSH_MS": "50",
        "KEELSON_MONITORING__SCHEDULER_INTERVAL_SECONDS": "1",
    }
    server = start_server(workdir, request.param, env=env)
    server.import_root = import_root
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(server.url)
        try:
            yield server
        finally:
            mlflow.set_tracking_uri(previous)
            stop_server(server)


def store_secret(server, name: str, value: str) -> None:
    """Stores a channel secret with `PUT /api/v1/secrets/{name}`; the answer names it and never
    carries the value."""
    response = server.request("PUT", f"/api/v1/secrets/{name}", json={"value": secret_canary(value)})
    answer = ok(response)
    assert answer["secret"]["name"] == name, answer
    assert {"created", "updated"} <= set(answer["secret"]), answer
    assert value not in response.text, response.text


def reference_frame(seed: int, rows: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    """Rows distributed like the model's training data; `shift` moves features by that many of
    their standard deviations."""
    x, _, _ = _regression_data()
    mean, sd = x.mean(axis=0), x.std(axis=0)
    values = np.random.default_rng(seed).normal(mean, sd, size=(rows, len(FEATURES))).astype(np.float32)
    for name, sds in (shift or {}).items():
        index = FEATURES.index(name)
        values[:, index] += np.float32(sds * sd[index])
    return pd.DataFrame(values, columns=FEATURES)


def predict(model, frame: pd.DataFrame) -> np.ndarray:
    raw, names = _run_onnxruntime(model.onnx_model, {"input": frame[FEATURES].to_numpy(np.float32)})
    return np.asarray(raw[names[0]], dtype=np.float32).reshape(-1)


@pytest.fixture(scope="module")
def scenario(server):
    """The reference dataset, an endpoint with `calm` and `shifted` deployments of one model, the
    traffic each received (and its answers), and ground truth for `calm`'s traffic."""
    model = build("linreg")
    name = unique("mon-model")
    version = log_and_register(model, name)
    endpoint = unique("mon")
    create_endpoint(server, endpoint)
    for deployment in ("calm", "shifted"):
        deploy(server, endpoint, deployment, name, version, collect={"sample_rate": 1.0})

    reference = reference_frame(1, REFERENCE_ROWS)
    reference["variable"] = predict(model, reference)
    pq.write_table(pa.Table.from_pandas(reference, preserve_index=False), server.import_root / "reference.parquet")
    ok(server.post("/api/v1/datasets/mon-reference/ingest",
                   json={"source": {"kind": "file", "path": "reference.parquet"}}), (200, 201))

    traffic = {
        "calm": reference_frame(2, CURRENT_ROWS),
        # Seed 4: before the shift, no feature of this sample fails a 5% KS test against the
        # reference by chance (about one seed in four has such a false alarm in 5 features).
        "shifted": reference_frame(4, CURRENT_ROWS, {name: 1.5 for name in SHIFTED}),
    }
    answers: dict[str, list[tuple[str, np.ndarray]]] = {}
    with __import__("requests").Session() as session:
        for deployment, frame in traffic.items():
            answers[deployment] = []
            for start in range(0, len(frame), BATCH):
                rows = frame.iloc[start : start + BATCH][FEATURES].to_numpy(np.float32)
                correlation = f"{deployment}-{start}"
                response = session.post(
                    f"{server.url}/v2/models/{endpoint}/infer",
                    json={"inputs": [{"name": "input", "datatype": "FP32", "shape": list(rows.shape),
                                      "data": rows.reshape(-1).tolist()}]},
                    headers={DEPLOYMENT_HEADER: deployment, CORRELATION_HEADER: correlation},
                    timeout=30,
                )
                assert response.status_code == 200, response.text
                assert response.headers[DEPLOYMENT_HEADER] == deployment
                output = response.json()["outputs"][0]
                answers[deployment].append((correlation, np.asarray(output["data"], dtype=np.float32)))

    expected_records = 2 * CURRENT_ROWS // BATCH

    def collected() -> bool:
        body = ok(server.get(f"/api/v1/endpoints/{endpoint}/collected", params={"limit": 1000}))
        return len(body["records"]) >= expected_records

    wait_until(collected, timeout_s=30, what="the collector to write every request")

    # Ground truth for `calm`: the truth is the prediction plus seeded noise, so the error
    # metrics are known exactly from what we send.
    rng = np.random.default_rng(4)
    truth = {}
    labels = []
    for correlation, predicted in answers["calm"]:
        values = (predicted.astype(np.float64) + rng.normal(0, 5.0, size=predicted.size)).tolist()
        truth[correlation] = (values, predicted.astype(np.float64).tolist())
        labels.append({"correlation_id": correlation, "label": values})
    ok(server.post(f"/api/v1/endpoints/{endpoint}/ground-truth", json={"labels": labels}))
    return {"endpoint": endpoint, "traffic": traffic, "answers": answers, "truth": truth, "reference": reference}


def monitor_spec(name: str, endpoint: str, deployment: str, **extra) -> dict:
    spec = {
        "version": 1,
        "name": name,
        "source": {"endpoint": endpoint, "deployment": deployment},
        "reference": {"dataset": "mon-reference"},
        "features": {"input": FEATURES},
        "window": {"size": "1h"},
        "drift": {"options": {}},
    }
    spec.update(extra)
    return spec


def run(server, name: str) -> dict:
    return ok(server.post(f"/api/v1/monitors/{name}/run", json={}))


def test_calm_traffic_passes_and_performance_matches_sklearn(server, scenario):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    name = unique("calm")
    spec = monitor_spec(
        name, scenario["endpoint"], "calm",
        quality={"max_missing_share": 0.0, "max_out_of_range_share": 0.05, "max_error_rate": 0.0},
        performance={"task": "regression", "prediction": "variable",
                     "metrics": {"rmse": {"max": 1e6}, "mae": {"max": 1e6}, "r2": {"min": -1e6}}},
    )
    created = server.post("/api/v1/monitors", json=spec)
    assert created.status_code == 201, created.text
    assert created.json()["monitor"]["spec"]["reference"]["version"] == 1  # pinned at creation

    outcome = run(server, name)
    failed = [t for t in outcome["tests"] if not t["passed"]]
    assert failed == [], failed
    assert outcome["alerts"] == [] and outcome["triggered_job"] is None

    report = ok(server.get(f"/api/v1/monitoring/reports/{outcome['report']['id']}"))
    drift = report["drift"]
    by_column = {c["column"]: c for c in drift["columns"]}
    assert set(by_column) == set(FEATURES) | {"variable"}
    # 600 reference rows: Evidently's rules pick the KS test; the p-values equal scipy's.
    reference = scenario["reference"]
    current = scenario["traffic"]["calm"]
    for feature in FEATURES:
        column = by_column[feature]
        assert column["method"] == "ks"
        expected = stats.ks_2samp(reference[feature].astype(np.float64), current[feature].astype(np.float64))
        assert column["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)
        assert column["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert report["metrics"]["requests"] == CURRENT_ROWS // BATCH
    assert report["metrics"]["rows"] == CURRENT_ROWS

    pairs = [(t, p) for values, predicted in scenario["truth"].values() for t, p in zip(values, predicted)]
    truth, predicted = np.array([t for t, _ in pairs]), np.array([p for _, p in pairs])
    assert report["metrics"]["labelled_rows"] == CURRENT_ROWS
    assert report["metrics"]["rmse"] == pytest.approx(np.sqrt(mean_squared_error(truth, predicted)), rel=1e-9)
    assert report["metrics"]["mae"] == pytest.approx(mean_absolute_error(truth, predicted), rel=1e-9)
    assert report["metrics"]["r2"] == pytest.approx(r2_score(truth, predicted), rel=1e-9)

    # A bound the model misses fails its test, and the test names the metric.
    spec["performance"]["metrics"]["rmse"] = {"max": 1.0}
    ok(server.request("PUT", f"/api/v1/monitors/{name}", json=spec))
    outcome = run(server, name)
    assert [t["rule"] for t in outcome["tests"] if not t["passed"]] == ["performance:rmse"]
    assert [a["rule"] for a in outcome["alerts"]] == ["performance:rmse"]


def test_shifted_features_alert_notify_and_trigger_retraining(server, scenario, hook):
    name = unique("shifted")
    store_secret(server, SECRET_NAME, SECRET)
    recipe = {"version": 1, "name": "retrain-input", "inputs": {"ref": "mon-reference"},
              "output": {"dataset": "mon-retrain-input", "layer": "bronze"}, "steps": [{"select": FEATURES}]}
    spec = monitor_spec(
        name, scenario["endpoint"], "shifted",
        drift={"options": {"drift_share": 0.9}},
        alerts={
            "severity": "critical",
            "cooldown": "1h",
            "channels": [{"type": "webhook", "url": f"{hook.url}/{name}", "secret": SECRET_NAME},
                         {"type": "slack", "url": f"{hook.url}/{name}-slack"}],
            "trigger": {"job": "data.recipe", "payload": {"recipe": recipe}},
        },
    )
    ok(server.post("/api/v1/monitors", json=spec), (201,))
    outcome = run(server, name)

    failed = sorted(t["rule"] for t in outcome["tests"] if not t["passed"])
    reference, current = scenario["reference"], scenario["traffic"]["shifted"]
    for feature in FEATURES:
        p_value = stats.ks_2samp(reference[feature].astype(np.float64), current[feature].astype(np.float64)).pvalue
        assert (p_value <= 0.05) == (feature in SHIFTED), (feature, p_value)
    data_drift = [rule for rule in failed if rule.startswith("data_drift:")]
    assert data_drift == [f"data_drift:{f}" for f in SHIFTED], failed
    # The model's output moves with its inputs; that is prediction drift, reported as such.
    assert "prediction_drift:variable" in failed
    assert "dataset_drift" not in failed  # 3 of 6 columns is below the 0.9 share
    assert sorted(a["rule"] for a in outcome["alerts"]) == failed
    assert all(a["severity"] == "critical" and a["occurrences"] == 1 for a in outcome["alerts"])

    # Every alert links to the report that fired it.
    report_id = outcome["report"]["id"]
    assert {a["report_id"] for a in outcome["alerts"]} == {report_id}

    # One signed webhook POST for the run, listing the alerts.
    posts = hook.posts_to(f"/{name}")
    assert len(posts) == 1, posts
    headers, body = posts[0]
    timestamp = headers["x-keelson-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["x-keelson-signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["type"] == "keelson.alert" and payload["monitor"] == name
    assert payload["severity"] == "critical"
    assert sorted(a["rule"] for a in payload["details"]["alerts"]) == failed
    assert payload["report"].endswith(report_id)
    slack = hook.posts_to(f"/{name}-slack")
    assert len(slack) == 1 and "text" in json.loads(slack[0][1]) and "blocks" in json.loads(slack[0][1])
    assert all(n["ok"] for n in outcome["notifications"]), outcome["notifications"]

    # The trigger started the retraining job with the alert as input, and a worker ran it.
    job_id = outcome["triggered_job"]
    assert job_id

    def finished():
        job = ok(server.get(f"/api/v1/jobs/{job_id}"))
        return job if job["status"] in ("succeeded", "failed", "dead") else None

    job = wait_until(finished, timeout_s=60, what="the retraining job")
    assert job["status"] == "succeeded", job
    assert job["kind"] == "data.recipe"
    assert job["payload"]["alert"]["monitor"] == name
    assert job["payload"]["alert"]["report_id"] == report_id
    assert ok(server.get("/api/v1/datasets/mon-retrain-input/versions"))["versions"]

    # A second run: the same alerts again, counted, without a second notification or trigger.
    again = run(server, name)
    assert sorted(a["rule"] for a in again["alerts"]) == failed
    assert all(a["occurrences"] == 2 for a in again["alerts"])
    assert {a["id"] for a in again["alerts"]} == {a["id"] for a in outcome["alerts"]}
    assert again["notifications"] == [] and again["triggered_job"] is None
    assert len(hook.posts_to(f"/{name}")) == 1
    firing = ok(server.get("/api/v1/monitoring/alerts", params={"monitor": name, "status": "firing"}))["alerts"]
    assert sorted(a["rule"] for a in firing) == failed

    # The HTML report is one self-contained page with a chart per column.
    html = server.get(f"/api/v1/monitoring/reports/{report_id}/html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.text.count("<svg") == len(FEATURES) + 1
    assert "<script" not in html.text and "http" not in html.text.split("<body>")[1].split("Reference:")[0]

    # /metrics carries the latest drift scores and the firing alerts.
    report = ok(server.get(f"/api/v1/monitoring/reports/{again['report']['id']}"))
    scores = {c["column"]: c["score"] for c in report["drift"]["columns"]}
    text = server.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    published = {
        s.labels["column"]: s.value
        for s in families["keelson_monitor_drift_score"].samples
        if s.labels["monitor"] == name
    }
    assert published == pytest.approx(scores, rel=1e-12)
    firing_gauge = [s.value for s in families["keelson_monitor_alerts_firing"].samples if s.labels["monitor"] == name]
    assert firing_gauge == [len(failed)]


def test_a_scheduled_monitor_runs_by_itself(server, scenario):
    name = unique("scheduled")
    ok(server.post("/api/v1/monitors", json=monitor_spec(name, scenario["endpoint"], "calm", schedule={"every": "1s"})),
       (201,))

    def reports():
        found = ok(server.get("/api/v1/monitoring/reports", params={"monitor": name}))["reports"]
        return found if len(found) >= 2 else None

    found = wait_until(reports, timeout_s=30, what="two scheduled runs")
    assert all(r["monitor"] == name for r in found)
    monitor = ok(server.get(f"/api/v1/monitors/{name}"))["monitor"]
    assert monitor["last_report"] and monitor["last_error"] is None
    ok(server.request("DELETE", f"/api/v1/monitors/{name}"))
    api_error(server.get(f"/api/v1/monitors/{name}"), (404,), "RESOURCE_DOES_NOT_EXIST")


def ingest_frame(server, name: str, frame: pd.DataFrame, dtypes: dict[str, str]) -> int:
    write_parquet(frame, server.import_root / f"{name}.parquet", dtypes)
    body = ok(server.post(f"/api/v1/datasets/{name}/ingest",
                          json={"source": {"kind": "file", "path": f"{name}.parquet"}}), (200, 201))
    return body["version"]["version"]


def compare(server, reference: str, current: str, options: dict | None = None) -> tuple[dict, dict]:
    response = server.post("/api/v1/monitoring/reports", json={
        "reference": {"dataset": reference}, "current": {"dataset": current}, "options": options or {}})
    assert response.status_code == 201, response.text
    return {c["column"]: c for c in response.json()["report"]["drift"]["columns"]}, response.json()["report"]


def test_dataset_reports_match_scipy_and_edge_cases_are_not_computable(server):
    rng = np.random.default_rng(11)
    n_ref, n_cur = 800, 700

    def frame(n: int, shift: float) -> pd.DataFrame:
        noisy = rng.normal(shift, 1, n)
        noisy[:5] = [np.nan, np.inf, -np.inf, np.nan, 1.0]
        return pd.DataFrame({
            "x": rng.normal(shift, 1, n),
            "noisy": noisy,
            "empty": np.full(n, np.nan),
            "constant": np.full(n, 3.0),
            "colour": pd.array(rng.choice(["red", "green", "blue", "teal"], n, p=[0.4, 0.3, 0.2, 0.1]), dtype="str"),
        })

    dtypes = {"x": "float64", "noisy": "float64", "empty": "float64", "constant": "float64", "colour": "string"}
    reference, current = frame(n_ref, 0.0), frame(n_cur, 0.3)
    ingest_frame(server, "drift-ref", reference, dtypes)
    ingest_frame(server, "drift-cur", current, dtypes)
    columns, report = compare(server, "drift-ref", "drift-cur",
                              {"per_column": {"constant": {"method": "t_test"}}})

    x = columns["x"]
    assert x["method"] == "ks" and x["drifted"]
    assert x["p_value"] == pytest.approx(stats.ks_2samp(reference["x"], current["x"]).pvalue, rel=1e-9)

    noisy = columns["noisy"]
    finite = lambda s: s[np.isfinite(s)]  # noqa: E731 (Evidently drops NaN and infinities)
    assert noisy["p_value"] == pytest.approx(
        stats.ks_2samp(finite(reference["noisy"]), finite(current["noisy"])).pvalue, rel=1e-9)
    # pyarrow writes pandas' NaN as null; the infinities stay and count as missing too.
    assert (noisy["current"]["nulls"] + noisy["current"]["nans"], noisy["current"]["infinities"]) == (2, 2)
    assert noisy["current"]["missing"] == 4

    assert columns["empty"]["score"] is None and "no values" in columns["empty"]["not_computable"]
    assert columns["constant"]["score"] is None and columns["constant"]["not_computable"]
    assert not columns["empty"]["drifted"] and not columns["constant"]["drifted"]

    colour = columns["colour"]
    assert colour["method"] == "chisquare"
    categories = ["blue", "green", "red", "teal"]
    ref_counts = reference["colour"].value_counts().reindex(categories).to_numpy(np.float64)
    cur_counts = current["colour"].value_counts().reindex(categories).to_numpy(np.float64)
    expected = stats.chisquare(cur_counts, ref_counts / ref_counts.sum() * cur_counts.sum())
    assert colour["statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert colour["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)

    drift = report["drift"]
    assert drift["compared"] == 3 and drift["drifted"] == sum(c["drifted"] for c in columns.values())

    # Above 1,000 reference rows Evidently's rules pick the normed Wasserstein distance.
    big_ref = pd.DataFrame({"x": rng.normal(0, 2, 5000)})
    big_cur = pd.DataFrame({"x": rng.normal(0.5, 2, 3000)})
    ingest_frame(server, "big-ref", big_ref, {"x": "float64"})
    ingest_frame(server, "big-cur", big_cur, {"x": "float64"})
    columns, _ = compare(server, "big-ref", "big-cur")
    expected = stats.wasserstein_distance(big_ref["x"], big_cur["x"]) / np.std(big_ref["x"])
    assert columns["x"]["method"] == "wasserstein"
    assert columns["x"]["score"] == pytest.approx(expected, rel=1e-9)
    assert columns["x"]["drifted"] == (expected >= 0.1)


def test_bad_monitor_specs_and_requests_get_clear_errors(server, scenario):
    good = monitor_spec(unique("bad"), scenario["endpoint"], "calm")
    cases = [
        ({**good, "version": 2}, "`version` must be 1"),
        ({**good, "window": {"size": "soon"}}, "window.size"),
        ({**good, "source": {}}, "exactly one of"),
        ({**good, "quality": {"max_missing_share": 3}}, "quality.max_missing_share"),
        ({**good, "drift": {"options": {"per_column": {"f0": {"method": "magic"}}}}}, "magic"),
        ({**good, "colour": "red"}, "colour"),
        ({**good, "alerts": {"trigger": {"job": "no.such.kind"}}}, "no.such.kind"),
        ({**good, "alerts": {"channels": [{"type": "webhook", "url": "ftp://x"}]}}, "alerts.channels[0]"),
        # Channels name secrets in the store; fields that named a server environment variable
        # would hand its value to whoever wrote the spec.
        ({**good, "alerts": {"channels": [{"type": "webhook", "url": "https://x.example", "secret_env": "PATH"}]}},
         "`secret_env` is no longer supported"),
        ({**good, "alerts": {"channels": [{"type": "email", "smtp_host": "smtp.example.com", "username": "u",
                                           "password_env": "PATH", "from": "a@example.com",
                                           "to": ["b@example.com"]}]}},
         "`password_env` is no longer supported"),
    ]
    for spec, fragment in cases:
        body = api_error(server.post("/api/v1/monitors", json=spec), (400,), "INVALID_PARAMETER_VALUE")
        assert fragment in body["message"], (fragment, body["message"])
    missing = {**good, "reference": {"dataset": "no-such-dataset"}}
    api_error(server.post("/api/v1/monitors", json=missing), (404,), "RESOURCE_DOES_NOT_EXIST")
    api_error(server.post("/api/v1/monitors", data=b"{not json", headers={"content-type": "application/json"}),
              (400,), "MALFORMED_REQUEST")
    yaml_spec = f"version: 1\nname: {unique('yaml')}\nsource: {{endpoint: {scenario['endpoint']}}}\n" \
                "reference: {dataset: mon-reference}\nquality: {max_missing_share: 0.5}\n"
    created = server.post("/api/v1/monitors", data=yaml_spec.encode(), headers={"content-type": "application/yaml"})
    assert created.status_code == 201, created.text
    api_error(server.post("/api/v1/monitors", data=yaml_spec.encode(), headers={"content-type": "application/yaml"}),
              (400,), "RESOURCE_ALREADY_EXISTS")
    api_error(server.post("/api/v1/monitors/no-such/run", json={}), (404,), "RESOURCE_DOES_NOT_EXIST")
    yaml_name = yaml_spec.split("name: ")[1].split("\n")[0]
    body = api_error(server.post(f"/api/v1/monitors/{yaml_name}/run", json={"at": "yesterday"}), (400,),
                     "INVALID_PARAMETER_VALUE")
    assert "RFC 3339" in body["message"]
    api_error(server.get("/api/v1/monitoring/reports/nope"), (404,), "RESOURCE_DOES_NOT_EXIST")
    api_error(server.get("/api/v1/monitoring/alerts", params={"status": "open"}), (400,), "INVALID_PARAMETER_VALUE")
    api_error(server.post("/api/v1/monitoring/reports", json={
        "reference": {"dataset": "mon-reference"}, "current": {"dataset": "mon-reference"},
        "options": {"columns": ["nope"]}}), (400,), "INVALID_PARAMETER_VALUE")


def test_cli_report_gates_on_drift_and_writes_the_html(server, tmp_path):
    import os
    import subprocess

    from conftest import keelson_bin

    rng = np.random.default_rng(21)
    ingest_frame(server, "cli-ref", pd.DataFrame({"x": rng.normal(0, 1, 500)}), {"x": "float64"})
    ingest_frame(server, "cli-same", pd.DataFrame({"x": rng.normal(0, 1, 500)}), {"x": "float64"})
    ingest_frame(server, "cli-moved", pd.DataFrame({"x": rng.normal(1, 1, 500)}), {"x": "float64"})
    env = {**os.environ, "KEELSON_SERVER_URL": server.url}

    def report(current: str, *extra: str) -> subprocess.CompletedProcess:
        argv = [str(keelson_bin()), "monitor", "report", "--reference", "cli-ref:1", "--current", current, *extra]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    html = tmp_path / "report.html"
    moved = report("cli-moved", "--fail-on-drift", "--html", str(html))
    assert moved.returncode == 3, (moved.stdout, moved.stderr)
    assert "DATASET DRIFT" in moved.stdout and "DRIFT" in moved.stdout.splitlines()[1]
    assert html.read_text().startswith("<!DOCTYPE html>")
    same = report("cli-same", "--fail-on-drift")
    assert same.returncode == 0, (same.stdout, same.stderr)
    assert "no dataset drift" in same.stdout
    missing = report("no-such-dataset")
    assert missing.returncode == 1 and "RESOURCE_DOES_NOT_EXIST" in missing.stderr
    bad = report("cli-same:zero")
    assert bad.returncode == 1 and "positive number" in bad.stderr


def test_dataset_monitor_with_genai_scores_and_safety_flags(server):
    """A monitor over a dataset's newest version, e.g. the judged sample of a GenAI deployment's
    traffic: bounds on the mean evaluation score and on the share of safety-flagged answers."""
    rng = np.random.default_rng(31)

    def evaluations(rows: int, score_mean: float, flag_share: float) -> pd.DataFrame:
        return pd.DataFrame({
            "groundedness": np.clip(np.round(rng.normal(score_mean, 0.7, rows)), 1, 5),
            "flagged": rng.random(rows) < flag_share,
        })

    dtypes = {"groundedness": "float64", "flagged": "bool"}
    ingest_frame(server, "evals-reference", evaluations(400, 4.3, 0.01), dtypes)
    good = evaluations(300, 4.3, 0.01)
    ingest_frame(server, "evals-latest", good, dtypes)
    name = unique("genai")
    spec = {
        "version": 1, "name": name,
        "source": {"dataset": "evals-latest"}, "reference": {"dataset": "evals-reference"},
        "scores": {"groundedness": {"mean": {"min": 4.0}}, "flagged": {"rate": {"max": 0.05}}},
    }
    ok(server.post("/api/v1/monitors", json=spec), (201,))
    outcome = run(server, name)
    values = {t["rule"]: t["value"] for t in outcome["tests"]}
    assert values["scores:groundedness:mean"] == pytest.approx(good["groundedness"].mean(), rel=1e-12)
    assert values["scores:flagged:rate"] == pytest.approx(good["flagged"].mean(), rel=1e-12)
    assert all(t["passed"] for t in outcome["tests"]), outcome["tests"]

    bad = evaluations(300, 3.4, 0.12)
    ingest_frame(server, "evals-latest", bad, dtypes)  # a new newest version
    outcome = run(server, name)
    failed = {t["rule"]: t["value"] for t in outcome["tests"] if not t["passed"]}
    assert failed == pytest.approx({"scores:groundedness:mean": bad["groundedness"].mean(),
                                    "scores:flagged:rate": bad["flagged"].mean()}, rel=1e-12)
    report = ok(server.get(f"/api/v1/monitoring/reports/{outcome['report']['id']}"))
    assert report["current"] == {"dataset": "evals-latest", "version": 2}
    # Both columns are also compared for drift against the reference (defaults: ≤1000 rows).
    methods = {c["column"]: c["method"] for c in report["drift"]["columns"]}
    assert methods == {"groundedness": "chisquare", "flagged": "z"}


def test_classifier_performance_auc_and_label_free_estimate_match_sklearn(server):
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    model = build("logreg")
    name = unique("mon-clf")
    version = log_and_register(model, name)
    endpoint = unique("clf")
    create_endpoint(server, endpoint)
    deploy(server, endpoint, "blue", name, version, collect={"sample_rate": 1.0})
    rows = model.inputs["input"]
    reference = pd.DataFrame(rows.astype(np.float64), columns=[f"x{i}" for i in range(rows.shape[1])])
    pq.write_table(pa.Table.from_pandas(reference, preserve_index=False), server.import_root / "clf-ref.parquet")
    ok(server.post("/api/v1/datasets/clf-reference/ingest",
                   json={"source": {"kind": "file", "path": "clf-ref.parquet"}}), (200, 201))

    rng = np.random.default_rng(41)
    predicted, probabilities, truths = [], [], []
    labels = []
    for start in range(0, len(rows), 8):
        batch = rows[start : start + 8]
        correlation = f"clf-{start}"
        response = server.post(
            f"/v2/models/{endpoint}/infer",
            json={"inputs": [{"name": "input", "datatype": "FP32", "shape": list(batch.shape),
                              "data": batch.reshape(-1).tolist()}]},
            headers={CORRELATION_HEADER: correlation},
        )
        assert response.status_code == 200, response.text
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        label = np.asarray(outputs[model.label_output]["data"], dtype=np.int64)
        probability = np.asarray(outputs[model.probability_output]["data"], dtype=np.float64).reshape(len(batch), -1)
        # The truth: the prediction, with about a quarter of the labels moved to another class.
        truth = np.where(rng.random(len(batch)) < 0.25, (label + rng.integers(1, 3, len(batch))) % 3, label)
        predicted.extend(label.tolist())
        probabilities.extend(probability.tolist())
        truths.extend(truth.tolist())
        labels.append({"correlation_id": correlation, "label": truth.tolist()})
    ok(server.post(f"/api/v1/endpoints/{endpoint}/ground-truth", json={"labels": labels}))

    def collected() -> bool:
        body = ok(server.get(f"/api/v1/endpoints/{endpoint}/collected", params={"limit": 1000}))
        return len(body["records"]) >= len(labels)

    wait_until(collected, timeout_s=30, what="the collector to write every request")
    monitor = unique("clf")
    spec = {
        "version": 1, "name": monitor, "source": {"endpoint": endpoint},
        "reference": {"dataset": "clf-reference"},
        "features": {"input": list(reference.columns)},
        "performance": {
            "task": "classification", "prediction": model.label_output, "probability": model.probability_output,
            "classes": [0, 1, 2],
            "metrics": {"accuracy": {"min": 0.9}, "f1": {"min": 0.0}, "auc": {"min": 0.0},
                        "estimated_accuracy": {"min": 0.5}},
        },
    }
    ok(server.post("/api/v1/monitors", json=spec), (201,))
    outcome = run(server, monitor)
    report = ok(server.get(f"/api/v1/monitoring/reports/{outcome['report']['id']}"))
    metrics = report["metrics"]
    truths, predicted, probabilities = np.array(truths), np.array(predicted), np.array(probabilities)
    assert metrics["labelled_rows"] == len(truths)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truths, predicted), rel=1e-12)
    for metric, reference_metric in [("precision", precision_score), ("recall", recall_score), ("f1", f1_score)]:
        assert metrics[metric] == pytest.approx(reference_metric(truths, predicted, average="macro", zero_division=0),
                                                rel=1e-12), metric
    assert metrics["auc"] == pytest.approx(roc_auc_score(truths, probabilities, multi_class="ovr"), rel=1e-9)
    assert metrics["estimated_accuracy"] == pytest.approx(probabilities.max(axis=1).mean(), rel=1e-6)
    tests = {t["rule"]: t for t in outcome["tests"]}
    assert tests["performance:estimated_accuracy"]["estimated"] is True
    assert tests["performance:accuracy"]["passed"] is False  # about 75% right, below the 0.9 bound


def test_alerts_are_mailed_through_a_real_smtp_server(server, scenario):
    """aiosmtpd (a real SMTP server) on loopback, with AUTH: the alert arrives as a mail to each
    recipient, from the configured sender, naming the monitor and the failed rules."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    received = []

    class Handler:
        async def handle_DATA(self, smtp_server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            received.append(envelope)
            return "250 OK"

    logins = []

    def authenticate(smtp_server, session, envelope, mechanism, auth_data):
        ok_login = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"keelson", SMTP_PASSWORD.encode())
        logins.append((mechanism, ok_login))
        return AuthResult(success=ok_login)

    from conftest import free_port

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        name = unique("mailed")
        store_secret(server, SMTP_PASSWORD_NAME, SMTP_PASSWORD)
        channel = {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": port, "security": "none",
                   "username": "keelson", "password_secret": SMTP_PASSWORD_NAME,
                   "from": "keelson@example.com", "to": ["oncall@example.com", "ml@example.com"]}
        spec = monitor_spec(name, scenario["endpoint"], "shifted", alerts={"channels": [channel]})
        ok(server.post("/api/v1/monitors", json=spec), (201,))
        outcome = run(server, name)
        assert [n["ok"] for n in outcome["notifications"]] == [True], outcome["notifications"]
    finally:
        controller.stop()
    assert logins and all(success for _, success in logins), logins
    assert len(received) == 1
    envelope = received[0]
    assert envelope.mail_from == "keelson@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "ml@example.com"]
    import email
    from email import policy

    message = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert name in message["Subject"]
    body = message.get_body().get_content()
    for rule in (f"data_drift:{f}" for f in SHIFTED):
        assert rule in body, body


def test_type_errors_in_a_numeric_column_fail_the_quality_bar(server):
    rng = np.random.default_rng(51)
    reference = pd.DataFrame({"amount": rng.normal(100, 10, 300)})
    ingest_frame(server, "typed-ref", reference, {"amount": "float64"})
    amounts = [f"{v:.2f}" for v in rng.normal(100, 10, 200)]
    for index in range(0, 200, 20):  # 10 of 200 arrive as text that is not a number
        amounts[index] = "n/a"
    current = pd.DataFrame({"amount": pd.array(amounts, dtype="str")})
    ingest_frame(server, "typed-cur", current, {"amount": "string"})
    name = unique("typed")
    spec = {"version": 1, "name": name, "source": {"dataset": "typed-cur"}, "reference": {"dataset": "typed-ref"},
            "quality": {"max_type_error_share": 0.01, "max_missing_share": 0.0}, "drift": {"options": {}}}
    ok(server.post("/api/v1/monitors", json=spec), (201,))
    outcome = run(server, name)
    tests = {t["rule"]: t for t in outcome["tests"]}
    assert tests["quality:type_errors:amount"]["value"] == pytest.approx(10 / 200)
    assert not tests["quality:type_errors:amount"]["passed"]
    assert tests["quality:missing:amount"]["passed"]
    # The 190 numbers are still compared with the reference (KS, as scipy computes it).
    drift = tests["data_drift:amount"]
    numbers = pd.to_numeric(current["amount"], errors="coerce").dropna()
    assert drift["value"] == pytest.approx(stats.ks_2samp(reference["amount"], numbers).pvalue, rel=1e-9)
