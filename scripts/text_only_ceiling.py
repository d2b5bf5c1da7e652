"""The best text-only mIoU any model can expect on a synthetic split, given that ambiguous expressions do not say which
object is meant.

An *ambiguous* synthetic record ("the building") matches k ≥ 2 objects and its ground truth is one of them, drawn at
random (:func:`rrsis_engine.data.synthetic.sample_expression`; uniformly, except that a target no follow-up sentence
can pick out is redrawn). A text turn cannot know which: the best it can expect over k equally likely targets is
IoU 1/k, whichever objects it shows (:func:`best_expected_iou`). Every other
record is counted at IoU 1. Printed per kind, for the split and, with ``--grid S``, also for masks passed
through the S/4 logit grid of a model with input size S (the resolution ceiling, before the engine's edge snap; the
shipped rsam-lite reads 384²).

    .venv/bin/python scripts/text_only_ceiling.py [SPLIT] [N] [SIZE] [--grid S]   # default: test 150 256
"""

import argparse
import collections

import numpy as np

from rrsis_engine.data.synthetic import SyntheticReferringDataset
from rrsis_engine.metrics import iou
from rrsis_engine.model import transforms as T


def matched_objects(sample) -> list[np.ndarray]:
    """The masks (H×W bool) of the objects an ambiguous sample's expression matches (its ``candidates_mask``)."""
    union = sample.extra["candidates_mask"]
    return [o.mask for o in sample.objects if o.area and (o.mask & union).sum() > 0.5 * o.area]


def best_expected_iou(objects: list[np.ndarray]) -> float:
    """max over masks M of mean_t IoU(M, t), each of the k disjoint ``objects`` (H×W bool) equally likely to be the
    target: 1/k. (Any union M of a subset S: mean_t IoU(M, t) = (1/k)·Σ_{t∈S} |t| / |M| = 1/k, and extra pixels
    only lower it.)"""
    if sum(int(o.sum()) for o in objects) != int(np.logical_or.reduce(objects).sum()):
        raise ValueError("the matched objects overlap: 1/k is not the ceiling")
    return 1.0 / len(objects)


def through_grid(mask: np.ndarray, size: int) -> np.ndarray:
    """``mask`` (H×W bool) as a perfect S/4 logit map would show it: area fractions on the grid, ±10 logits,
    upsampled to the image as the predictor does, thresholded at 0."""
    low = (T.mask_to_tensor(mask, size, size // 4) * 2 - 1) * 10.0
    return (T.logits_to_image(low, *mask.shape, size)[0, 0] > 0).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("split", nargs="?", default="test")
    ap.add_argument("n", nargs="?", type=int, default=150)
    ap.add_argument("size", nargs="?", type=int, default=256)
    ap.add_argument("--grid", type=int, default=0, metavar="S",
                    help="also pass every mask through the S/4 logit grid of a model with input size S")
    args = ap.parse_args()
    data = SyntheticReferringDataset(args.split, args.n, args.size)
    by_kind: dict[str, list[float]] = collections.defaultdict(list)
    by_kind_grid: dict[str, list[float]] = collections.defaultdict(list)
    ks = []
    for i in range(len(data)):
        s = data.sample(i)
        if s.ambiguous:
            objects = matched_objects(s)
            ks.append(len(objects))
            value = best_expected_iou(objects)
            if args.grid:  # the best one object through the grid, scored against each possible target
                shown = [through_grid(o, args.grid) for o in objects]
                by_kind_grid[s.kind].append(max(float(np.mean([iou(m, t) for t in objects])) for m in shown))
        else:
            value = 1.0
            if args.grid:
                by_kind_grid[s.kind].append(iou(through_grid(s.mask, args.grid), s.mask))
        by_kind[s.kind].append(value)
    every = [v for vs in by_kind.values() for v in vs]
    print(f"synthetic {args.split}, {len(every)} records at {args.size}²; ambiguous: {len(ks)} "
          f"(matching {min(ks, default=0)}–{max(ks, default=0)} objects, mean {np.mean(ks) if ks else 0:.2f})")
    print("kind          n   ceiling" + (f"   through the {args.grid // 4}² grid" if args.grid else ""))
    for kind in sorted(by_kind, key=lambda k: -len(by_kind[k])):
        line = f"{kind:<12}{len(by_kind[kind]):>3}   {np.mean(by_kind[kind]):.3f}"
        if args.grid:
            line += f"     {np.mean(by_kind_grid[kind]):.3f}"
        print(line)
    line = f"{'all':<12}{len(every):>3}   {np.mean(every):.3f}"
    if args.grid:
        line += f"     {np.mean([v for vs in by_kind_grid.values() for v in vs]):.3f}"
    print(line)


if __name__ == "__main__":
    main()
