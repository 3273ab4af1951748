"""Data and checks for the load-generator part of bench/mlflow_compare, over plain HTTP.

usage:
  seed_load.py seed   URL SEED.json           create the data the wrk scripts use
  seed_load.py verify URL SEED.json OUT.json  check one answer of each benchmarked request
  seed_load.py points URL SEED.json           print how many points metric m0 of the wrk
                                              log-batch target run holds
  seed_load.py count  URL SEED.json WRK.json BEFORE
                                              check the log-batch load arrived: m0 gained 100
                                              points per request wrk completed (BEFORE: the
                                              count before the wrk pass)

Data (the same on every server):
  experiment bench-search: 10,000 runs (BENCH_SEARCH_RUNS, to make a quick smoke run smaller) r00000..r09999, each with param p = x (even i) or y (odd
  i), metric m = (i * 7919 mod 10000) / 10000 (7919 is prime, so no two runs tie) and a tag.
  experiment bench-load: run history with metric loss, 100,000 points; run log-batch-target,
  empty, which wrk_log_batch.lua writes to.

Any non-2xx answer or wrong result exits 1 and prints the request and the response.
"""

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

API = "/api/2.0/mlflow"
SEARCH_RUNS = int(os.environ.get("BENCH_SEARCH_RUNS", "10000"))
HISTORY_POINTS = 100_000
BASE_TS = 1_700_000_000_000
SEED_THREADS = 8
SEARCH_FILTER = "metrics.m > 0.5 and params.p = 'x'"
SEARCH_ORDER = ["metrics.m DESC"]
SEARCH_PAGE = 100

_local = threading.local()


class RequestFailed(Exception):
    pass


def session():
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def call(base, method, path, body=None, params=None):
    response = session().request(method, base + API + path, json=body, params=params, timeout=600)
    if not 200 <= response.status_code < 300:
        raise RequestFailed(
            f"{method} {API}{path} params={params!r}\n"
            f"request body (first 2000 chars): {json.dumps(body)[:2000] if body is not None else ''}\n"
            f"-> HTTP {response.status_code}\n"
            f"response body (first 4000 chars): {response.text[:4000]}"
        )
    return response.json()


def search_metric(i):
    return (i * 7919 % SEARCH_RUNS) / SEARCH_RUNS


def search_param(i):
    return "x" if i % 2 == 0 else "y"


def history_value(step):
    return (step % 1000) / 1000


def search_body(experiment_id, max_results=SEARCH_PAGE, page_token=None):
    body = {
        "experiment_ids": [experiment_id],
        "filter": SEARCH_FILTER,
        "order_by": SEARCH_ORDER,
        "max_results": max_results,
    }
    if page_token:
        body["page_token"] = page_token
    return body


def expected_matches():
    matches = [i for i in range(SEARCH_RUNS) if search_param(i) == "x" and search_metric(i) > 0.5]
    return [f"r{i:05d}" for i in sorted(matches, key=lambda i: -search_metric(i))]


def run_name(run):
    return run["info"].get("run_name") or next(
        (t["value"] for t in run.get("data", {}).get("tags", []) if t["key"] == "mlflow.runName"),
        None,
    )


