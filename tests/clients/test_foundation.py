"""The server's foundation over real HTTP: health, request ids, the error shape, body limits,
the jobs API and Prometheus metrics. Clients: `requests` and `prometheus_client`'s text parser."""

from __future__ import annotations

import http.client
import json
import select
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

JOB_FIELDS = {
    "id",
    "kind",
    "payload",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "run_at",
    "created_at",
    "updated_at",
    "finished_at",
    "last_error",
    "result",
}
JOB_WAIT_S = 30.0
DEFAULT_BODY_LIMIT = 16 * 1024 * 1024


def assert_error(response, status: int, error_code: str) -> dict:
    """The error shape every failure shares: JSON with `error_code` and a non-empty `message`."""
    assert response.status_code == status, response.text[:1000]
    assert response.headers.get("content-type", "").startswith("application/json")
    body = response.json()
    assert body.get("error_code") == error_code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


def create_job(server, body: dict) -> dict:
    response = server.post("/api/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def wait_for_status(server, job_id: str, wanted: str) -> dict:
    deadline = time.monotonic() + JOB_WAIT_S
    job: dict = {}
    while time.monotonic() < deadline:
        response = server.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] == wanted:
            return job
        if job["status"] in ("dead", "cancelled"):
            break
        time.sleep(0.1)
    pytest.fail(f"job {job_id} did not reach {wanted!r} within {JOB_WAIT_S:.0f} s: {job}")


# --- health -------------------------------------------------------------------------------------


def test_live(keelson_server):
    response = keelson_server.get("/health/live")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


def test_ready_reports_each_dependency(keelson_server):
    response = keelson_server.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["metadata"] == "ok"
    assert body["checks"]["artifacts"] == "ok"
    assert all(value == "ok" for value in body["checks"].values()), body


# --- request ids --------------------------------------------------------------------------------


def test_every_response_carries_a_request_id(keelson_server):
    responses = [
        keelson_server.get("/health/live"),
        keelson_server.get("/health/ready"),
        keelson_server.get("/metrics"),
        keelson_server.get("/no/such/route"),
        keelson_server.request("DELETE", "/health/live"),
        keelson_server.post("/api/v1/jobs", json={"kind": "Bad Kind"}),
        keelson_server.get("/api/v1/jobs"),
    ]
    ids = []
    for response in responses:
        request_id = response.headers.get("x-request-id")
        assert request_id, f"{response.request.method} {response.url}: no x-request-id"
        ids.append(request_id)
    assert len(set(ids)) == len(ids), f"request ids repeat: {ids}"


