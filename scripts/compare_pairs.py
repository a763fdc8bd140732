#!/usr/bin/env python3
"""Per listener-run figures of a compared loop setting, and two settings paired.

    compare_pairs.py csv runs/compare/base_cand05_liked > docs/data/pilot/base_cand05_liked.csv
    compare_pairs.py pair A B

`csv` writes one row per listener-run (seed, listener) of a setting that
scripts/compare_loops.sh ran (its finished seed-*/summary.json files): the change of the listener's
mean rating after iterations 1-3 against their iteration 0 and the variety of each
iteration's batch (mean sound-profile distance, dB). The run folders stay on the machine
that made them; such a file is small enough to keep, so later settings can be paired with
it. `pair` pairs setting B against setting A (each a setting folder or such a file) by seed
and listener: the mean difference of Δ at each iteration with its sd, how many listener-runs
gain and lose, and a two-sided sign-flip permutation p (20,000 draws, seeded), then the same
for variety. Standard library only.
"""

import csv
import json
import pathlib
import random
import statistics
import sys

ITERATIONS = (1, 2, 3)
FIELDS = (["seed", "listener"] + [f"delta{i}" for i in ITERATIONS] +
          [f"variety_db{i}" for i in (0,) + ITERATIONS])


def rows_of(source):
    """{(seed, listener): {field: float or None}} from a setting folder or a CSV file."""
    path = pathlib.Path(source)
    rows = {}
    if path.is_file():
        with path.open(newline="") as f:
            for r in csv.DictReader(f):
                rows[(r["seed"], r["listener"])] = {
                    k: (float(r[k]) if r[k] not in ("", None) else None) for k in FIELDS[2:]}
        return rows
    # Only finished runs: a run writes summary.json after every listener.
    runs = sorted(r for r in path.glob("seed-*/summary.json") if (r.parent / "finished").exists())
    if not runs:
        sys.exit(f"compare_pairs: no finished run (seed-*/summary.json and seed-*/finished) under {path}")
    for run in runs:
        seed = run.parent.name.removeprefix("seed-")
        for name, l in json.loads(run.read_text())["per_listener"].items():
            delta, variety = l.get("delta_vs_base", {}), l.get("variety_db", {})
            r = {f"delta{i}": delta.get(str(i)) for i in ITERATIONS}
            r.update({f"variety_db{i}": variety.get(str(i)) for i in (0,) + ITERATIONS})
            rows[(seed, name)] = r
    return rows


def write_csv(source):
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(FIELDS)
    for (seed, name), r in sorted(rows_of(source).items()):
        out.writerow([seed, name] + ["" if r[k] is None else f"{r[k]:.4f}" for k in FIELDS[2:]])


def sign_flip_p(diffs, draws=20000, seed=1):
    """Two-sided p of the mean difference under random signs (paired permutation test)."""
    observed = abs(statistics.mean(diffs))
    rng = random.Random(seed)
    hits = sum(abs(sum(d if rng.random() < 0.5 else -d for d in diffs)) / len(diffs) >= observed - 1e-12
               for _ in range(draws))
    return (hits + 1) / (draws + 1)


def pair(a_source, b_source):
    a, b = rows_of(a_source), rows_of(b_source)
    keys = sorted(set(a) & set(b))
    if not keys:
        sys.exit("compare_pairs: the two settings share no (seed, listener)")
    print(f"{pathlib.Path(b_source).stem} against {pathlib.Path(a_source).stem}: "
          f"{len(keys)} listener-runs paired by seed and listener")
    print("| figure | mean difference | sd | gain / lose | p (sign flip) |")
    print("|---|---|---|---|---|")
    for field in [f"delta{i}" for i in ITERATIONS] + [f"variety_db{i}" for i in (0,) + ITERATIONS]:
        diffs = [b[k][field] - a[k][field] for k in keys
                 if a[k][field] is not None and b[k][field] is not None]
        if len(diffs) < 2:
            continue
        gain, lose = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
        print(f"| {field} | {statistics.mean(diffs):+.3f} | {statistics.stdev(diffs):.3f} | "
              f"{gain} / {lose} | {sign_flip_p(diffs):.3g} |")


def main(argv):
    if len(argv) == 3 and argv[1] == "csv":
        write_csv(argv[2])
    elif len(argv) == 4 and argv[1] == "pair":
        pair(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
