"""Phase timings through the real MLflow client (MlflowClient over the REST store).

usage: client_phases.py TRACKING_URI OUT.json

Phases (each timed on its own: wall clock, and this process's CPU time, which is the part of the
wall clock no server can remove):
  log_batch       20 runs x 50 metrics x 100 steps, MlflowClient.log_batch with 1,000 metrics a
                  call (5 calls a run), plus create_run and set_terminated for each run
  small_runs      500 runs: create_run + log_param + log_metric + set_terminated
  search_runs     20 search_runs with a metric and a param filter, order_by, max_results=100
  metric_history  50 get_metric_history reads of 100 points each

The data is deterministic, so every answer is checked against what was logged; a wrong answer
fails the run (exit 1) after the JSON is written, with the differences in it.
"""

import json
import sys
import time

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

BIG_RUNS, METRICS_PER_RUN, STEPS = 20, 50, 100
SMALL_RUNS = 500
SEARCHES = 20
HISTORY_READS = 50
BASE_TS = 1_700_000_000_000


def big_value(run, metric, step):
    return round(((run * 131 + metric * 17 + step * 7) % 1000) / 1000, 3)


def small_metric(i):
    # 37 is coprime with 500, so every run gets a distinct value and order_by has no ties.
    return (i * 37 % SMALL_RUNS) / SMALL_RUNS


def small_param(i):
    return "x" if i % 2 == 0 else "y"


def search_threshold(k):
    return round(k / SEARCHES, 3)


def main():
    uri, out = sys.argv[1], sys.argv[2]
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(f"client-phases-{int(time.time() * 1000)}")
    timings, client_cpu, problems, answers = {}, {}, [], {}

    started, started_cpu = time.perf_counter(), time.process_time()
    big_run_ids = []
    for run in range(BIG_RUNS):
        run_id = client.create_run(experiment_id, run_name=f"big{run:02d}").info.run_id
        big_run_ids.append(run_id)
        metrics = [
            Metric(f"metric{metric:02d}", big_value(run, metric, step), BASE_TS + step, step)
            for metric in range(METRICS_PER_RUN)
            for step in range(STEPS)
        ]
        for chunk in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[chunk : chunk + 1000])
        client.set_terminated(run_id)
    timings["log_batch"] = time.perf_counter() - started
    client_cpu["log_batch"] = time.process_time() - started_cpu

    started, started_cpu = time.perf_counter(), time.process_time()
    for i in range(SMALL_RUNS):
        run_id = client.create_run(experiment_id, run_name=f"s{i:03d}").info.run_id
        client.log_param(run_id, "p", small_param(i))
        client.log_metric(run_id, "m", small_metric(i), timestamp=BASE_TS + i, step=0)
        client.set_terminated(run_id)
    timings["small_runs"] = time.perf_counter() - started
    client_cpu["small_runs"] = time.process_time() - started_cpu

    started, started_cpu = time.perf_counter(), time.process_time()
    results = []
    for k in range(SEARCHES):
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"metrics.m > {search_threshold(k)} and params.p = 'x'",
            order_by=["metrics.m DESC"],
            max_results=100,
        )
        results.append([r.info.run_name for r in runs])
    timings["search_runs"] = time.perf_counter() - started
    client_cpu["search_runs"] = time.process_time() - started_cpu
    for k, names in enumerate(results):
        threshold = search_threshold(k)
        expected = sorted(
            (i for i in range(SMALL_RUNS) if small_param(i) == "x" and small_metric(i) > threshold),
            key=lambda i: -small_metric(i),
        )[:100]
        expected_names = [f"s{i:03d}" for i in expected]
        if names != expected_names:
            problems.append(
                {
                    "phase": "search_runs",
                    "filter": f"metrics.m > {threshold} and params.p = 'x'",
                    "expected_first": expected_names[:5],
                    "expected_count": len(expected_names),
                    "got_first": names[:5],
                    "got_count": len(names),
                }
            )
    answers["search_runs"] = results

    started, started_cpu = time.perf_counter(), time.process_time()
    histories = []
    for i in range(HISTORY_READS):
        run, metric = i % BIG_RUNS, (i * 7) % METRICS_PER_RUN
        history = client.get_metric_history(big_run_ids[run], f"metric{metric:02d}")
        histories.append((run, metric, history))
    timings["metric_history"] = time.perf_counter() - started
    client_cpu["metric_history"] = time.process_time() - started_cpu
    for run, metric, history in histories:
        got = sorted((m.step, m.value, m.timestamp) for m in history)
        expected = [(s, big_value(run, metric, s), BASE_TS + s) for s in range(STEPS)]
        if got != expected:
            problems.append(
                {
                    "phase": "metric_history",
                    "run": f"big{run:02d}",
                    "metric": f"metric{metric:02d}",
                    "expected_points": len(expected),
                    "got_points": len(got),
                    "first_difference": next(
                        ([e, g] for e, g in zip(expected, got) if e != g), None
                    ),
                }
            )

    with open(out, "w") as handle:
        json.dump(
            {
                "timings_s": timings,
                "client_cpu_s": client_cpu,
                "problems": problems,
                "answers": answers,
            },
            handle,
        )
    for name, seconds in timings.items():
        print(
            f"  {name:<16} {seconds:8.3f} s (client CPU {client_cpu[name]:.3f} s)", file=sys.stderr
        )
    if problems:
        print(json.dumps(problems, indent=1), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