def test_request_id_is_echoed(keelson_server):
    response = keelson_server.get("/health/live", headers={"x-request-id": "abc-123"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc-123"


# --- errors -------------------------------------------------------------------------------------


def test_unknown_route_is_404_endpoint_not_found(keelson_server):
    response = keelson_server.get("/no/such/route")
    body = assert_error(response, 404, "ENDPOINT_NOT_FOUND")
    assert set(body) == {"error_code", "message"}


def test_wrong_method_is_405(keelson_server):
    response = keelson_server.request("DELETE", "/health/live")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


def test_malformed_json_is_400(keelson_server):
    response = keelson_server.post(
        "/api/v1/jobs", data=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "MALFORMED_REQUEST")


def test_invalid_job_kind_is_400_naming_the_value(keelson_server):
    response = keelson_server.post("/api/v1/jobs", json={"kind": "Bad Kind"})
    body = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert "Bad Kind" in body["message"]


def post_oversized(server, path: str, size: int) -> tuple[int, dict[str, str], bytes]:
    """POST `size` bytes of JSON, stopping as soon as the server answers.

    A server may reject on Content-Length before reading, or part-way through the body, and then
    close the connection; `requests` would report that as a connection error. So send with
    http.client in chunks, watch for an early answer, and read it.
    """
    head = b'{"kind":"system.noop","payload":{"blob":"'
    tail = b'"}}'
    filler = size - len(head) - len(tail)
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", path)
        conn.putheader("content-type", "application/json")
        conn.putheader("content-length", str(size))
        conn.endheaders()
        chunk = 256 * 1024
        try:
            conn.send(head)
            sent = 0
            while sent < filler:
                readable, _, _ = select.select([conn.sock], [], [], 0)
                if readable:
                    break  # the server answered early
                n = min(chunk, filler - sent)
                conn.send(b"x" * n)
                sent += n
            else:
                conn.send(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed after answering; the answer is still in our buffer
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


def test_oversized_body_is_413(keelson_server):
    status, headers, body = post_oversized(keelson_server, "/api/v1/jobs", 17 * 1024 * 1024)
    assert status == 413, body[:1000]
    assert headers.get("content-type", "").startswith("application/json")
    parsed = json.loads(body)
    assert parsed.get("error_code") == "PAYLOAD_TOO_LARGE", parsed
    assert isinstance(parsed.get("message"), str) and parsed["message"]
    # The server is still healthy afterwards.
    assert keelson_server.get("/health/live").status_code == 200


# --- jobs ---------------------------------------------------------------------------------------


def test_job_runs_to_success(keelson_server):
    job = create_job(keelson_server, {"kind": "system.noop", "payload": {"x": 1}})
    assert JOB_FIELDS <= set(job), f"missing fields: {JOB_FIELDS - set(job)}"
    assert job["kind"] == "system.noop"
    assert job["payload"] == {"x": 1}
    assert job["status"] in ("queued", "running", "succeeded")
    assert isinstance(job["id"], str) and job["id"]
    assert isinstance(job["priority"], int)
    assert isinstance(job["attempts"], int) and isinstance(job["max_attempts"], int)
    assert job["max_attempts"] >= 1

    fetched = keelson_server.get(f"/api/v1/jobs/{job['id']}")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["id"] == job["id"]
    assert fetched.json()["payload"] == {"x": 1}

    done = wait_for_status(keelson_server, job["id"], "succeeded")
    assert done["finished_at"] is not None
    assert done["last_error"] is None
    assert done["attempts"] >= 1


def test_missing_job_is_404(keelson_server):
    response = keelson_server.get("/api/v1/jobs/does-not-exist")
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_job_kind_is_400(keelson_server):
    response = keelson_server.post("/api/v1/jobs", json={"kind": "no.such.kind"})
    body = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert "no.such.kind" in body["message"]


def test_list_jobs_filters_and_limits(keelson_server):
    marker = uuid.uuid4().hex
    job = create_job(keelson_server, {"kind": "system.noop", "payload": {"marker": marker}})
    wait_for_status(keelson_server, job["id"], "succeeded")

    response = keelson_server.get("/api/v1/jobs", params={"status": "succeeded", "limit": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "jobs" in body and "next_page_token" in body, body
    assert len(body["jobs"]) == 1
    assert all(j["status"] == "succeeded" for j in body["jobs"])
    assert JOB_FIELDS <= set(body["jobs"][0])


def test_list_jobs_pages_with_next_page_token(keelson_server):
    for _ in range(2):
        job = create_job(keelson_server, {"kind": "system.noop", "payload": {}})
        wait_for_status(keelson_server, job["id"], "succeeded")

    first = keelson_server.get("/api/v1/jobs", params={"status": "succeeded", "limit": 1}).json()
    token = first["next_page_token"]
    assert isinstance(token, str) and token, first
    second = keelson_server.get(
        "/api/v1/jobs", params={"status": "succeeded", "limit": 1, "page_token": token}
    )
    assert second.status_code == 200, second.text
    jobs = second.json()["jobs"]
    assert len(jobs) == 1
    assert jobs[0]["id"] != first["jobs"][0]["id"]


# --- metrics ------------------------------------------------------------------------------------


def scrape(server) -> dict:
    response = server.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def labelled(samples, suffix_name: str, **labels: str) -> list:
    return [
        s
        for s in samples
        if s.name == suffix_name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def test_metrics_count_requests_by_route(keelson_server):
    calls = 5
    for _ in range(calls):
        assert keelson_server.get("/health/live").status_code == 200
    assert keelson_server.get("/no/such/route").status_code == 404

    families = scrape(keelson_server)
    route = {"route": "/health/live", "method": "GET", "status": "200"}

    counter = families.get("keelson_http_requests")
    assert counter is not None, sorted(families)
    assert counter.type == "counter"
    [total] = labelled(counter.samples, "keelson_http_requests_total", **route)
    assert total.value >= calls

    unmatched = [s for s in counter.samples if s.labels.get("route") == "unmatched"]
    assert unmatched, "unknown routes must be counted under route=\"unmatched\""
    assert not [s for s in counter.samples if s.labels.get("route") == "/no/such/route"]

    histogram = families.get("keelson_http_request_duration_seconds")
    assert histogram is not None, sorted(families)
    assert histogram.type == "histogram"
    name = "keelson_http_request_duration_seconds"
    buckets = labelled(histogram.samples, f"{name}_bucket", **route)
    assert buckets, "no _bucket samples for GET /health/live"
    [inf] = [b for b in buckets if b.labels["le"] == "+Inf"]
    [count] = labelled(histogram.samples, f"{name}_count", **route)
    [total_seconds] = labelled(histogram.samples, f"{name}_sum", **route)
    assert count.value >= calls
    assert inf.value == count.value
    assert total_seconds.value >= 0
