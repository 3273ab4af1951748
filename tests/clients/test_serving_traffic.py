"""Keelson serving: routing between the deployments of an endpoint. A 90/10 split over 10,000
requests, targeting one deployment by header, sticky routing by a user header, mirroring to a
shadow deployment, rollback of the traffic, changing the split under load without dropping a
request, deploying by alias, and deployments whose model fails to load or validate (which never
get traffic). Both metadata backends.

Two registered versions of one model are served side by side: v1 a LogisticRegression, v2 a
GradientBoostingClassifier over the same six inputs, so an answer can be checked against the
model of the deployment that its `x-keelson-deployment` header names.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from mlflow import MlflowClient

from conftest import REFERENCE_MLFLOW
from serving_models import (
    N_ROWS,
    api_error,
    assert_outputs_match,
    build,
    create_endpoint,
    deploy,
    deployment_of,
    get_endpoint,
    log_and_register,
    put_deployment,
    set_traffic,
    unique,
    v2_outputs,
    wait_until,
)

pytestmark = pytest.mark.skipif(REFERENCE_MLFLOW, reason="Keelson's own serving API; not MLflow's")

HEADER = "x-keelson-deployment"
SPLIT_REQUESTS = 10_000
SPLIT_THREADS = 4


@pytest.fixture(scope="module")
def server(mlflow_tracking):
    return mlflow_tracking


@pytest.fixture(scope="module")
def registered(server) -> dict:
    """One registered model with v1 = logreg and v2 = gb-clf: {"name", "v1", "v2", "models"}."""
    name = unique("traffic-model")
    v1 = log_and_register(build("logreg"), name)
    v2 = log_and_register(build("gb-clf"), name)
    assert (v1, v2) == ("1", "2")
    return {"name": name, "v1": v1, "v2": v2}


MODEL_OF_VERSION = {"1": "logreg", "2": "gb-clf"}


def blue_green(server, registered, endpoint: str | None = None) -> str:
    """A fresh endpoint with `blue` (v1, which takes all traffic) and `green` (v2, none)."""
    endpoint = endpoint or unique("tr")
    create_endpoint(server, endpoint)
    deploy(server, endpoint, "blue", registered["name"], registered["v1"])
    deploy(server, endpoint, "green", registered["name"], registered["v2"])
    return endpoint


def live(traffic: dict) -> dict:
    """The traffic map without 0% entries (a 0% deployment may be listed or left out)."""
    return {name: percent for name, percent in traffic.items() if percent}


def one_row_body(row: int) -> dict:
    model = build("logreg")  # both versions take the same input
    return {"inputs": model.v2_inputs(1, start=row % N_ROWS)}


def check_answer(response: requests.Response, row: int, versions: dict[str, str]) -> str:
    """200, answered by a known deployment, with that deployment's model's outputs for `row`."""
    assert response.status_code == 200, (response.status_code, response.text[:500])
    deployment = response.headers.get(HEADER)
    assert deployment in versions, (deployment, dict(response.headers))
    model = build(MODEL_OF_VERSION[versions[deployment]])
    assert_outputs_match(model, v2_outputs(response.json()), 1, start=row % N_ROWS)
    return deployment


def stats(server, endpoint: str, deployment: str) -> dict:
    return deployment_of(get_endpoint(server, endpoint), deployment)["stats"]


def send(server, endpoint: str, count: int, threads: int = 1, headers_of=None) -> list[tuple[int, requests.Response]]:
    """`count` one-row inferences over `threads` threads, one Session each; (row, response) in
    row order. `headers_of(row)` gives each request's extra headers."""
    url = f"{server.url}/v2/models/{endpoint}/infer"

    def worker(rows: range) -> list:
        out = []
        with requests.Session() as session:
            for row in rows:
                headers = headers_of(row) if headers_of else None
                out.append((row, session.post(url, json=one_row_body(row), headers=headers, timeout=30)))
        return out

    chunks = [range(start, count, threads) for start in range(threads)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = [item for chunk in pool.map(worker, chunks) for item in chunk]
    return sorted(results, key=lambda item: item[0])


# --- defaults and the split -----------------------------------------------------------------------


def test_first_deployment_takes_all_traffic_and_the_next_none(server, registered):
    endpoint = unique("tr")
    created = create_endpoint(server, endpoint, description="routing")
    assert created["name"] == endpoint and created["description"] == "routing"
    empty = get_endpoint(server, endpoint)
    assert live(empty["traffic"]) == {} and empty["deployments"] == []
    deploy(server, endpoint, "blue", registered["name"], registered["v1"])
    assert live(get_endpoint(server, endpoint)["traffic"]) == {"blue": 100}
    green = deploy(server, endpoint, "green", registered["name"], registered["v2"])
    assert green["version"] in ("2", 2)
    state = get_endpoint(server, endpoint)
    assert live(state["traffic"]) == {"blue": 100}, "a new deployment starts at 0%"
    assert {d["name"] for d in state["deployments"]} == {"blue", "green"}
    versions = {"blue": "1", "green": "2"}
    answered = Counter(check_answer(r, row, versions) for row, r in send(server, endpoint, 50))
    assert answered == {"blue": 50}


def test_split_90_10_over_10000_requests(server, registered):
    endpoint = blue_green(server, registered)
    response = set_traffic(server, endpoint, {"blue": 90, "green": 10})
    assert response.status_code == 200, response.text
    assert live(response.json()["traffic"]) == {"blue": 90, "green": 10}
    before = {d: stats(server, endpoint, d)["requests"] for d in ("blue", "green")}

    versions = {"blue": "1", "green": "2"}
    results = send(server, endpoint, SPLIT_REQUESTS, threads=SPLIT_THREADS)
    answered = Counter(check_answer(r, row, versions) for row, r in results)
    assert sum(answered.values()) == SPLIT_REQUESTS
    green_share = answered["green"] / SPLIT_REQUESTS
    assert 0.08 <= green_share <= 0.12, f"green answered {green_share:.2%}, expected 10% +-2 points"

    # Each deployment's stats count what it answered.
    def counted():
        now = {d: stats(server, endpoint, d)["requests"] for d in ("blue", "green")}
        return now if all(now[d] - before[d] == answered[d] for d in now) else None

    wait_until(counted, timeout_s=10, what=f"stats.requests to reach {dict(answered)}")


def test_header_targets_a_deployment(server, registered):
    endpoint = blue_green(server, registered)
    versions = {"blue": "1", "green": "2"}
    # green has 0% of the traffic, yet a request naming it goes to it.
    for target in ("green", "blue"):
        results = send(server, endpoint, 40, headers_of=lambda row, t=target: {HEADER: t})
        assert Counter(check_answer(r, row, versions) for row, r in results) == {target: 40}
    assert set_traffic(server, endpoint, {"blue": 50, "green": 50}).status_code == 200
    results = send(server, endpoint, 60, headers_of=lambda row: {HEADER: "green"})
    assert Counter(check_answer(r, row, versions) for row, r in results) == {"green": 60}


def test_versioned_infer_goes_to_the_deployment_serving_that_version(server, registered):
    endpoint = blue_green(server, registered)
    for version, deployment in (("2", "green"), ("1", "blue")):
        for row in range(10):
            response = server.post(f"/v2/models/{endpoint}/versions/{version}/infer", json=one_row_body(row))
            assert check_answer(response, row, {"blue": "1", "green": "2"}) == deployment
    # A header naming a deployment must agree with the version in the URL.
    agreeing = server.post(f"/v2/models/{endpoint}/versions/2/infer", json=one_row_body(0), headers={HEADER: "green"})
    assert check_answer(agreeing, 0, {"blue": "1", "green": "2"}) == "green"
    clash = server.post(f"/v2/models/{endpoint}/versions/1/infer", json=one_row_body(0), headers={HEADER: "green"})
    assert clash.status_code == 404 and "serves model version 2, not 1" in clash.json()["error"], clash.text


def test_sticky_header_keeps_a_user_on_one_deployment(server, registered):
    endpoint = blue_green(server, registered)
    response = set_traffic(server, endpoint, {"blue": 50, "green": 50}, sticky_header="x-user-id")
    assert response.status_code == 200, response.text
    assert response.json()["sticky_header"] == "x-user-id"
    assert get_endpoint(server, endpoint)["sticky_header"] == "x-user-id"

    users = [f"user-{i:03d}" for i in range(200)]
    versions = {"blue": "1", "green": "2"}
    results = send(server, endpoint, len(users) * 5, threads=4,
                   headers_of=lambda row: {"x-user-id": users[row % len(users)]})
    seen: dict[str, set] = {}
    for row, r in results:
        seen.setdefault(users[row % len(users)], set()).add(check_answer(r, row, versions))
    assert len(seen) == 200
    split = {user: deployments for user, deployments in seen.items() if len(deployments) != 1}
    assert not split, f"users answered by more than one deployment: {dict(list(split.items())[:5])}"
    used = Counter(next(iter(d)) for d in seen.values())
    assert set(used) == {"blue", "green"}, used


# --- mirror and rollback --------------------------------------------------------------------------


def test_mirror_copies_every_request_to_the_shadow(server, registered):
    endpoint = blue_green(server, registered)
    deploy(server, endpoint, "shadow", registered["name"], registered["v2"])
    # A deployment with live traffic cannot also be a mirror target.
    refused = set_traffic(server, endpoint, {"blue": 100}, mirror={"blue": 100})
    api_error(refused, (400,), "INVALID_PARAMETER_VALUE")
    response = set_traffic(server, endpoint, {"blue": 100}, mirror={"shadow": 100})
    assert response.status_code == 200, response.text
    assert response.json()["mirror"] == {"shadow": 100}
    shadow_before = stats(server, endpoint, "shadow")
    blue_before = stats(server, endpoint, "blue")["requests"]

    count = 300
    versions = {"blue": "1", "green": "2", "shadow": "2"}
    answered = Counter(check_answer(r, row, versions) for row, r in send(server, endpoint, count, threads=2))
    assert answered == {"blue": count}, "the client only ever sees the live deployment's answers"

    # Mirroring is asynchronous: wait (bounded) until the shadow has seen every request.
    target = shadow_before["mirrored_requests"] + count
    wait_until(lambda: stats(server, endpoint, "shadow")["mirrored_requests"] >= target,
               timeout_s=30, what=f"shadow mirrored_requests >= {target}")
    after = stats(server, endpoint, "shadow")
    assert after["mirrored_requests"] == target, (shadow_before, after)
    assert after["errors"] == shadow_before["errors"], after
    assert stats(server, endpoint, "blue")["requests"] - blue_before == count


def test_rollback_restores_the_previous_traffic_and_mirror(server, registered):
    endpoint = blue_green(server, registered)
    first = set_traffic(server, endpoint, {"blue": 100}, mirror={"green": 50})
    assert first.status_code == 200, first.text
    second = set_traffic(server, endpoint, {"green": 100}, mirror={})
    assert second.status_code == 200, second.text
    assert live(get_endpoint(server, endpoint)["traffic"]) == {"green": 100}

    rolled = server.post(f"/api/v1/endpoints/{endpoint}/rollback")
    assert rolled.status_code == 200, rolled.text
    for state in (rolled.json(), get_endpoint(server, endpoint)):
        assert live(state["traffic"]) == {"blue": 100}, state
        assert live(state["mirror"]) == {"green": 50}, state
    versions = {"blue": "1", "green": "2"}
    answered = Counter(check_answer(r, row, versions) for row, r in send(server, endpoint, 100))
    assert answered == {"blue": 100}


def test_changing_the_split_under_load_drops_no_request(server, registered):
    endpoint = blue_green(server, registered)
    versions = {"blue": "1", "green": "2"}
    url = f"{server.url}/v2/models/{endpoint}/infer"
    stop = threading.Event()
    max_per_thread = 3000  # bounded even if the main thread failed to stop them
    outcomes: list[list] = [[] for _ in range(8)]

    def client(slot: int) -> None:
        with requests.Session() as session:
            for i in range(max_per_thread):
                if stop.is_set():
                    return
                row = slot * 1000 + i
                try:
                    response = session.post(url, json=one_row_body(row), timeout=30)
                    outcomes[slot].append((row, response.status_code, response.headers.get(HEADER),
                                           response.content))
                except requests.RequestException as error:
                    outcomes[slot].append((row, None, None, repr(error).encode()))

    threads = [threading.Thread(target=client, args=(slot,), daemon=True) for slot in range(8)]
    for thread in threads:
        thread.start()
    splits = [{"blue": 50, "green": 50}, {"green": 100}, {"blue": 90, "green": 10}, {"blue": 100}]
    try:
        for i in range(12):
            response = set_traffic(server, endpoint, splits[i % len(splits)])
            assert response.status_code == 200, response.text
            stop.wait(0.15)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)

    total = sum(len(o) for o in outcomes)
    assert all(outcomes), "every client thread got requests through"
    failures = [(row, status, body[:200]) for o in outcomes for row, status, _, body in o if status != 200]
    assert not failures, f"{len(failures)} of {total} requests failed: {failures[:5]}"
    assert {deployment for o in outcomes for _, _, deployment, _ in o} == {"blue", "green"}

    # The last split ({"blue": 100}) holds at once for new requests.
    answered = Counter(check_answer(r, row, versions) for row, r in send(server, endpoint, 50))
    assert answered == {"blue": 50}


