"""How well spatial_language.object_groups joins the pieces of one object and keeps look-alikes apart, on the true
masks of synthetic validation scenes: for each category's union of true objects, the groups that hold pixels of two
or more objects (wrong joins) and the objects of 30 pixels or more that no group holds 90 % of (split). Behind
SAME_OBJECT_FILL and SAME_OBJECT_COLOR (docs/training.md, stop 47: fill 0.7 with colours within 24 → 16 wrong joins,
11 split on every second scene of the first 300; without the colour test 52 and 15).

    .venv/bin/python scripts/object_join_check.py --fill 0.7 --colour 24
"""

import argparse

import numpy as np

from rrsis_engine import spatial_language as S
from rrsis_engine.data.synthetic import SyntheticReferringDataset

CATEGORIES = ("field", "building", "water", "parking", "pool")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fill", type=float, default=S.SAME_OBJECT_FILL)
    parser.add_argument("--colour", type=float, default=S.SAME_OBJECT_COLOR, help="RGB distance; 1e9 turns it off")
    parser.add_argument("--scenes", type=int, default=300, help="the first N validation scenes, every second one")
    args = parser.parse_args()
    S.SAME_OBJECT_FILL, S.SAME_OBJECT_COLOR = args.fill, args.colour
    data = SyntheticReferringDataset("val", args.scenes, 256)
    merged = split = total = 0
    for i in range(0, args.scenes, 2):
        scene = data.sample(i)
        for category in CATEGORIES:
            objects = [o for o in scene.objects if o.category == category and o.area > 0]
            if not objects:
                continue
            groups = S.object_groups(np.logical_or.reduce([o.mask for o in objects]), category, scene.image)
            for group in groups:
                held = [o for o in objects if (o.mask & group).sum() > 0.2 * group.sum()
                        or (o.mask & group).sum() > 0.5 * o.area]
                merged += len(held) > 1
            for o in objects:
                if o.area >= 30:
                    total += 1
                    split += max(int((g & o.mask).sum()) for g in groups) < 0.9 * o.area
    print(f"fill {args.fill}, colour {args.colour}: {merged} wrong joins, {split} of {total} objects split")


if __name__ == "__main__":
    main()
