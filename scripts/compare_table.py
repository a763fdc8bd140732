#!/usr/bin/env python3
"""One table over the settings that scripts/compare_loops.sh ran: for each setting, pooled
over its seeds (runs/compare/<setting>/pooled/summary.json, else its single run), the mean
rating change after iterations 1-3 with 95 % CI and Wilcoxon p, the worst listener's mean
change at iteration 2 (over seeds), and variety as heard (relative to iteration 0) with the
share of near-duplicate pairs. Usage: compare_table.py [runs/compare]"""
import json
import pathlib
import statistics
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/compare")


def summary_of(setting):
    pooled = setting / "pooled" / "summary.json"
    if pooled.exists():
        return json.loads(pooled.read_text()), len(list(setting.glob("seed-*/summary.json")))
    runs = sorted(setting.glob("seed-*/summary.json"))
    return (json.loads(runs[0].read_text()), 1) if runs else (None, 0)


def fmt(v, digits=2, sign=False):
    if v is None:
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


rows = []
for setting in sorted(p for p in root.iterdir() if p.is_dir()):
    s, seeds = summary_of(setting)
    if s is None:
        continue
    cells = [setting.name, str(seeds), str(len(s["participants"]))]
    for it in (1, 2, 3):
        r = next((x for x in s["per_iteration"] if x["iteration"] == it), None)
        v = r["vs_base"] if r and "mean_delta" in r.get("vs_base", {}) else None
        cells.append("–" if v is None else
                     f"{fmt(v['mean_delta'], sign=True)} [{fmt(v['ci_lower'], sign=True)}, "
                     f"{fmt(v['ci_upper'], sign=True)}] p={v['wilcoxon']['p_value']:.3g}")
    # Each listener's mean change at iteration 2 over the seeds they took part in.
    by_name = {}
    for name, l in s["per_listener"].items():
        d = l.get("delta_vs_base", {}).get("2")
        if d is not None:
            by_name.setdefault(name.split("/")[-1], []).append(d)
    worst = min(by_name.items(), key=lambda kv: statistics.mean(kv[1])) if by_name else None
    cells.append("–" if worst is None else f"{worst[0]} {statistics.mean(worst[1]):+.2f}")
    variety = {r["iteration"]: r for r in s.get("variety", [])}
    cells.append(" / ".join(fmt(variety.get(i, {}).get("relative_to_base")) for i in (1, 2, 3)))
    cells.append(" / ".join(fmt(variety.get(i, {}).get("mean_distance_db"), 1) for i in (0, 1, 2, 3)))
    cells.append(" / ".join(fmt(variety.get(i, {}).get("near_duplicate_share")) for i in (0, 1, 2, 3)))
    rows.append(cells)

print("| setting | seeds | listener-runs | Δ1 [95 % CI] p | Δ2 [95 % CI] p | Δ3 [95 % CI] p | "
      "worst listener Δ2 | variety 1 / 2 / 3 (of iteration 0's) | variety 0 / 1 / 2 / 3 (dB) | "
      "near-duplicates 0 / 1 / 2 / 3 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
