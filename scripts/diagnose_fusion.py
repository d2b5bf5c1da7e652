"""Does text reach the decoder, and does the fusion know where things are? Three probes of a trained model.

1. T_G (the [GT] token TWGM hands to the decoder) for several sentences on the same scenes: mean pairwise cosine
   across sentences and across scenes. 1.000 across sentences means the decoder's mask token cannot see the text.
2. Position: a ridge probe for a token's column / row index, fitted on 9 synthetic scenes and scored (R²) on 3
   others, on the unfused V_d and on the fused tokens (for the first sentence). R² ≈ 0: "left", "northernmost", "right of" cannot be
   resolved from the features.
3. Direction words: for the position expressions of 200 validation scenes, the mask for the sentence and for the
   sentence with its direction flipped ("westernmost" ↔ "easternmost", "left" ↔ "right", …): mean IoU between the
   two masks. 1.0 means the model ignores the direction.

    .venv/bin/python scripts/diagnose_fusion.py [MODEL]      # default: rsam-lite (the shipped model)
"""

import re
import sys

import numpy as np
import torch

from rrsis_engine import metrics as M
from rrsis_engine.data.synthetic import SyntheticReferringDataset, generate_sample
from rrsis_engine.model import transforms as T
from rrsis_engine.predictor import load_predictor

TEXTS = ["the house on the left", "the house on the right", "the largest house", "the smallest pool", "the lake",
         "all trees", "the red car", "the road"]


def mean_offdiag_cosine(vectors: torch.Tensor) -> float:
    v = torch.nn.functional.normalize(vectors, dim=-1)
    sims = v @ v.transpose(-1, -2)
    n = v.shape[-2]
    return float(((sims.sum((-1, -2)) - n) / (n * (n - 1))).mean())


def position_r2(tokens: list[np.ndarray], grid: int) -> tuple[float, float]:
    """R² of ridge probes for (column, row) of each token: fit on all but the last 3 scenes, score on those."""
    rows, cols = np.mgrid[:grid, :grid]
    fit, test = np.concatenate(tokens[:-3]), np.concatenate(tokens[-3:])
    mu, sd = fit.mean(0), fit.std(0) + 1e-6
    a, b = np.c_[(fit - mu) / sd, np.ones(len(fit))], np.c_[(test - mu) / sd, np.ones(len(test))]
    out = []
    for target in (cols.ravel(), rows.ravel()):
        y, yt = np.tile(target, len(tokens) - 3), np.tile(target, 3)
        w = np.linalg.solve(a.T @ a + 10 * np.eye(a.shape[1]), a.T @ y)
        p = b @ w
        out.append(float(1 - ((p - yt) ** 2).sum() / ((yt - yt.mean()) ** 2).sum()))
    return out[0], out[1]


FLIP = {"west": "east", "east": "west", "north": "south", "south": "north", "left": "right", "right": "left",
        "top": "bottom", "bottom": "top", "upper": "lower", "lower": "upper"}
DIRECTION = re.compile("|".join(FLIP))


def direction_flip_iou(predictor, n_scenes: int = 200) -> tuple[float, float, int]:
    """(mean IoU of the masks for a position expression and its direction-flipped twin, share of pairs with
    IoU > 0.9, pairs) over the validation scenes' position expressions (pairs where both masks are empty skipped)."""
    ds = SyntheticReferringDataset("val", size=n_scenes, image_size=predictor.image_size)
    ious = []
    for i in range(len(ds)):
        rec = ds[i]
        if rec["kind"] != "position" or not DIRECTION.search(rec["expression"]):
            continue
        predictor.set_image(rec["image"])
        a = predictor.predict(text=rec["expression"]).mask
        b = predictor.predict(text=DIRECTION.sub(lambda m: FLIP[m.group(0)], rec["expression"])).mask
        if a.any() or b.any():
            ious.append(M.iou(a, b))
    return float(np.mean(ious)), float(np.mean(np.asarray(ious) > 0.9)), len(ious)


def main(model_name: str = "rsam-lite") -> None:
    predictor = load_predictor(model_name, device="cpu", disk_cache=False)
    model = predictor.model
    size, grid = model.image_size, model.image_size // 16
    t_g, raw, fused = [], [], []
    with torch.no_grad():
        for i in range(12):
            sample = generate_sample(1_000_000_000 + 500 + i, size)  # validation scenes
            feats = model.encode_image(T.image_to_tensor(sample.image, size))
            raw.append(feats.vd[0].flatten(1).T.numpy())
            per_text = []
            for text in TEXTS:
                vd, tg = model.fuse(feats.vd, *model.encode_text(*model.text_embed([text])))
                per_text.append(tg[0])
                if text == TEXTS[0]:
                    fused.append(vd[0].flatten(1).T.numpy())
            t_g.append(torch.stack(per_text))
    t_g = torch.stack(t_g)  # scenes × texts × d
    print(f"{model_name}: T_G mean cosine across sentences {mean_offdiag_cosine(t_g):.4f} (same scene), "
          f"across scenes {mean_offdiag_cosine(t_g.transpose(0, 1)):.4f} (same sentence)")
    (raw_x, raw_y), (fused_x, fused_y) = position_r2(raw, grid), position_r2(fused, grid)
    print(f"position probe R² (column, row): V_d {raw_x:.2f}, {raw_y:.2f}; fused {fused_x:.2f}, {fused_y:.2f}")
    mean_iou, share_same, pairs = direction_flip_iou(predictor)
    print(f"direction flipped: mask IoU {mean_iou:.3f} on average, {share_same:.0%} of {pairs} pairs > 0.9")


if __name__ == "__main__":
    main(*sys.argv[1:2])
