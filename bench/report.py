"""Prints the results table of bench/mlflow_compare from the JSON files in its work directory.

usage: report.py WORKDIR
"""

import json
import os
import sys


def load(workdir, name):
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def others(result):
    share = (result or {}).get("others_pct")
    return f"{share:.0f}%" if share is not None else ""


def ratio(numerator, denominator):
    if not numerator or not denominator:
        return "n/a"
    return f"{numerator / denominator:.2f}x"


def main():
    workdir = sys.argv[1]
    env = load(workdir, "env.json")
    lines = []
    out = lines.append

    out(f"Keelson vs MLflow tracking server: side by side on one machine ({env['date']})")
    out("")
    out("environment")
    for key in (
        "machine", "cpus", "memory", "kernel", "load", "keelson", "keelson_git", "mlflow", "python",
        "wrk", "keelson_server", "mlflow_server",
    ):
        out(f"  {key:<15} {env[key]}")
    out("")

    out("(a) the real client: MlflowClient in one Python process, requests one after another")
    out("    wall seconds per phase; ratio = mlflow / keelson (higher = keelson faster).")
    out("    cpu = the client process's own CPU seconds in that phase: no server can go below")
    out("    it, so it caps the ratio (the ceiling is mlflow wall / keelson client cpu).")
    keelson, mlflow = load(workdir, "client_keelson.json"), load(workdir, "client_mlflow.json")
    if keelson and mlflow:
        out(
            "    CPU taken by processes outside this benchmark meanwhile (of all cores): keelson pass"
            f" {others(keelson)}, mlflow pass {others(mlflow)}"
        )
    out(
        f"    {'phase':<46} {'keelson s':>10} {'(cpu)':>7} {'mlflow s':>10} {'(cpu)':>7} "
        f"{'ratio':>7}"
    )
    descriptions = {
        "log_batch": "log_batch: 20 runs x 50 metrics x 100 steps",
        "small_runs": "500 runs: create + param + metric + terminate",
        "search_runs": "20 search_runs (metric + param filter, order)",
        "metric_history": "50 get_metric_history (100 points each)",
    }

    def cell(result, field, phase, width, digits):
        value = (result or {}).get(field, {}).get(phase)
        return f"{value:>{width}.{digits}f}" if value is not None else f"{'':>{width}}"

    for phase, description in descriptions.items():
        k = (keelson or {}).get("timings_s", {}).get(phase)
        m = (mlflow or {}).get("timings_s", {}).get(phase)
        out(
            f"    {description:<46} {cell(keelson, 'timings_s', phase, 10, 3)} "
            f"{cell(keelson, 'client_cpu_s', phase, 7, 2)} {cell(mlflow, 'timings_s', phase, 10, 3)} "
            f"{cell(mlflow, 'client_cpu_s', phase, 7, 2)} {ratio(m, k):>7}"
        )
    out("")

    seeds = {s: load(workdir, f"seed_{s}.json") for s in ("keelson", "mlflow")}
    search_runs = (seeds["keelson"] or seeds["mlflow"] or {}).get("search_runs", 10_000)
    if all(seeds.values()):
        out("    seeding for (b), 8 Python threads over HTTP (informational), seconds")
        for name, description in (
            ("seed_runs_s", f"{search_runs:,} runs: runs/create + runs/log-batch each"),
            ("seed_100k_points_s", "100,000 points: 100 x runs/log-batch"),
        ):
            k, m = seeds["keelson"]["timings"][name], seeds["mlflow"]["timings"][name]
            out(f"    {description:<46} {k:>10.3f} {m:>10.3f} {ratio(m, k):>8}")
        out("")

    out(
        f"(b) server capacity: wrk, {env['connections']} connections, {env['wrk_threads']} threads,"
        f" {env['duration']} s per scenario and server"
    )
    out(
        f"    s = seconds run: a pass completing fewer than {env['min_requests']} requests is run"
        " again for longer"
    )
    out("    n = requests completed; ratio = keelson req/s / mlflow req/s; errors = non-2xx +")
    out("    socket errors + timeouts (must be 0); 'unloaded' = one request at a time, median of 5;")
    out(
        "    others = CPU share taken by processes outside this benchmark during the pass (a pass"
        f" over {env['max_foreign']}% is"
    )
    out("    run again, the quietest kept)")
    out(
        f"    {'scenario':<38} {'server':<8} {'s':>3} {'n':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>6} {'unloaded':>9} {'others':>6}"
    )
    scenarios = {
        "log_batch": "POST runs/log-batch, 1,000 metrics",
        "search": f"POST runs/search over {search_runs:,} runs",
        "get_history": "GET metrics/get-history, 100k points",
    }
    verify = {s: load(workdir, f"verify_{s}.json") for s in ("keelson", "mlflow")}
    for scenario, description in scenarios.items():
        results = {}
        for server in ("keelson", "mlflow"):
            result = load(workdir, f"wrk_{scenario}_{server}.json")
            label = description if server == "keelson" else ""
            if result is None:
                out(f"    {label:<38} {server:<8} {'not run':>6}")
                continue
            errors = sum(result["errors"].values())
            flag = ""
            if errors:
                flag = "  <- INVALID: errors"
            elif result["requests"] == 0:
                flag = "  <- no request completed: raise BENCH_LONG_DURATION"
            else:
                results[server] = result
                if result["requests"] < 30:
                    flag = "  <- few samples"
            unloaded = (verify[server] or {}).get("unloaded_ms", {}).get(scenario)
            unloaded = f"{unloaded:.1f}" if unloaded is not None else ""
            out(
                f"    {label:<38} {server:<8} {result.get('duration_set_s', ''):>3} "
                f"{result['requests']:>6} {result['rps']:>8.1f} "
                f"{result['p50_ms']:>8.1f} {result['p99_ms']:>8.1f} {result['latency_max_ms']:>8.1f} "
                f"{errors:>6} {unloaded:>9} {others(result):>6}{flag}"
            )
        k, m = results.get("keelson"), results.get("mlflow")
        shown = ratio(k["rps"], m["rps"]) if k and m else "n/a"
        out(f"    {'':<38} {'ratio':<8} {'':>3} {'':>6} {shown:>8}")
    out("")

    memory = load(workdir, "memory.json")
    if memory:
        out("peak memory over the whole run, MiB (process tree of each server)")
        out(
            f"    {'server':<15} {'processes':>9} {'sum VmHWM':>10} {'peak sum RSS':>13} "
            f"{'peak sum PSS':>13}"
        )
        for server in ("keelson", "mlflow", "mlflow-uvicorn"):
            entry = memory.get(server)
            if entry is None:
                continue
            out(
                f"    {server:<15} {entry['processes']:>9} {entry['hwm_sum_mib']:>10.1f} "
                f"{entry['rss_peak_mib']:>13.1f} {entry['pss_peak_mib']:>13.1f}"
            )
        out("    (VmHWM is each process's kernel peak-RSS counter; RSS sums sampled every 0.5 s, PSS every 5 s;")
        out("    mlflow = the whole `mlflow server` tree incl. its job runner and huey consumers,")
        out("    mlflow-uvicorn = only uvicorn and its request workers)")
        out("")

    problems_path = os.path.join(workdir, "problems.txt")
    problems = open(problems_path).read().strip() if os.path.exists(problems_path) else ""
    out("problems")
    out("    " + (problems.replace("\n", "\n    ") if problems else "none"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
