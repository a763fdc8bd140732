#!/usr/bin/env python3
"""Reads every #include "folder/…" in the code folders and fails if the folder-level graph
has a cycle (CMake targets can be acyclic while folders are not). Prints the graph.
Usage: check_layers.py [--print]"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
code = [p.name for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in
        {"build", "tests", "bench", "docs", "scripts", "studies", "ui", "runs", "node_modules"}
        and any(p.rglob("*.hpp")) | any(p.rglob("*.cpp"))]
include = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')
edges = {f: set() for f in code}
where = {}
for folder in code:
    for f in (root / folder).rglob("*"):
        if f.suffix not in {".cpp", ".hpp"} or "build" in f.parts:
            continue
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            m = include.match(line)
            if m and m.group(1) in edges and m.group(1) != folder:
                edges[folder].add(m.group(1))
                where.setdefault((folder, m.group(1)), f"{f.relative_to(root)}:{n}")

# Depth-first search for a cycle.
state, stack, cycle = {}, [], None


def visit(n):
    global cycle
    state[n] = 1
    stack.append(n)
    for m in sorted(edges[n]):
        if cycle:
            return
        if state.get(m) == 1:
            cycle = stack[stack.index(m):] + [m]
            return
        if m not in state:
            visit(m)
    stack.pop()
    state[n] = 2


for n in sorted(edges):
    if n not in state and not cycle:
        visit(n)

if "--print" in sys.argv or cycle:
    for n in sorted(edges):
        print(f"{n} -> {', '.join(sorted(edges[n])) or '(nothing of ours)'}")
if cycle:
    print("check_layers: folder cycle: " + " -> ".join(cycle))
    for a, b in zip(cycle, cycle[1:]):
        print(f"  {a} -> {b}: {where[(a, b)]}")
    sys.exit(1)
print(f"check_layers: {len(edges)} folders, no cycle")
