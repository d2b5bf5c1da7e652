#!/usr/bin/env bash
# The evaluations behind rrsis_engine/weights/MODEL_CARD.md (run from the repository root, after `make venv`):
#   bash scripts/evaluate-model.sh [MODEL] [OUT_DIR]
# MODEL: a model name or checkpoint (default: the shipped rsam-lite). The real held-out set is built first with
#   rrsis data from-masks --images ../shared/data/dubai-aerial/images --masks ../shared/data/dubai-aerial/masks \
#       --out data/dubai-refer
# Calibrating writes the ambiguity calibration and the mask-quality estimate into MODEL's JSON (the quality estimate
# pooled with the real validation set REAL_VAL when it exists); set CALIBRATE=0 to keep the existing ones.
set -euo pipefail
MODEL=${1:-rsam-lite}
OUT=${2:-out/model-card}
N_SYNTH=${N_SYNTH:-150}
SIZE=${SIZE:-256}
REAL=${REAL:-data/dubai-refer/eval.jsonl}
REAL_VAL=${REAL_VAL:-data/dubai-refer/sel007.jsonl}
RRSIS=${RRSIS:-.venv/bin/rrsis}
mkdir -p "$OUT"
if [ "${CALIBRATE:-1}" = 1 ]; then
  "$RRSIS" calibrate --model "$MODEL" --only ambiguity --data "synthetic:val:300:$SIZE" --precision 0.8 \
    > "$OUT/calibration.json"
  quality_data=(--data "synthetic:val:300:$SIZE")
  if [ -f "$REAL_VAL" ]; then quality_data+=(--data "$REAL_VAL"); fi
  "$RRSIS" calibrate --model "$MODEL" --only quality "${quality_data[@]}" > "$OUT/quality-calibration.json"
fi
# the four evaluations run two at a time (one thread each)
run_eval() { OMP_NUM_THREADS=1 "$RRSIS" eval --model "$MODEL" --device cpu "$@" > /dev/null; }
for policy in standard suggested; do
  run_eval --data "synthetic:test:$N_SYNTH:$SIZE" --clicks 0,1,2,3 --noc --click-policy "$policy" \
    --out "$OUT/synthetic-test-$policy.json" &
  synthetic=$!
  if [ -f "$REAL" ]; then
    run_eval --data "$REAL" --clicks 0,1,2,3 --noc --click-policy "$policy" --out "$OUT/real-heldout-$policy.json"
  fi
  wait "$synthetic"  # fails the script when that evaluation failed
done
# suggested vs standard clicks, record by record (paired bootstrap; docs/data.md "rrsis compare")
"$RRSIS" compare "$OUT/synthetic-test-standard.json" "$OUT/synthetic-test-suggested.json" \
  --out "$OUT/synthetic-test-suggested-vs-standard.json" > /dev/null
if [ -f "$REAL" ]; then
  "$RRSIS" compare "$OUT/real-heldout-standard.json" "$OUT/real-heldout-suggested.json" \
    --out "$OUT/real-heldout-suggested-vs-standard.json" > /dev/null
fi
ls "$OUT"
