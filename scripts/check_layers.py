#!/usr/bin/env python3
"""Layering check: derives the folder graph from the #include lines of the
code (not tests/ or bench/) and fails on any edge that docs/architecture.md's
folder table does not list, on a cycle in that table, and on the two
single-owner headers leaving their folder (microhttpd.h only in api/,
sqlite3.h only in storage/).

The table is the one under "## Folders": rows `| `name/` | what | deps |`,
deps a comma-separated list of folder names (or "—" for none).
Usage: scripts/check_layers.py [SOURCE_ROOT]; exit 1 with one line a problem.
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
SKIP = {"tests", "bench", "build", "docs", "scripts", "systemd", ".git"}
OWNED = {"microhttpd.h": "api", "sqlite3.h": "storage"}


def read_table():
    text = open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8").read()
    sec = re.search(r"^## Folders\n(.*?)(?=^## )", text, re.S | re.M)
    if not sec:
        sys.exit("check_layers: docs/architecture.md has no '## Folders' section")
    allowed = {}
    for line in sec.group(1).splitlines():
        m = re.match(r"\|\s*`([a-z_]+)/`\s*\|.*\|\s*([^|]*)\|\s*$", line)
        if not m:
            continue
        deps = set(re.findall(r"[a-z_]+", m.group(2))) - {"nothing", "of", "ours", "anything"}
        allowed[m.group(1)] = deps
    if not allowed:
        sys.exit("check_layers: no folder rows in docs/architecture.md's table")
    return allowed


def include_edges(folders):
    edges = {}
    owned_bad = []
    for folder in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, folder)
        # build trees (any name: build-asan, build-tsan...) hold generated
        # code such as api_assets.c, not a layer
        if folder in SKIP or not os.path.isdir(path) or \
                os.path.exists(os.path.join(path, "CMakeCache.txt")):
            continue
        for dirpath, _, files in os.walk(path):
            for f in files:
                if not f.endswith((".c", ".h", ".cc", ".cpp")):
                    continue
                fp = os.path.join(dirpath, f)
                rel = os.path.relpath(fp, ROOT)
                for n, line in enumerate(open(fp, encoding="utf-8", errors="replace"), 1):
                    m = re.match(r'\s*#\s*include\s*[<"]([^>"]+)[>"]', line)
                    if not m:
                        continue
                    inc = m.group(1)
                    if inc in OWNED and OWNED[inc] != folder:
                        owned_bad.append(f"{rel}:{n}: includes <{inc}>, which only {OWNED[inc]}/ may include")
                    quoted = '"' in m.group(0)
                    top = inc.split("/")[0]
                    if quoted and "/" in inc and top != folder and os.path.isdir(os.path.join(ROOT, top)):
                        edges.setdefault((folder, top), f"{rel}:{n}")
    return edges, owned_bad


def cycles(allowed):
    state, out = {}, []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(allowed.get(node, ())):
            if state.get(nxt) == 1:
                out.append(" -> ".join(stack[stack.index(nxt):] + [nxt]) if nxt in stack else f"{node} -> {nxt}")
            elif not state.get(nxt):
                visit(nxt, stack + [nxt])
        state[node] = 2

    for n in sorted(allowed):
        if not state.get(n):
            visit(n, [n])
    return out


def main():
    allowed = read_table()
    problems = []
    for c in cycles(allowed):
        problems.append(f"docs/architecture.md: the folder table has a cycle: {c}")
    edges, owned_bad = include_edges(allowed)
    problems += owned_bad
    for (src, dst), where in sorted(edges.items()):
        if src not in allowed:
            problems.append(f"{where}: folder {src}/ is not in docs/architecture.md's folder table")
        elif dst not in allowed[src]:
            problems.append(f"{where}: {src}/ -> {dst}/ is not a documented edge (docs/architecture.md, ## Folders)")
    for p in problems:
        print("check_layers: " + p)
    if problems:
        return 1
    print(f"check_layers: {len(edges)} folder edges, all documented; no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
