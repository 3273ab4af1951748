"""Prints bench/serving_compare's table from a work dir and writes the results JSON.

usage: report.py WORK_DIR OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGET_RATIO = 10.0
TARGET_P99_MS = 2.0


def load(work: Path):
    env = json.loads((work / "env.json").read_text())
    manifest = json.loads((work / "assets" / "manifest.json").read_text())
    passes = []
    for line in (work / "passes.jsonl").read_text().splitlines():
        entry = json.loads(line)
        entry["result"] = json.loads((work / entry["file"]).read_text())
        passes.append(entry)
    problems = [p for p in (work / "problems.txt").read_text().splitlines() if p.strip()]
    return env, manifest, passes, problems


def failed(result: dict) -> int:
    return sum(result["non_2xx"].values()) + sum(result["errors"].values())


def num(value, width=8, digits=1):
    if value is None:
        return "n/a".rjust(width)
    return f"{value:{width}.{digits}f}"


def stats_delta(work: Path, name: str) -> dict | None:
    """Requests per deployment during a router pass (from the endpoint's counters)."""
    before, after = work / f"stats_{name}_before.json", work / f"stats_{name}_after.json"
    if not before.exists() or not after.exists():
        return None
    a, b = json.loads(before.read_text())["deployments"], json.loads(after.read_text())["deployments"]
    delta = {}
    for deployment, counters in b.items():
        old = a.get(deployment, {})
        delta[deployment] = {
            key: counters.get(key, 0) - old.get(key, 0) for key in ("requests", "mirrored_requests", "errors")
        }
    return delta


def main() -> None:
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    env, manifest, passes, problems = load(work)
    lines: list[str] = []
    say = lines.append
    summary: dict = {"throughput": {}, "latency_at_rate": {}, "router": {}, "collector": {}, "targets": {}}

    def find(**keys):
        for entry in passes:
            if all(entry.get(k) == v for k, v in keys.items()):
                return entry
        return None

    def invalid(entry) -> str:
        r = entry["result"]
        marks = []
        if failed(r):
            marks.append(f"INVALID: {failed(r)} failed answers")
        if entry["mode"] == "open" and r["rps"] < 0.95 * float(env["rate"]):
            marks.append(f"did not hold {int(float(env['rate'])):,} req/s (saturated)")
        return ("  <- " + "; ".join(marks)) if marks else ""

    models = sorted({e["model"] for e in passes if e["scenario"] == "serve"}, key=["logreg", "mlp"].index)
    say(f"Keelson vs MLServer: ONNX model serving side by side on one machine ({env['date']})")
    say("")
    say("environment")
    for key in ("machine", "cpus", "load", "keelson", "keelson_git", "keelson_server", "mlserver", "python", "oha"):
        say(f"  {key:<15} {env[key]}")
    say("")
    say("models (the same .onnx files for both servers; batch 1; V2 inference protocol)")
    for key in models:
        m = manifest["models"][key]
        say(
            f"  {key:<7} {m['estimator']} (skl2onnx, zipmap=False), {manifest['n_features']} FP32 features,"
            f" outputs {', '.join(m['outputs'])}, {m['onnx_bytes']:,} bytes"
        )
    say("")

    # (1) closed loop
    say(f"(1) max throughput, closed loop: oha, {env['connections']} connections, {env['duration']} s per pass")
    say("    req/s = 2xx answers per second. server us/req = CPU the server's processes spent per answer (its")
    say("    cost of one request, whatever the load generator took). oha/others = share of all cores taken by")
    say("    the load generator / by processes outside the benchmark during the pass (a pass over")
    say(f"    {env['max_foreign']}% others is measured again, the quietest kept).")
    header = (
        f"    {'model':<7} {'server':<30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'us/req':>8}"
        f" {'oha':>5} {'others':>6}"
    )
    say(header)
    best_mlserver: dict[str, dict] = {}
    for model in models:
        rows = [e for e in passes if e["model"] == model and e["scenario"] == "serve" and e["mode"] == "closed"]
        rows.sort(key=lambda e: (e["server"] != "keelson", e["encoding"] != "json", e["setting"]))
        first = True
        for entry in rows:
            r = entry["result"]
            label = entry["server"] + (" (binary tensors)" if entry["encoding"] == "binary" else "")
            if entry["setting"]:
                label += f" {entry['setting']}"
            say(
                f"    {model if first else '':<7} {label:<30} {num(r['rps'], 9)} {num(r['p50_ms'], 8, 3)}"
                f" {num(r['p99_ms'], 8, 3)} {num(r['server_us_per_req'], 8)} {num(r['oha_cpu_pct'], 4, 0)}%"
                f" {num(r['others_pct'], 5, 0)}%{invalid(entry)}"
            )
            first = False
        candidates = [e for e in rows if e["server"] == "mlserver" and not failed(e["result"])]
        keelson = next((e for e in rows if e["server"] == "keelson" and e["encoding"] == "json"), None)
        if candidates:
            best = max(candidates, key=lambda e: e["result"]["rps"])
            best_mlserver[model] = best
        if keelson and candidates and not failed(keelson["result"]):
            k, m = keelson["result"], best["result"]
            ratio = k["rps"] / m["rps"] if m["rps"] else None
            cpu_ratio = (
                m["server_us_per_req"] / k["server_us_per_req"]
                if k["server_us_per_req"] and m["server_us_per_req"]
                else None
            )
            summary["throughput"][model] = {
                "keelson_rps": k["rps"],
                "mlserver_rps": m["rps"],
                "mlserver_setting": best["setting"],
                "ratio": ratio,
                "keelson_server_us_per_req": k["server_us_per_req"],
                "mlserver_server_us_per_req": m["server_us_per_req"],
                "cpu_per_request_ratio": cpu_ratio,
            }
            say(
                f"    {'':<7} {'ratio keelson / mlserver':<30} {num(ratio, 8, 2)}x"
                f"   (vs the better MLServer setting, {best['setting']}; server CPU per request"
                f" {num(cpu_ratio, 1, 1)}x less)"
            )
    ratios = [v["ratio"] for v in summary["throughput"].values() if v["ratio"]]
    if ratios:
        met = all(r >= TARGET_RATIO for r in ratios)
        summary["targets"]["throughput_10x"] = met
        say(
            f"    target >= {TARGET_RATIO:.0f}x MLServer's throughput: {'met' if met else 'NOT met'}"
            " (" + ", ".join(f"{m} {v['ratio']:.1f}x" for m, v in summary["throughput"].items()) + ")"
        )
    say("")

    # (2) open loop
    rate = int(float(env["rate"]))
    say(
        f"(2) latency at a fixed {rate:,} requests/s, open loop: oha -q {rate} --latency-correction,"
        f" {env['open_connections']} connections, {env['duration']} s"
    )
    say("    latency is counted from when each request was due, so a server falling behind shows it")
    say(
        f"    {'model':<7} {'server':<30} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'p99.9':>8}"
        f" {'max ms':>8} {'us/req':>8} {'others':>6}"
    )
    p99_ok = []
    for model in models:
        rows = [e for e in passes if e["model"] == model and e["scenario"] == "serve" and e["mode"] == "open"]
        rows.sort(key=lambda e: (e["server"] != "keelson", e["setting"]))
        first = True
        for entry in rows:
            r = entry["result"]
            label = entry["server"] + (f" {entry['setting']}" if entry["setting"] else "")
            if entry["server"] == "mlserver" and model in best_mlserver and entry["setting"] == best_mlserver[model]["setting"]:
                label += " *"
            say(
                f"    {model if first else '':<7} {label:<30} {num(r['rps'], 9)} {num(r['p50_ms'], 8, 3)}"
                f" {num(r['p90_ms'], 8, 3)} {num(r['p99_ms'], 8, 3)} {num(r['p999_ms'], 8, 3)}"
                f" {num(r['max_ms'], 8, 2)} {num(r['server_us_per_req'], 8)} {num(r['others_pct'], 5, 0)}%"
                f"{invalid(entry)}"
            )
            first = False
        keelson = next((e for e in rows if e["server"] == "keelson"), None)
        mls = next(
            (e for e in rows if model in best_mlserver and e["setting"] == best_mlserver[model]["setting"]), None
        )
        entry = {}
        if keelson:
            k = keelson["result"]
            entry["keelson"] = {x: k[x] for x in ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")}
            held = not failed(k) and k["rps"] >= 0.95 * rate
            p99_ok.append(held and k["p99_ms"] is not None and k["p99_ms"] < TARGET_P99_MS)
        if mls:
            m = mls["result"]
            entry["mlserver"] = {x: m[x] for x in ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")}
            entry["mlserver"]["setting"] = mls["setting"]
        summary["latency_at_rate"][model] = entry
    if p99_ok:
        met = all(p99_ok)
        summary["targets"]["p99_under_2ms_at_rate"] = met
        say(
            f"    target: Keelson p99 < {TARGET_P99_MS:g} ms at {rate:,} req/s: {'met' if met else 'NOT met'}"
            "   (* = the MLServer setting with the higher throughput in (1))"
        )
    say("")

    # (3) router
    router = [e for e in passes if e["scenario"] == "router"]
    if router:
        say("(3) Keelson router: endpoint `router` with three deployments of the logreg version, JSON")
        say("    direct = header x-keelson-deployment: blue (no traffic split drawn); routed = blue 90 / green 10;")
        say("    + mirror = also 10% of requests copied to `shadow` (answers recorded, never returned).")
        say("    overhead = the row minus direct: server CPU per request (closed loop) and latency at the rate.")
        say(
            f"    {'variant':<28} {'req/s':>9} {'us/req':>8} {'+us/req':>8} | {rate:,}/s: {'p50 ms':>7} {'p99 ms':>7}"
            f" {'+p50 us':>8} {'+p99 us':>8} | deployments hit (closed loop)"
        )
        direct_c = find(id="keelson-closed-router-direct")
        direct_o = find(id="keelson-open-router-direct")
        for variant, label in (("direct", "direct (header)"), ("routed", "routed 90/10"), ("mirror", "routed 90/10 + mirror 10%")):
            c, o = find(id=f"keelson-closed-router-{variant}"), find(id=f"keelson-open-router-{variant}")
            if not c or not o:
                continue
            rc, ro = c["result"], o["result"]
            d_cpu = d_p50 = d_p99 = None
            if direct_c and rc["server_us_per_req"] and direct_c["result"]["server_us_per_req"]:
                d_cpu = rc["server_us_per_req"] - direct_c["result"]["server_us_per_req"]
            if direct_o and ro["p50_ms"] is not None:
                d_p50 = (ro["p50_ms"] - direct_o["result"]["p50_ms"]) * 1000
                d_p99 = (ro["p99_ms"] - direct_o["result"]["p99_ms"]) * 1000
            hits = stats_delta(work, f"{variant}_closed") or {}
            total = sum(v["requests"] for v in hits.values()) or 1
            hit_text = ", ".join(
                f"{name} {v['requests'] / total * 100:.0f}%"
                + (f" ({v['mirrored_requests']:,} mirrored)" if v["mirrored_requests"] else "")
                for name, v in sorted(hits.items())
                if v["requests"]
            )
            marks = invalid(c) + invalid(o)
            say(
                f"    {label:<28} {num(rc['rps'], 9)} {num(rc['server_us_per_req'], 8)}"
                f" {num(d_cpu, 8) if variant != 'direct' else '':>8} | {'':>7}{num(ro['p50_ms'], 7, 3)}"
                f" {num(ro['p99_ms'], 7, 3)} {num(d_p50, 8, 0) if variant != 'direct' else '':>8}"
                f" {num(d_p99, 8, 0) if variant != 'direct' else '':>8} | {hit_text}{marks}"
            )
            summary["router"][variant] = {
                "closed_rps": rc["rps"],
                "server_us_per_req": rc["server_us_per_req"],
                "overhead_us_per_req_cpu": d_cpu,
                "p50_ms_at_rate": ro["p50_ms"],
                "p99_ms_at_rate": ro["p99_ms"],
                "overhead_p50_us_at_rate": d_p50,
                "overhead_p99_us_at_rate": d_p99,
                "deployments_hit": hits,
            }
        say("")

    # (4) collector
    say("(4) Keelson data collector: deployment with \"collect\": {\"sample_rate\": 1.0} vs the plain logreg rows")
    c, o = find(id="keelson-closed-collect"), find(id="keelson-open-collect")
    base_c, base_o = find(id="keelson-closed-logreg-json"), find(id="keelson-open-logreg-json")
    if c and o and base_c and base_o:
        rc, ro = c["result"], o["result"]
        d_cpu = (
            rc["server_us_per_req"] - base_c["result"]["server_us_per_req"]
            if rc["server_us_per_req"] and base_c["result"]["server_us_per_req"]
            else None
        )
        d_p50 = (ro["p50_ms"] - base_o["result"]["p50_ms"]) * 1000
        d_p99 = (ro["p99_ms"] - base_o["result"]["p99_ms"]) * 1000
        say(
            f"    {'collect 100%':<28} {num(rc['rps'], 9)} req/s, {num(rc['server_us_per_req'], 1)} us/req"
            f" ({num(d_cpu, 1)} us vs plain); at {rate:,}/s p50 {num(ro['p50_ms'], 1, 3)} ms"
            f" ({num(d_p50, 1, 0)} us), p99 {num(ro['p99_ms'], 1, 3)} ms ({num(d_p99, 1, 0)} us)"
            f"{invalid(c)}{invalid(o)}"
        )
        summary["collector"] = {
            "available": True,
            "closed_rps": rc["rps"],
            "server_us_per_req": rc["server_us_per_req"],
            "overhead_us_per_req_cpu": d_cpu,
            "p50_ms_at_rate": ro["p50_ms"],
            "p99_ms_at_rate": ro["p99_ms"],
            "overhead_p50_us_at_rate": d_p50,
            "overhead_p99_us_at_rate": d_p99,
        }
    else:
        note = env.get("collect_note") or "not measured"
        say(f"    {note}")
        summary["collector"] = {"available": False, "note": note}
    say("")

    say(
        "note: oha and the server share this machine's cores in every pass, for both servers alike: the"
    )
    say("      comparison is fair, the absolute numbers are lower than with a separate load host.")
    if problems:
        say("")
        say("problems")
        for p in problems:
            say("  " + p)

    text = "\n".join(lines)
    print(text)
    out.write_text(
        json.dumps(
            {"env": env, "models": manifest["models"], "summary": summary, "passes": passes, "problems": problems},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
