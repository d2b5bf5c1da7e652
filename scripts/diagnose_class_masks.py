"""Which categories does a model find? For each synthetic validation scene and each category in it, the text turn
"all the <category>" (the sentence the engine reads every spatial sentence from, ``spatial_language.class_query``)
against the union of that category's objects: class IoU, and objects found (the mask covers at least half of one).

    python scripts/diagnose_class_masks.py [--model rsam-lite] [--scenes 40] [--size 256] [--threads 2] [--model-only]

Stop 50 (docs/training.md, "Small objects"): the shipped model found 0 of 16 ships and 48 of 139 cars on 40 scenes.
Since stop 53 the engine reads "all the ships" off the water (``--model-only``: the model's own masks, as before).
"""

import argparse
from collections import defaultdict

import numpy as np
import torch

from rrsis_engine import metrics
from rrsis_engine.data.synthetic import SyntheticReferringDataset
from rrsis_engine.predictor import load_predictor
from rrsis_engine.spatial_language import class_query


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="rsam-lite", help="registry name or checkpoint path")
    ap.add_argument("--scenes", type=int, default=40, help="synthetic validation scenes")
    ap.add_argument("--size", type=int, default=256, help="scene side in pixels (the evaluation's: 256)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-only", action="store_true", help="without the engine's spatial words (and ships)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    predictor = load_predictor(args.model, device="cpu", disk_cache=False, spatial_words=not args.model_only)
    data = SyntheticReferringDataset("val", args.scenes, args.size)
    ious, found, total = defaultdict(list), defaultdict(int), defaultdict(int)
    for i in range(len(data)):
        scene = data.sample(i)
        image = predictor.set_image(scene.image)
        for category in sorted({o.category for o in scene.objects}):
            objects = [o for o in scene.objects if o.category == category]
            truth = np.logical_or.reduce([o.mask for o in objects])
            mask = predictor.predict(class_query(category), image=image).mask  # a first turn: no prior
            ious[category].append(metrics.iou(mask, truth))
            total[category] += len(objects)
            found[category] += sum(int((mask & o.mask).sum() >= 0.5 * o.mask.sum()) for o in objects)
    print("| category | scenes | class IoU | objects found |\n|---|---|---|---|")
    for category in sorted(ious):
        print(f"| {category} | {len(ious[category])} | {np.mean(ious[category]):.3f} | "
              f"{found[category]} / {total[category]} |")


if __name__ == "__main__":
    main()