def seed(base, out):
    timings = {}
    search_exp = call(base, "POST", "/experiments/create", {"name": "bench-search"})["experiment_id"]
    load_exp = call(base, "POST", "/experiments/create", {"name": "bench-load"})["experiment_id"]

    def create_search_run(i):
        run = call(
            base,
            "POST",
            "/runs/create",
            {"experiment_id": search_exp, "run_name": f"r{i:05d}", "start_time": BASE_TS + i},
        )["run"]
        call(
            base,
            "POST",
            "/runs/log-batch",
            {
                "run_id": run["info"]["run_id"],
                "params": [{"key": "p", "value": search_param(i)}],
                "metrics": [
                    {"key": "m", "value": search_metric(i), "timestamp": BASE_TS + i, "step": 0}
                ],
                "tags": [{"key": "group", "value": str(i % 10)}],
            },
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(create_search_run, range(SEARCH_RUNS)))
    timings["seed_runs_s"] = time.perf_counter() - started

    history_run = call(
        base, "POST", "/runs/create", {"experiment_id": load_exp, "run_name": "history"}
    )["run"]["info"]["run_id"]

    def log_history_chunk(chunk):
        steps = range(chunk * 1000, (chunk + 1) * 1000)
        call(
            base,
            "POST",
            "/runs/log-batch",
            {
                "run_id": history_run,
                "metrics": [
                    {"key": "loss", "value": history_value(s), "timestamp": BASE_TS + s, "step": s}
                    for s in steps
                ],
            },
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(log_history_chunk, range(HISTORY_POINTS // 1000)))
    timings["seed_100k_points_s"] = time.perf_counter() - started

    target_run = call(
        base, "POST", "/runs/create", {"experiment_id": load_exp, "run_name": "log-batch-target"}
    )["run"]["info"]["run_id"]
    seeded = {
        "search_experiment_id": search_exp,
        "load_experiment_id": load_exp,
        "history_run_id": history_run,
        "log_batch_run_id": target_run,
        "search_body": search_body(search_exp),
        "search_runs": SEARCH_RUNS,
        "timings": timings,
    }
    with open(out, "w") as handle:
        json.dump(seeded, handle)
    for name, seconds in timings.items():
        print(f"  {name:<20} {seconds:8.3f} s", file=sys.stderr)


def verify(base, seed_file, out):
    with open(seed_file) as handle:
        seeded = json.load(handle)
    problems = []
    expected = expected_matches()

    # The exact request wrk repeats.
    page = call(base, "POST", "/runs/search", seeded["search_body"])
    first_page = [run_name(r) for r in page.get("runs", [])]
    if first_page != expected[:SEARCH_PAGE]:
        problems.append(
            f"search first page: expected {len(expected[:SEARCH_PAGE])} runs starting "
            f"{expected[:5]}, got {len(first_page)} starting {first_page[:5]}"
        )
    # Every match, page by page: checks the filter over all runs and the page tokens.
    names, token, pages = [], None, 0
    while True:
        page = call(
            base, "POST", "/runs/search", search_body(seeded["search_experiment_id"], 1000, token)
        )
        names.extend(run_name(r) for r in page.get("runs", []))
        token = page.get("next_page_token")
        pages += 1
        if not token or pages > 100:
            break
    if names != expected:
        missing = sorted(set(expected) - set(names))
        extra = sorted(set(names) - set(expected))
        problems.append(
            f"search all pages: expected {len(expected)} runs, got {len(names)} in {pages} "
            f"pages; missing {missing[:5]}, extra {extra[:5]}, same order: "
            f"{[n for n in names if n in set(expected)] == [n for n in expected if n in set(names)]}"
        )

    history = call(
        base,
        "GET",
        "/metrics/get-history",
        params={"run_id": seeded["history_run_id"], "metric_key": "loss"},
    )
    points = history.get("metrics", [])
    got = sorted((int(m["step"]), m["value"], int(m["timestamp"])) for m in points)
    want = [(s, history_value(s), BASE_TS + s) for s in range(HISTORY_POINTS)]
    if got != want:
        problems.append(
            f"get-history: expected {len(want)} points, got {len(got)} "
            f"(next_page_token={history.get('next_page_token')!r}); first difference "
            f"{next(([e, g] for e, g in zip(want, got) if e != g), None)}"
        )

    # Latency of one request at a time (no concurrency), median of 5, for context beside wrk:
    # until the whole body has arrived, without decoding it here.
    unloaded = {}
    unloaded_run = call(
        base,
        "POST",
        "/runs/create",
        {"experiment_id": seeded["load_experiment_id"], "run_name": "log-batch-unloaded"},
    )["run"]["info"]["run_id"]
    batches = iter(range(5))

    def log_batch_body():
        seq = next(batches)
        return {
            "run_id": unloaded_run,
            "metrics": [
                {
                    "key": f"m{j % 10}",
                    "value": ((seq * 100 + j // 10) % 997) / 997,
                    "timestamp": BASE_TS + seq,
                    "step": seq * 100 + j // 10,
                }
                for j in range(1000)
            ],
        }

    for name, method, path, body, params in (
        ("log_batch", "POST", "/runs/log-batch", log_batch_body, None),
        ("search", "POST", "/runs/search", seeded["search_body"], None),
        (
            "get_history",
            "GET",
            "/metrics/get-history",
            None,
            {"run_id": seeded["history_run_id"], "metric_key": "loss"},
        ),
    ):
        times = []
        for _ in range(5):
            payload = json.dumps(body() if callable(body) else body)
            started = time.perf_counter()
            response = session().request(
                method,
                base + API + path,
                data=payload if body is not None else None,
                headers={"Content-Type": "application/json"} if body is not None else None,
                params=params,
            )
            _ = response.content
            times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RequestFailed(f"{method} {path} -> HTTP {response.status_code}: {response.text[:2000]}")
        unloaded[name] = sorted(times)[2] * 1000

    result = {
        "search_first_page": first_page,
        "search_all_count": len(names),
        "unloaded_ms": unloaded,
        "problems": problems,
    }
    with open(out, "w") as handle:
        json.dump(result, handle)
    if problems:
        for problem in problems:
            print(f"  WRONG ANSWER: {problem}", file=sys.stderr)
        sys.exit(1)
    print(
        f"  search: {len(names)} matches, first page ok; get-history: {len(points)} points ok",
        file=sys.stderr,
    )


def target_points(base, seed_file):
    with open(seed_file) as handle:
        seeded = json.load(handle)
    history = call(
        base,
        "GET",
        "/metrics/get-history",
        params={"run_id": seeded["log_batch_run_id"], "metric_key": "m0"},
    )
    return len(history.get("metrics", []))


def count(base, seed_file, wrk_file, before):
    with open(wrk_file) as handle:
        completed = json.load(handle)["requests"]
    stored = target_points(base, seed_file) - before
    # Requests still in flight when wrk stopped may have been stored too (16 connections).
    if not completed * 100 <= stored <= (completed + 64) * 100:
        print(
            f"  WRONG ANSWER: wrk completed {completed} log-batch requests (100 points of m0 "
            f"each), but the run gained {stored} points of m0",
            file=sys.stderr,
        )
        sys.exit(1)
    print(
        f"  log-batch stored: {stored} new points of m0 for {completed} completed requests",
        file=sys.stderr,
    )


def main():
    command, base = sys.argv[1], sys.argv[2].rstrip("/")
    try:
        if command == "seed":
            seed(base, sys.argv[3])
        elif command == "verify":
            verify(base, sys.argv[3], sys.argv[4])
        elif command == "points":
            print(target_points(base, sys.argv[3]))
        elif command == "count":
            count(base, sys.argv[3], sys.argv[4], int(sys.argv[5]))
        else:
            sys.exit(f"unknown command {command}")
    except RequestFailed as failure:
        print(f"  REQUEST FAILED against {base}:\n{failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
