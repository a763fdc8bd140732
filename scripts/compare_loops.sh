#!/usr/bin/env bash
# Runs the default pilot study under several loop settings and seeds, one run at a time,
# then pools each setting's runs into one report over all listener-runs (tuneloop pilot
# pool). Long: about 10 minutes a run on 2 idle cores. Results: runs/compare/<setting>/, and
# runs/compare/<setting>.csv per listener-run (scripts/compare_pairs.py pairs two settings).
#   bash scripts/compare_loops.sh                      # every setting below, 3 seeds
#   SETTINGS="today kto" SEEDS="20260601" bash scripts/compare_loops.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TUNELOOP_BIN:-build/daemon}
study=${STUDY:-studies/default.yaml}
out=${OUT:-runs/compare}
seeds=${SEEDS:-"20260601 20260602 20260603"}
mkdir -p "$out"

# name -> tuneloopd settings over the study's daemon_config
declare -A setting=(
  [today]="training.init=parent training.objective=sft generation.candidates=1 model.adapter_strength=1 generation.liked_fraction=0"
  [strength05]="training.init=parent training.objective=sft generation.candidates=1 model.adapter_strength=0.5 generation.liked_fraction=0"
  [strength07]="training.init=parent training.objective=sft generation.candidates=1 model.adapter_strength=0.7 generation.liked_fraction=0"
  [parent_cand]="training.init=parent training.objective=sft generation.candidates=4 model.adapter_strength=1 generation.liked_fraction=0"
  [base]="training.init=base training.objective=sft generation.candidates=1 model.adapter_strength=1 generation.liked_fraction=0"
  [base_cand]="training.init=base training.objective=sft generation.candidates=4 model.adapter_strength=1 generation.liked_fraction=0"
  [base_cand05]="training.init=base training.objective=sft generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0"
  [base_cand05_liked]="training.init=base training.objective=sft generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.25"
  [base_cand05_liked05]="training.init=base training.objective=sft generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.5"
  [kto_cand]="training.init=base training.objective=kto generation.candidates=4 model.adapter_strength=1 generation.liked_fraction=0"
  [dpo_cand05]="training.init=base training.objective=dpo generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0"
  [dpo_cand05_liked]="training.init=base training.objective=dpo generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.25"
  [base_cand05_liked05_img05]="training.init=base training.objective=sft generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.5 generation.strength=0.5"
  [base05_liked05]="training.init=base training.objective=sft generation.candidates=1 model.adapter_strength=0.5 generation.liked_fraction=0.5"
  [kto05_liked05]="training.init=base training.objective=kto generation.candidates=1 model.adapter_strength=0.5 generation.liked_fraction=0.5"
  [kto_cand05_liked05]="training.init=base training.objective=kto generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.5"
  [kto_cand07_liked05]="training.init=base training.objective=kto generation.candidates=4 model.adapter_strength=0.7 generation.liked_fraction=0.5"
  [kto_cand035_liked05]="training.init=base training.objective=kto generation.candidates=4 model.adapter_strength=0.35 generation.liked_fraction=0.5"
  [kto_parent_cand05_liked05]="training.init=parent training.objective=kto generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.5"
  [kto_cand05_liked05_p50]="training.init=base training.objective=kto generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.5 dataset.percentile=50 dataset.negative_percentile=50"
  [kto_cand05_liked05_tags]="training.init=base training.objective=kto generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.5 generation.learn_tags=true"
  [kto_cand05_liked05_cross025]="training.init=base training.objective=kto generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.5 generation.crossover_fraction=0.25"
  [kto_cand05_liked]="training.init=base training.objective=kto generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0.25"
  [rwr_cand05]="training.init=base training.objective=rwr generation.candidates=4 model.adapter_strength=0.5 generation.liked_fraction=0"
)
names=${SETTINGS:-"today strength05 base_cand base_cand05 base_cand05_liked base_cand05_liked05 base_cand05_liked05_img05 base05_liked05 kto05_liked05 kto_cand kto_cand05_liked kto_cand05_liked05 kto_cand07_liked05 kto_cand035_liked05 kto_parent_cand05_liked05 kto_cand05_liked05_p50 kto_cand05_liked05_tags kto_cand05_liked05_cross025 dpo_cand05 dpo_cand05_liked rwr_cand05 parent_cand base strength07"}

for seed in $seeds; do
  for name in $names; do
    dir="$out/$name/seed-$seed"
    # A run writes summary.json after every listener, so only a finished run is skipped; an
    # interrupted one (no marker) starts again.
    if [[ -f "$dir/finished" ]]; then continue; fi
    rm -rf "$dir"
    sets=()
    for s in ${setting[$name]}; do sets+=(--set "$s"); done
    echo "compare: $name seed $seed" >&2
    start=$(date +%s)
    "$bin/tuneloop" pilot run "$study" --daemon "$bin/tuneloopd" --seed "$seed" --no-plots \
      --out "$dir" "${sets[@]}" > "$out/$name-$seed.log" 2>&1 && touch "$dir/finished" ||
      echo "compare: $name seed $seed failed" >&2
    echo "compare: $name seed $seed took $(( $(date +%s) - start )) s" >&2
  done
done
for name in $names; do
  runs=()
  for run in "$out/$name"/seed-*; do [[ -f "$run/finished" ]] && runs+=("$run"); done
  ((${#runs[@]} > 0)) || continue
  "$bin/tuneloop" pilot pool "${runs[@]}" --study "$study" --out "$out/$name/pooled" --no-plots \
    > "$out/$name/pooled.md" 2>&1 || true
  python3 scripts/compare_pairs.py csv "$out/$name" > "$out/$name.csv"  # per listener-run, to keep
done
python3 scripts/compare_table.py "$out" > "$out/table.md"
