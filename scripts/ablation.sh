#!/usr/bin/env bash
# Equal-budget ablations on the synthetic benchmark (the model card's ablation tables). From the repository root:
#   bash scripts/ablation.sh rsam      # RSAM Table 11: SAM 2 decoder + T_G as a sparse token, +TWGM, +MMMD, RSAM
#   bash scripts/ablation.sh crobimu   # CroBIM-U Table V: base (RSAM), +UGF, +UDLR, full (RUS + UGF + UDLR)
# Every variant trains from scratch with the same config, input size, seed, data stream and number of steps,
# then `rrsis eval` scores it on the same synthetic test split. A variant with an eval.json in OUT is not
# run again (so the RSAM run is shared by both tables, and an interrupted script resumes). Settings (environment):
#   CONFIG=rsam-tiny SIZE=128 STEPS=1000 BATCH=4 N_EVAL=150 JOBS=2 (variants trained at once, one thread each)
#   EXTRA="..." more `rrsis train` options for every variant; OUT=runs/ablation
set -euo pipefail
TABLE=${1:?"usage: bash scripts/ablation.sh rsam|crobimu"}
CONFIG=${CONFIG:-rsam-tiny}
SIZE=${SIZE:-128}
STEPS=${STEPS:-1000}
BATCH=${BATCH:-4}
N_EVAL=${N_EVAL:-150}
JOBS=${JOBS:-2}
EXTRA=${EXTRA:-}
OUT=${OUT:-runs/ablation}
RRSIS=${RRSIS:-.venv/bin/rrsis}
case "$TABLE" in
  rsam) VARIANTS=("SAM 2 decoder + T_G token:--no-twgm --no-mmmd" "+TWGM:--no-mmmd" "+MMMD:--no-twgm"
                  "RSAM (TWGM + MMMD):") ;;
  crobimu) VARIANTS=("RSAM (TWGM + MMMD):" "+RUS +UGF:--ugf" "+RUS +UDLR:--udlr" "+RUS +UGF +UDLR:--rus --ugf --udlr") ;;
  *) echo "unknown table $TABLE (rsam or crobimu)" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
slug() { echo "$1" | tr -c 'A-Za-z0-9\n' '_'; }
train_eval() {
  local name=$1 flags=$2 dir
  dir="$OUT/$(slug "$name")"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 "$RRSIS" train --config "$CONFIG" --image-size "$SIZE" --steps "$STEPS" --batch "$BATCH" \
    --lr 1e-3 --warmup 50 --loss-weights 5,5,1,1 --seed 0 --threads 1 --ckpt-every 0 --ckpt-minutes 10 \
    --no-progress --out "$dir" $flags $EXTRA > "$dir.log" 2>&1 \
    || { [ -f "$dir/latest" ] && "$RRSIS" train --out "$dir" --resume --no-progress >> "$dir.log" 2>&1; }
  OMP_NUM_THREADS=1 "$RRSIS" eval --model "$dir/model.safetensors" --data "synthetic:test:$N_EVAL:$SIZE" \
    --clicks 0,1 --device cpu --out "$dir/eval.json" >> "$dir.log" 2>&1
}
running=0
for v in "${VARIANTS[@]}"; do
  name=${v%%:*}
  dir="$OUT/$(slug "$name")"
  if [ -f "$dir/eval.json" ]; then continue; fi  # finished earlier: rerunning the script resumes
  train_eval "$name" "${v#*:}" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait
.venv/bin/python - "$OUT" "$TABLE" "$CONFIG" "$SIZE" "$STEPS" "$BATCH" "$N_EVAL" "${VARIANTS[@]}" <<'PY'
import json, re, sys
from pathlib import Path
out, table, config, size, steps, batch, n_eval, *variants = sys.argv[1:]
lines = [f"| variant | mIoU | oIoU | P@0.5 | P@0.7 | P@0.9 | mIoU, 1 click |", "|---|---|---|---|---|---|---|"]
for v in variants:
    name, flags = v.split(":", 1)
    r = json.loads((Path(out) / re.sub(r"[^A-Za-z0-9]", "_", name) / "eval.json").read_text())
    t, c = r["by_clicks"]["0"], r["by_clicks"]["1"]
    lines.append(f"| {name} (`{flags.strip() or 'default'}`) | {t['mIoU']:.3f} | {t['oIoU']:.3f} | {t['P@0.5']:.3f} "
                 f"| {t['P@0.7']:.3f} | {t['P@0.9']:.3f} | {c['mIoU']:.3f} |")
head = (f"{table} ablation: {config} at {size}², {steps} steps × batch {batch} from scratch, seed 0, same data; "
        f"`rrsis eval --data synthetic:test:{n_eval}:{size} --clicks 0,1`; command: `bash scripts/ablation.sh {table}`")
text = head + "\n\n" + "\n".join(lines) + "\n"
(Path(out) / f"table-{table}.md").write_text(text)
print(text)
PY
