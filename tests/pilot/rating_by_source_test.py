#!/usr/bin/env python3
"""scripts/rating_by_source.py on a made-up setting: each evaluation rating is counted once
under its track's source (a variation of a liked track, a crossover, seeded from songs, or fresh), the
training-phase ratings and a run still going are left out, and the means against iteration
0's are right. Standard library only; exits 1 with a message on the first failure."""
import json
import pathlib
import sqlite3
import subprocess
import sys
import tempfile

script = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "rating_by_source.py"
HEADER = "participant,phase,kind,iteration,track_id,position,stars\n"


def write_run(run, finished=True):
    """One seed's run: two participants; tracks 1-2 at iteration 0 (fresh), 3 fresh, 4 a
    variation, 5 song-seeded, 6 a crossover at iteration 1."""
    params = {1: {}, 2: {}, 3: {"seeded": False}, 4: {"seeded": True, "variation_of": 1}, 5: {"seeded": True},
              6: {"seeded": True, "crossover_of": [1, 2]}}
    lines = [HEADER]
    for who, shift in (("calm", 0.0), ("bright", 1.0)):
        data = run / "participants" / who / "data"
        data.mkdir(parents=True)
        con = sqlite3.connect(data / "tuneloop.db")
        con.execute("CREATE TABLE tracks (id INTEGER PRIMARY KEY, params_json TEXT NOT NULL DEFAULT '{}')")
        con.executemany("INSERT INTO tracks VALUES (?, ?)", [(i, json.dumps(p)) for i, p in params.items()])
        con.commit()
        con.close()
        stars = {1: 2, 2: 3, 3: 3, 4: 4, 5: 1, 6: 5}
        for tid, it in ((1, 0), (2, 0), (3, 1), (4, 1), (5, 1), (6, 1)):
            lines.append(f"{who},evaluation,rating,{it},{tid},0,{stars[tid] + shift}\n")
            lines.append(f"{who},training,rating,{it},{tid},0,5\n")  # not the blinded ratings
    (run / "events.csv").write_text("".join(lines))
    if finished:
        (run / "finished").touch()


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)


with tempfile.TemporaryDirectory() as tmp:
    setting = pathlib.Path(tmp) / "setting"
    write_run(setting / "seed-1")
    write_run(setting / "seed-2")
    write_run(setting / "seed-3", finished=False)
    r = subprocess.run([sys.executable, str(script), str(setting)], capture_output=True, text=True)
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
    rows = {}
    for line in r.stdout.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[(cells[0], cells[1])] = cells[2:]
    # Iteration 0: stars 2, 3 (calm) and 3, 4 (bright), twice over: mean 3.0.
    check(rows.get(("0", "fresh")) == ["8", "3.00", "+0.00"], f"iteration 0: {rows.get(('0', 'fresh'))}")
    check(rows.get(("1", "fresh")) == ["4", "3.50", "+0.50"], f"fresh: {rows.get(('1', 'fresh'))}")
    check(rows.get(("1", "variation")) == ["4", "4.50", "+1.50"], f"variation: {rows.get(('1', 'variation'))}")
    check(rows.get(("1", "song")) == ["4", "1.50", "-1.50"], f"song: {rows.get(('1', 'song'))}")
    check(rows.get(("1", "crossover")) == ["4", "5.50", "+2.50"], f"crossover: {rows.get(('1', 'crossover'))}")
    check(len(rows) == 5, f"rows: {sorted(rows)}")
    # One run folder alone reads the same figures from half the ratings.
    r = subprocess.run([sys.executable, str(script), str(setting / "seed-1")], capture_output=True, text=True)
    check("| 1 | variation | 2 | 4.50 | +1.50 |" in r.stdout, r.stdout)
    # A folder with no finished run is an error that names it.
    empty = pathlib.Path(tmp) / "empty"
    empty.mkdir()
    r = subprocess.run([sys.executable, str(script), str(empty)], capture_output=True, text=True)
    check(r.returncode == 1 and "empty: no finished run" in r.stderr, r.stderr)
print("rating_by_source: ok")
