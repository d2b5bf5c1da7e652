"""docs/spatial-words.png: text turns of four synthetic validation scenes whose sentence is a category with spatial
words, the model alone (top row, ``spatial_words=False``) and with the words resolved by geometry over the model's
mask of the whole category (bottom row, rrsis_engine.spatial_language). Magenta: the mask; yellow: the target's
outline.

    .venv/bin/python scripts/spatial_words_figure.py
"""

import numpy as np
import torch
from edge_snap_figure import grid, labelled, overlay  # scripts/ is on sys.path when this script runs
from PIL import Image

from rrsis_engine import metrics as M
from rrsis_engine.data.readers import load_records
from rrsis_engine.predictor import load_predictor

RECORDS = ("synth-val-000005", "synth-val-000061", "synth-val-000003", "synth-val-000054")
SCALE = 1.5
OUT = "docs/spatial-words.png"


def main() -> None:
    torch.set_num_threads(1)
    records = {r["id"]: r for r in load_records("synthetic:val:100:256") if r["id"] in RECORDS}
    rows = []
    for label, words in (("model alone", False), ("spatial words", True)):
        predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False, spatial_words=words)
        panels = []
        for rid in RECORDS:
            rec = records[rid]
            image, target = np.asarray(rec["image"]), np.asarray(rec["mask"], bool)
            predictor.set_image(image)
            mask = predictor.predict(text=rec["expression"]).mask
            im = overlay(image, mask, target)
            im = im.resize((int(im.width * SCALE), int(im.height * SCALE)), Image.NEAREST)
            panels.append(labelled(im, f"{label}: \"{rec['expression']}\" IoU {M.iou(mask, target):.2f}"))
        rows.append(panels)
    grid(rows).save(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
