"""What no model can beat: two ceilings of the evaluation numbers.

``text-only SPLIT N SIZE [--grid S]`` — the best text-only mIoU any model can expect on a synthetic split. An
*ambiguous* synthetic record ("the building") matches k ≥ 2 objects and its ground truth is one of them, drawn at
random (:func:`rrsis_engine.data.synthetic.sample_expression`; uniformly, except that a target no follow-up sentence
can pick out is redrawn). A text turn cannot know which: the best it can expect over k equally likely targets is
IoU 1/k, whichever objects it shows (:func:`best_expected_iou`). Every other
record is counted at IoU 1. Printed per kind and, with ``--grid S``, also for masks passed through the S/4 logit grid
of a model with input size S.

``grid DATA [--size S] [--records R.records.jsonl]`` — the resolution ceiling of any data source: each record's ground
truth passed through the S/4 logit grid (a perfect logit map, upsampled as the predictor does, before the engine's
edge snap and zoom-in), how many records can reach IoU 0.85 / 0.9 that way, and with an evaluation's per-record file
(``rrsis eval --noc --out``) how many of those that cannot did reach 0.85 in the evaluation.

    .venv/bin/python scripts/ceilings.py text-only test 150 256 --grid 384
    .venv/bin/python scripts/ceilings.py grid data/dubai-refer/eval.jsonl --records out/model-card/real-heldout-standard.records.jsonl
"""

import argparse
import collections
import json

import numpy as np

from rrsis_engine.data.readers import load_records
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


def text_only(args) -> None:
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


def grid(args) -> None:
    evaluated = {}
    if args.records:
        with open(args.records) as f:
            evaluated = {r["id"]: r["ious"] for r in map(json.loads, f)}
    rows = []  # (kind, grid IoU, best IoU in the evaluation or None, expression, share of the image)
    for rec in load_records(args.data):
        mask = np.asarray(rec["mask"], dtype=bool)
        ious = evaluated.get(str(rec.get("id")))
        rows.append((rec.get("kind") or "?", iou(through_grid(mask, args.size), mask),
                     max(ious) if ious else None, rec["expression"], float(mask.mean())))
    print(f"{args.data}: {len(rows)} records through the {args.size // 4}² grid of a {args.size}² model")
    print("kind          n   mean IoU   can reach 0.85   0.9")
    kinds = sorted({r[0] for r in rows}, key=lambda k: -sum(r[0] == k for r in rows))
    for kind in [*kinds, "all"]:
        sel = [r[1] for r in rows if kind in ("all", r[0])]
        print(f"{kind:<12}{len(sel):>3}   {np.mean(sel):.3f}      {sum(v >= 0.85 for v in sel):>4}             "
              f"{sum(v >= 0.9 for v in sel):>4}")
    if evaluated:
        capped = [r for r in rows if r[1] < 0.85]
        reached = [r for r in rows if r[2] is not None and r[2] >= 0.85]
        print(f"evaluation: {len(reached)} of {len(rows)} records reached 0.85; of the {len(capped)} the grid caps "
              f"below 0.85, {sum(r[2] is not None and r[2] >= 0.85 for r in capped)} did")
        for kind, g, best, expression, share in sorted(capped, key=lambda r: r[1]):
            print(f"  grid {g:.3f}  best {best if best is None else f'{best:.3f}'}  {share:6.2%} of the image  "
                  f"{kind:<10} {expression[:60]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("text-only", help="the best text-only mIoU on a synthetic split")
    t.add_argument("split", nargs="?", default="test")
    t.add_argument("n", nargs="?", type=int, default=150)
    t.add_argument("size", nargs="?", type=int, default=256)
    t.add_argument("--grid", type=int, default=0, metavar="S",
                   help="also pass every mask through the S/4 logit grid of a model with input size S")
    g = sub.add_parser("grid", help="the resolution ceiling of a data source")
    g.add_argument("data", help="a data source, as rrsis eval --data takes it")
    g.add_argument("--size", type=int, default=384, help="the model's input size (rsam-lite: 384)")
    g.add_argument("--records", help="an evaluation's per-record file (rrsis eval --noc --out X → X.records.jsonl)")
    args = ap.parse_args()
    (text_only if args.command == "text-only" else grid)(args)


if __name__ == "__main__":
    main()
