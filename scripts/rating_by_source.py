#!/usr/bin/env python3
"""Where a loop setting's gain comes from: the blinded ratings of each iteration's tracks
by where they started.

    rating_by_source.py runs/compare/kto_cand05_liked05 [more setting or run folders]

Each argument is a setting folder that scripts/compare_loops.sh wrote (its finished
seed-* runs are read) or one finished `tuneloop pilot run` folder. A track is a *variation* when it was
made from a liked track (`variation_of` in its parameters), *crossover* when it started
from the merge of two liked tracks (`crossover_of`), *song* when it was seeded from
the listener's songs, else *fresh* (drawn from noise, with that iteration's adapter). For
each iteration and source it prints how many evaluation ratings there are, their mean and
that mean minus the mean of iteration 0's ratings (all listener-runs pooled, each rating
once). Reads each participant's tuneloop.db (SQLite) and the run's events.csv. Standard
library only.
"""

import collections
import csv
import json
import pathlib
import sqlite3
import sys


def runs_of(folder):
    folder = pathlib.Path(folder)
    if (folder / "events.csv").exists():
        return [folder]
    return sorted(p for p in folder.glob("seed-*") if (p / "finished").exists())  # a run still going is left out


def source_of(params):
    if params.get("variation_of"):
        return "variation"
    if params.get("crossover_of"):
        return "crossover"
    return "song" if params.get("seeded") else "fresh"


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    ratings = collections.defaultdict(list)  # (iteration, source) -> stars
    for folder in argv[1:]:
        runs = runs_of(folder)
        if not runs:
            print(f"rating_by_source: {folder}: no finished run", file=sys.stderr)
            return 1
        for run in runs:
            sources = {}
            for db in sorted(run.glob("participants/*/data/tuneloop.db")):
                participant = db.parts[-3]
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                for track_id, params in con.execute("SELECT id, params_json FROM tracks"):
                    sources[(participant, track_id)] = source_of(json.loads(params or "{}"))
                con.close()
            with open(run / "events.csv", newline="") as f:
                for row in csv.DictReader(f):
                    if row["phase"] != "evaluation" or row["kind"] != "rating" or not row["stars"]:
                        continue
                    key = (row["participant"], int(row["track_id"]))
                    ratings[(int(row["iteration"]), sources.get(key, "unknown"))].append(float(row["stars"]))
    base = [s for (it, _), v in ratings.items() if it == 0 for s in v]
    base_mean = sum(base) / len(base) if base else float("nan")
    print("| iteration | source | ratings | mean stars | minus iteration 0's |")
    print("|---|---|---|---|---|")
    for (it, source) in sorted(ratings):
        v = ratings[(it, source)]
        mean = sum(v) / len(v)
        print(f"| {it} | {source} | {len(v)} | {mean:.2f} | {mean - base_mean:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
