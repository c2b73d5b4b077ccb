#!/usr/bin/python3
"""The Grafana dashboard is valid JSON and every metric its queries name is in a metrics file.

usage: tests/dashboard-check.py DASHBOARD.json METRICS.prom [--samples NAME-PREFIX...]

Each metric an expression names must be declared (# TYPE) in METRICS.prom; with --samples,
those whose names start with one of the prefixes must have at least one sample too. Exit 0, or
1 naming what is missing.
"""
import json
import re
import sys


def main():
    dashboard, metrics = sys.argv[1], sys.argv[2]
    prefixes = sys.argv[sys.argv.index("--samples") + 1:] if "--samples" in sys.argv else []
    with open(dashboard, encoding="utf-8") as f:
        d = json.load(f)  # invalid JSON fails here
    exprs = [t["expr"] for p in d.get("panels", []) for t in p.get("targets", [])]
    exprs += [v["query"] for v in d.get("templating", {}).get("list", []) if v.get("type") == "query"]
    named = sorted({m for e in exprs for m in re.findall(r"\bmcpsec_[a-z0-9_]+", e)})
    with open(metrics, encoding="utf-8") as f:
        text = f.read()
    declared = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    sampled = set(re.findall(r"^(mcpsec_[a-z0-9_]+)\{", text, re.M))
    problems = [f"{m}: not in {metrics}" for m in named if m not in declared]
    problems += [f"{m}: no sample in {metrics}" for m in named
                 if m in declared and m not in sampled and any(m.startswith(p) for p in prefixes)]
    if not named:
        problems.append("the dashboard names no mcpsec metric")
    for p in problems:
        print(p)
    if not problems:
        print(f"{len(d['panels'])} panels, {len(named)} metrics, all in {metrics}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
