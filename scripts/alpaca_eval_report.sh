#!/usr/bin/env bash
# GRAPE on the AlpacaEval pool: score every generator's answer with the embedded target, select the
# best fit per instruction, and write the HTML report (plus its figures as PNG).
#
#   bash scripts/alpaca_eval_report.sh [N_INSTRUCTIONS] [OUT_DIR]
#
# N_INSTRUCTIONS: keep the first N distinct instructions (in file order) with all 15 generators'
# answers; default 805 = all 12,075 rows. OUT_DIR defaults to ./out/alpaca-eval-report.
# Scoring is the slow step (hours for all 805 on a 2-core CPU; see docs/report.md). It saves its work
# in parts next to the scores table, so running again with a larger N scores only the new instructions.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-805}"
out="${2:-out/alpaca-eval-report}"
source_file="${ALPACA_EVAL:-../shared/data/alpaca_eval/model_outputs.jsonl}"
grape=.venv/bin/grape
py=.venv/bin/python
mkdir -p "$out"

# 1. The subset: the file is ordered by generator, so "first N rows" would be one generator only;
#    keep instead every row whose instruction is among the first N distinct ones.
subset="$out/alpaca_eval_first${n}.jsonl"
$py - "$source_file" "$subset" "$n" <<'EOF'
import json, sys
source, target, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
kept, rows = {}, 0
with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as dst:
    for line in src:
        instruction = json.loads(line)["instruction"]
        if instruction not in kept and len(kept) < n:
            kept[instruction] = True
        if instruction in kept:
            dst.write(line)
            rows += 1
print(f"{target}: {len(kept)} instructions, {rows} rows")
EOF

# 2. Score (long layout: instruction/output/generator), niced because it takes the CPU for long.
time nice -n 10 $grape score "$subset" -o "$out/scores.parquet" --layout long
# 3. Select the best fit per instruction (GRAPE: highest mean log-prob per response token).
$grape select "$out/scores.parquet" -o "$out/selected.jsonl"
# 4. The report: one self-contained HTML file, and the same figures as PNG.
$grape report "$out/scores.parquet" --selection "$out/selected.jsonl" -o "$out/report.html" --png "$out/png"