# --- deploying by alias, failed deployments ------------------------------------------------------


def test_deploy_by_alias_resolves_at_deploy_time(server, registered):
    client = MlflowClient()
    client.set_registered_model_alias(registered["name"], "champion", registered["v2"])
    endpoint = unique("alias")
    create_endpoint(server, endpoint)
    response = put_deployment(server, endpoint, "champ", {"model": registered["name"], "alias": "champion"})
    assert response.status_code == 200, response.text
    assert str(response.json()["version"]) == registered["v2"]
    client.set_registered_model_alias(registered["name"], "champion", registered["v1"])
    deployment = deployment_of(get_endpoint(server, endpoint), "champ")
    assert str(deployment["version"]) == registered["v2"], "the alias moved; the deployment did not"
    answered = Counter(check_answer(r, row, {"champ": "2"}) for row, r in send(server, endpoint, 10))
    assert answered == {"champ": 10}


def broken_onnx_model():
    """A well-formed ONNX model with an operator no runtime has."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 6])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 6])
    node = helper.make_node("NoSuchOperator", ["input"], ["output"], domain="keelson.test")
    graph = helper.make_graph([node], "broken", [x], [y])
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("keelson.test", 1)]
    )


def assert_never_serves(server, endpoint: str, bad: str, traffic_before: dict, versions: dict) -> None:
    state = get_endpoint(server, endpoint)
    names = [d["name"] for d in state["deployments"]]
    if bad in names:
        assert deployment_of(state, bad)["state"] == "failed", state
    assert live(state["traffic"]) == live(traffic_before), state
    assert bad not in state["traffic"] or state["traffic"][bad] == 0
    # Traffic cannot be given to it.
    refused = set_traffic(server, endpoint, {"blue": 50, bad: 50})
    api_error(refused, (400,), "INVALID_PARAMETER_VALUE")
    assert live(get_endpoint(server, endpoint)["traffic"]) == live(traffic_before)
    # Naming it in the header does not reach it.
    targeted = server.post(f"/v2/models/{endpoint}/infer", json=one_row_body(0), headers={HEADER: bad})
    assert targeted.status_code >= 400 and targeted.headers.get(HEADER) != bad, targeted.text[:300]
    assert isinstance(targeted.json().get("error"), str), targeted.text[:300]
    answered = Counter(check_answer(r, row, versions) for row, r in send(server, endpoint, 100))
    assert bad not in answered and sum(answered.values()) == 100


def test_model_failing_validation_never_gets_traffic(server, registered):
    endpoint = unique("tr")
    create_endpoint(server, endpoint)
    model = build("logreg")
    validation = model.validation(rows=4)
    wrong = dict(validation["expected_outputs"])
    wrong["output_probability"] = [p + 0.25 for p in wrong["output_probability"]]
    bad_validation = {**validation, "expected_outputs": wrong}

    # As the first deployment of an endpoint with no traffic, it still gets none.
    refused = put_deployment(server, endpoint, "bad", {"model": registered["name"], "version": registered["v1"],
                                                       "validation": bad_validation})
    body = api_error(refused, (400,), "INVALID_PARAMETER_VALUE")
    assert "output_probability" in body["message"], body
    state = get_endpoint(server, endpoint)
    assert live(state["traffic"]) == {}, state

    # The same model with the right expected outputs deploys, and takes the traffic.
    good = put_deployment(server, endpoint, "blue", {"model": registered["name"], "version": registered["v1"],
                                                     "validation": validation})
    assert good.status_code == 200, good.text
    assert live(get_endpoint(server, endpoint)["traffic"]) == {"blue": 100}
    assert_never_serves(server, endpoint, "bad", {"blue": 100}, {"blue": "1"})


def test_model_failing_to_load_or_on_its_input_example_never_gets_traffic(server, registered):
    endpoint = blue_green(server, registered)
    before = get_endpoint(server, endpoint)["traffic"]

    name = unique("broken-model")
    version = log_and_register(build("logreg"), name, onnx_model=broken_onnx_model())
    refused = put_deployment(server, endpoint, "broken", {"model": name, "version": version})
    api_error(refused, (400,), "INVALID_PARAMETER_VALUE")
    assert_never_serves(server, endpoint, "broken", before, {"blue": "1", "green": "2"})

    # A model whose logged input example does not fit its input (4 columns for 6): the default
    # validation runs that example, and fails.
    misfit = unique("misfit-model")
    example = np.zeros((3, 4), dtype=np.float32)
    version = log_and_register(build("logreg"), misfit, input_example=example)
    refused = put_deployment(server, endpoint, "misfit", {"model": misfit, "version": version})
    api_error(refused, (400,), "INVALID_PARAMETER_VALUE")
    assert_never_serves(server, endpoint, "misfit", before, {"blue": "1", "green": "2"})


def test_endpoint_delete(server, registered):
    endpoint = blue_green(server, registered)
    assert server.post(f"/v2/models/{endpoint}/infer", json=one_row_body(0)).status_code == 200
    deleted = server.request("DELETE", f"/api/v1/endpoints/{endpoint}")
    assert deleted.status_code in (200, 204), deleted.text
    api_error(server.get(f"/api/v1/endpoints/{endpoint}"), (404,), "RESOURCE_DOES_NOT_EXIST")
    assert endpoint not in [e["name"] for e in server.get("/api/v1/endpoints").json()["endpoints"]]
    gone = server.post(f"/v2/models/{endpoint}/infer", json=one_row_body(0))
    assert gone.status_code == 404 and isinstance(gone.json().get("error"), str), gone.text
