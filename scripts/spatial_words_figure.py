"""docs/spatial-words.jpg: text turns of four synthetic validation scenes whose sentence is a category with spatial
words, the model alone (top row, ``spatial_words=False``) and with the words resolved by geometry over the model's
mask of the whole category (bottom row, rrsis_engine.spatial_language). Magenta: the mask; yellow: the target's
outline. docs/spatial-colours.jpg: the same for colours, a river and roads (stop 43); docs/spatial-stop59.jpg: cars
and car parks read off the roads (stop 59); docs/spatial-stop60.jpg: roofs completed, the likeliest look-alike
(stop 60).

    .venv/bin/python scripts/spatial_words_figure.py
    .venv/bin/python scripts/spatial_words_figure.py --records synth-val-000049,synth-val-000066,synth-val-000079,\
synth-val-000089 --out docs/spatial-colours.jpg
    .venv/bin/python scripts/spatial_words_figure.py --records synth-val-000074,synth-val-000188,synth-val-000290 \
--out docs/spatial-stop59.jpg
    .venv/bin/python scripts/spatial_words_figure.py --records synth-val-000140,synth-val-000155,synth-val-000247,\
synth-val-000083 --out docs/spatial-stop60.jpg
"""

import argparse

import numpy as np
import torch
from edge_snap_figure import grid, labelled, overlay  # scripts/ is on sys.path when this script runs
from PIL import Image

from rrsis_engine import metrics as M
from rrsis_engine.data.readers import load_records
from rrsis_engine.predictor import load_predictor

RECORDS = ("synth-val-000005", "synth-val-000061", "synth-val-000003", "synth-val-000054")
SCALE = 1.5
OUT = "docs/spatial-words.jpg"


def validation_scenes(doc: str, default_ids: tuple[str, ...], default_out: str) -> tuple[list[str], dict, str]:
    """A figure script's command line (``--records`` ids of synthetic:val:300:256 records, ``--out`` PNG path): the
    ids, the records by id and the output path. Torch runs on one thread (the figures are reproducible)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--records", default=",".join(default_ids), help="ids of synthetic:val:300:256 records")
    parser.add_argument("--out", default=default_out)
    args = parser.parse_args()
    ids = args.records.split(",")
    torch.set_num_threads(1)
    return ids, {r["id"]: r for r in load_records("synthetic:val:300:256") if r["id"] in ids}, args.out


def main() -> None:
    ids, records, out = validation_scenes(__doc__, RECORDS, OUT)
    rows = []
    for label, words in (("model alone", False), ("spatial words", True)):
        predictor = load_predictor("rsam-lite", device="cpu", disk_cache=False, spatial_words=words)
        panels = []
        for rid in ids:
            rec = records[rid]
            image, target = np.asarray(rec["image"]), np.asarray(rec["mask"], bool)
            predictor.set_image(image)
            mask = predictor.predict(text=rec["expression"]).mask
            im = overlay(image, mask, target)
            im = im.resize((int(im.width * SCALE), int(im.height * SCALE)), Image.NEAREST)
            panels.append(labelled(im, f"{label}: \"{rec['expression']}\" IoU {M.iou(mask, target):.2f}"))
        rows.append(panels)
    grid(rows).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
