"""Appends one CPU-accounting mark to a JSON-lines file, so the report can tell how much CPU
processes other than the benchmark's own used between two marks (this machine may be shared).

usage: cpumark.py mark  OUT.jsonl ROOT_PID NAME   append a mark
       cpumark.py share OUT.jsonl NAME            print the percentage of all cores that other
                                                  processes used between marks NAME:start and
                                                  NAME:end (the last such pair)

A mark holds the machine's busy CPU time (/proc/stat) and the CPU time of ROOT_PID's process tree
(bench/mlflow_compare: the servers, clients, wrk and samplers). Children that have exited are in
their parent's cutime/cstime once reaped, so the sum over the live tree covers them too.
"""

import json
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_s():
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK


def tree_cpu_s(root):
    children, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        # utime stime cutime cstime are fields 14-17 of stat; after the ")" split, 11-14.
        times[int(entry)] = sum(int(v) for v in fields[11:15])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / TICK


def share(path, name):
    marks = {}
    with open(path) as handle:
        for line in handle:
            mark = json.loads(line)
            marks[mark["name"]] = mark
    start, end = marks[f"{name}:start"], marks[f"{name}:end"]
    foreign = (end["machine_busy_s"] - start["machine_busy_s"]) - (
        end["bench_cpu_s"] - start["bench_cpu_s"]
    )
    return max(0.0, foreign / ((end["time"] - start["time"]) * end["cpus"])) * 100


def main():
    if sys.argv[1] == "share":
        print(f"{share(sys.argv[2], sys.argv[3]):.1f}")
        return
    out, root, name = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    mark = {
        "name": name,
        "time": time.time(),
        "cpus": os.cpu_count(),
        "machine_busy_s": machine_busy_s(),
        "bench_cpu_s": tree_cpu_s(root),
    }
    with open(out, "a") as handle:
        handle.write(json.dumps(mark) + "\n")


if __name__ == "__main__":
    main()
