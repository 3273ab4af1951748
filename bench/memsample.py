"""Samples the memory of process trees until SIGTERM, then writes the peaks as JSON.

usage: memsample.py OUT.json LABEL=PID[:PATTERN] [...]

For each root PID it follows all descendants (mlflow's CLI process starts uvicorn, which starts
the worker processes, and a job runner with its huey consumers). With :PATTERN the tree measured
is that of the first descendant whose command line contains PATTERN (e.g. the uvicorn process,
to separate the request-serving processes from the rest). For each label it records:
  hwm_sum_mib   sum over every process ever seen in the tree of its VmHWM (the kernel's own
                peak-RSS counter, so peaks between samples are not missed; an upper bound on the
                tree's peak because the processes need not peak at the same moment)
  rss_peak_mib  the largest sum of VmRSS over the tree at one sample (every 0.5 s)
  pss_peak_mib  the same for Pss (shared pages divided among the processes sharing them), every
                5 s: /proc/PID/smaps_rollup walks the page tables, which must not load the
                machine being measured (sampling it ten times a second took most of a core)
"""

import json
import os
import signal
import sys
import time

INTERVAL_S = 0.5
RESCAN_TICKS = 10


def children_map():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree(root, children):
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, []))
    return pids


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def find_root(root, pattern, children):
    if pattern is None:
        return root
    return next((pid for pid in tree(root, children) if pattern in cmdline(pid)), None)


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    out = sys.argv[1]
    roots = {}
    for arg in sys.argv[2:]:
        label, spec = arg.split("=", 1)
        pid, _, pattern = spec.partition(":")
        roots[label] = (int(pid), pattern or None)
    hwm = {label: {} for label in roots}
    rss_peak = {label: 0 for label in roots}
    pss_peak = {label: 0 for label in roots}
    procs = {label: set() for label in roots}
    stop = False

    def on_term(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    tick = 0
    members = {label: [] for label in roots}
    while not stop:
        # The process trees change rarely (start-up, mlflow's job consumers); rescan them, and
        # read the costlier Pss, every RESCAN_TICKS ticks only.
        rescan = tick % RESCAN_TICKS == 0
        if rescan:
            children = children_map()
        for label, (root_pid, pattern) in roots.items():
            if rescan:
                root = find_root(root_pid, pattern, children)
                members[label] = tree(root, children) if root is not None else []
            rss_sum = pss_sum = 0
            for pid in members[label]:
                peak = status_kib(pid, "VmHWM")
                if peak is None:
                    continue
                procs[label].add(pid)
                hwm[label][pid] = max(hwm[label].get(pid, 0), peak)
                rss_sum += status_kib(pid, "VmRSS") or 0
                if rescan:
                    pss_sum += pss_kib(pid) or 0
            rss_peak[label] = max(rss_peak[label], rss_sum)
            pss_peak[label] = max(pss_peak[label], pss_sum)
        tick += 1
        time.sleep(INTERVAL_S)

    result = {
        label: {
            "processes": len(procs[label]),
            "hwm_sum_mib": round(sum(hwm[label].values()) / 1024, 1),
            "rss_peak_mib": round(rss_peak[label] / 1024, 1),
            "pss_peak_mib": round(pss_peak[label] / 1024, 1),
        }
        for label in roots
    }
    with open(out, "w") as handle:
        json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
