"""The gap that joins one generated grove's crowns against the gap between two groves of a scene, on synthetic training
scenes (``spatial_language.GROUP_GAPS["trees"]``: blobs of the trees mask at most that far apart are one object).

For each grove (the true object), the largest edge of the minimum spanning tree over its crowns' pixel-to-pixel
distances (0 for one crown): the smallest gap that joins it whole; for each pair of groves in a scene, their distance.
Prints, per gap in pixels, the share of groves joined whole and the share of pairs of groves merged. Stop 66 (docs/
training.md, "Groves read whole"): at 256², 12 px joins 97.7 % of 1 349 groves and merges 4.3 % of 2 162 pairs; the
3-iteration closing before joined gaps of about 3–6 px (64–84 %).

    .venv/bin/python scripts/grove_gaps.py --scenes 400 --size 256
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import cdist

from rrsis_engine.data.synthetic import SyntheticReferringDataset, draw_scene


def grove_gaps(scenes: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(the gap that joins each grove whole, the distance between each pair of groves of a scene), pixels."""
    dataset = SyntheticReferringDataset("train", scenes, size)
    within, between = [], []
    for i in range(scenes):
        _, objects = draw_scene(dataset.seed(i), size)
        groves = [np.argwhere(o.mask) for o in objects if o.category == "trees" and o.mask.any()]
        for o in objects:
            if o.category != "trees" or not o.mask.any():
                continue
            labels, n = ndimage.label(o.mask, structure=np.ones((3, 3)))
            crowns = [np.argwhere(labels == j) for j in range(1, n + 1)]
            distances = np.array([[cdist(a, b).min() for b in crowns] for a in crowns])
            within.append(minimum_spanning_tree(distances).toarray().max() if n > 1 else 0.0)
        between += [cdist(a, b).min() for k, a in enumerate(groves) for b in groves[k + 1:]]
    return np.array(within), np.array(between)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    within, between = grove_gaps(args.scenes, args.size)
    print(f"{len(within)} groves, {len(between)} pairs of groves in one scene")
    for gap in (3, 4, 6, 8, 10, 12, 14, 16):
        print(f"gap <= {gap:2d} px: groves joined whole {np.mean(within <= gap):.3f}, "
              f"pairs of groves merged {np.mean(between <= gap):.3f}")


if __name__ == "__main__":
    main()
