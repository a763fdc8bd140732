#!/usr/bin/env python3
"""scripts/compare_pairs.py on two made-up settings: the per listener-run file carries every
figure, and pairing by seed and listener finds a difference that is there and none that is
not. Standard library only; exits 1 with a message on the first failure."""
import csv
import io
import json
import pathlib
import subprocess
import sys
import tempfile

script = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "compare_pairs.py"
listeners = ["calm", "bright", "dark", "loud", "sparse", "dense"]
seeds = ["101", "102"]


def write_setting(root, name, delta_of):
    """A setting folder as compare_loops.sh leaves it: seed-*/summary.json per seed."""
    for seed in seeds:
        per = {}
        for i, who in enumerate(listeners):
            per[who] = {"delta_vs_base": {str(it): delta_of(int(seed), i, it) for it in (1, 2, 3)},
                        "variety_db": {str(it): 6.0 + 0.1 * i for it in (0, 1, 2, 3)}}
        path = root / name / f"seed-{seed}"
        path.mkdir(parents=True)
        (path / "summary.json").write_text(json.dumps({"per_listener": per}))
        (path / "finished").touch()
    # A run still going (summary.json written, no marker) is left out.
    going = root / name / "seed-103"
    going.mkdir()
    (going / "summary.json").write_text(json.dumps({"per_listener": {"calm": {"delta_vs_base": {"1": 9.0}}}}))
    return root / name


def run(*args):
    r = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compare_pairs {' '.join(map(str, args))} failed: {r.stderr}")
    return r.stdout


def row(table, figure):
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == figure:
            return cells
    sys.exit(f"no row '{figure}' in:\n{table}")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)


with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    # Listener-runs spread widely; B gains 0.5 over A at iteration 2 for every one of them and
    # ties at iteration 1 up to a sign that alternates.
    spread = lambda seed, i: (seed - 100) * 0.3 + (i - 2.5) * 0.4
    a = write_setting(root, "a", lambda seed, i, it: spread(seed, i) + 0.1 * it)
    b = write_setting(root, "b", lambda seed, i, it: spread(seed, i) + 0.1 * it +
                      (0.5 if it == 2 else (0.05 if i % 2 else -0.05) if it == 1 else 0.0))

    kept = run("csv", b)
    rows = list(csv.DictReader(io.StringIO(kept)))
    check(len(rows) == len(seeds) * len(listeners), f"{len(rows)} rows, want 12")
    first = next(r for r in rows if r["seed"] == "101" and r["listener"] == "calm")
    check(abs(float(first["delta2"]) - (spread(101, 0) + 0.7)) < 1e-3, f"calm's delta2 {first['delta2']}")
    check(first["variety_db0"] == "6.0000", f"calm's variety at iteration 0 {first['variety_db0']}")
    kept_file = root / "b.csv"
    kept_file.write_text(kept)

    for against in (b, kept_file):  # the folder and the kept file pair the same
        table = run("pair", a, against)
        check("12 listener-runs" in table, "not all listener-runs paired:\n" + table)
        d2 = row(table, "delta2")
        check(d2[1] == "+0.500" and d2[2] == "0.000" and d2[3] == "12 / 0", f"delta2 row {d2}")
        check(float(d2[4]) < 0.01, f"a difference in every listener-run, p {d2[4]}")
        d1 = row(table, "delta1")
        check(abs(float(d1[1])) < 1e-3 and d1[3] == "6 / 6", f"delta1 row {d1}")
        check(float(d1[4]) > 0.5, f"no difference, p {d1[4]}")
        check(abs(float(row(table, "variety_db3")[1])) < 1e-3, "variety differs")

    # Settings with no listener-run in common are refused, not paired as empty.
    other = root / "other"
    (other / "seed-999").mkdir(parents=True)
    (other / "seed-999" / "summary.json").write_text(json.dumps({"per_listener": {"calm": {}}}))
    (other / "seed-999" / "finished").touch()
    r = subprocess.run([sys.executable, str(script), "pair", str(a), str(other)], capture_output=True, text=True)
    check(r.returncode != 0 and "share no" in r.stderr, "disjoint settings were paired")
print("compare_pairs: per listener-run file and pairing as expected")
