#!/usr/bin/env bash
# Prepare .wheels/ (git-ignored) for scripts/device-train.sh on a lent GPU machine (docs/training.md, "On a lent GPU").
# The machine has torch, transformers, scipy, scikit-image and Pillow but not sam2 and its Hydra configs, and no
# MiniLM weights; what travels (tracked files + carried folders) must stay under 64 MiB:
#   .wheels/site/       sam2, hydra, omegaconf, antlr4, iopath copied from .venv (pure Python; sam2 without its
#                       CUDA extension) and rrsis's entry points (so `python -m rrsis_train` finds its subcommands)
#   .wheels/minilm/     MiniLM-L6 packed to 13 MB (scripts/pack_text_encoder.py: int8 weights, used vocabulary)
#   .wheels/dubai-refer/ the real training records without *_part_007 (images copied, masks as 1-bit PNGs)
# Run from the repository root after `make venv` and `rrsis data from-masks ... --out data/dubai-refer`.
set -euo pipefail
# the real training records less the validation images *_part_007 (what the shipped model's later stages trained on)
[ -f data/dubai-refer/train-no007.jsonl ] || grep -v '_part_007' data/dubai-refer/train.jsonl \
  > data/dubai-refer/train-no007.jsonl
SP=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf .wheels && mkdir -p .wheels/site/rrsis-0.1.0.dist-info
cp -r "$SP"/{sam2,antlr4,hydra,omegaconf,iopath} .wheels/site/
cp "$SP"/rrsis-0.1.0.dist-info/{METADATA,entry_points.txt} .wheels/site/rrsis-0.1.0.dist-info/
find .wheels -name __pycache__ -prune -exec rm -rf {} +
rm -f .wheels/site/sam2/_C*.so
.venv/bin/python scripts/pack_text_encoder.py pack .wheels/minilm
CHECK=$(mktemp -d)
.venv/bin/python scripts/pack_text_encoder.py unpack .wheels/minilm "$CHECK" > /dev/null
.venv/bin/python scripts/pack_text_encoder.py check "$CHECK"
rm -rf "$CHECK"
.venv/bin/python - <<'PY'
import json
from pathlib import Path

import numpy as np
from PIL import Image

src, dst = Path("data/dubai-refer"), Path(".wheels/dubai-refer")
lines = [line for line in (src / "train-no007.jsonl").read_text().splitlines() if line.strip()]
for sub in ("images", "masks"):
    (dst / sub).mkdir(parents=True, exist_ok=True)
(dst / "train-no007.jsonl").write_text("\n".join(lines) + "\n")
for rec in map(json.loads, lines):
    for value in rec.values():
        if isinstance(value, str) and value.startswith(("images/", "masks/")) and not (dst / value).exists():
            if value.startswith("images/"):
                (dst / value).write_bytes((src / value).read_bytes())  # follows the link to ../shared
            else:
                # one bit a pixel: the readers take pixels > 0 as the mask (a third of the 8-bit files' size)
                Image.fromarray(np.array(Image.open(src / value)) > 0).save(dst / value, optimize=True)
PY
TRAVELS=$(( ($(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .wheels | cut -f1)) / 1048576 ))
echo "travels: $TRAVELS MiB of 64"
# the device tool refuses a call whose working tree (tracked files and the carried .wheels) is over 64 MiB
[ "$TRAVELS" -lt 64 ] || { echo "over the device tool's 64 MiB: make .wheels or the tracked files smaller" >&2; exit 1; }
