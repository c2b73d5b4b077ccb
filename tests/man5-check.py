#!/usr/bin/env python3
"""mcpsec.yaml(5) against the schemas, as TAP: the page renders without warnings, every key and
every enumerated value of site.schema.json and keys.schema.json is in it (in bold), and every
term it defines is a key or value of a schema (no invented keys)."""
import json
import os
import re
import subprocess
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
page = os.path.join(root, "doc/mcpsec.yaml.5")
n = 0
bad = 0


def result(ok, what, detail=""):
    global n, bad
    n += 1
    bad += not ok
    print(("ok" if ok else "not ok") + " %d - %s" % (n, what))
    for line in detail.splitlines():
        print("# " + line)


def walk(o, keys, values):
    """Every property name and every enum value under o."""
    if isinstance(o, dict):
        for k, v in o.get("properties", {}).items():
            keys.add(k)
            walk(v, keys, values)
        for e in o.get("enum", []):
            if isinstance(e, str):
                values.add(e)
        for k, v in o.items():
            if k not in ("properties", "enum"):
                walk(v, keys, values)
    elif isinstance(o, list):
        for x in o:
            walk(x, keys, values)


def bold_words(src):
    """The words mcpsec.yaml.5 sets in bold: .B, and the bold halves of .BR and .RB."""
    words = set()
    for line in src.splitlines():
        m = re.match(r'^\.(B|BR|RB|BI|IB) (.*)$', line)
        if not m:
            continue
        args = re.findall(r'"[^"]*"|\S+', m.group(2))
        args = [a.strip('"') for a in args]
        if m.group(1) == "B":
            args = [" ".join(args)]
            first = 0
        else:
            first = 0 if m.group(1) in ("BR", "BI") else 1
        for a in args[first::2] if m.group(1) != "B" else args:
            w = a.replace("\\-", "-").replace("\\fR", "").replace("\\fI", "").strip()
            words.add(w)
            words.update(w.replace(",", " ").split())
    return words


def terms(src):
    """The terms the page defines: the .B line after each .TP or .TQ."""
    out = []
    lines = src.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line in (".TP", ".TQ") and lines[i + 1].startswith(".B "):
            out.append(lines[i + 1][3:].replace("\\-", "-").strip())
    return out


src = open(page).read()
env = dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8")
p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True, env=env)
result(p.returncode == 0 and not p.stderr.strip(), "mcpsec.yaml(5) renders without warnings", p.stderr)

keys, values = set(), set()
for f in ("site.schema.json", "keys.schema.json"):
    walk(json.load(open(os.path.join(root, "schema", f))), keys, values)
bold = bold_words(src)
missing = sorted(k for k in keys if k not in bold)
result(not missing, "every key of site and keys schemas is in mcpsec.yaml(5) (%d keys)" % len(keys),
       "missing: %s" % missing if missing else "")
missing = sorted(v for v in values if v not in bold)
result(not missing, "every enumerated value of the schemas is in mcpsec.yaml(5) (%d values)" % len(values),
       "missing: %s" % missing if missing else "")
invented = sorted(t for t in terms(src) if t not in keys and t not in values)
result(not invented, "every term mcpsec.yaml(5) defines is a key or value of a schema (%d terms)" % len(terms(src)),
       "not in the schemas: %s" % invented if invented else "")
print("1..%d" % n)
sys.exit(1 if bad else 0)
