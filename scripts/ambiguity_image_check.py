"""Does the ambiguity score read the image, or only how the sentence is worded?

    python scripts/ambiguity_image_check.py [MODEL] [N]

Scores N synthetic test scenes (default 150) twice: with their own image and with another scene's image (a fixed
shuffle). Prints the ambiguity AUROC of both, and the same on the subset where wording cannot tell: ambiguous
expressions against "category" ones ("the lake", "find the house" when the scene has exactly one), which use the
same sentence forms. A score that only reads the wording keeps its AUROC with shuffled images."""

import sys

import numpy as np

from rrsis_engine import metrics as M
from rrsis_engine.data.synthetic import SyntheticReferringDataset
from rrsis_engine.predictor import load_predictor


def main(model: str = "rsam-lite", n: int = 150) -> None:
    predictor = load_predictor(model, device="cpu", disk_cache=False)
    ds = SyntheticReferringDataset("test", size=n, image_size=predictor.image_size)
    records = [ds[i] for i in range(len(ds))]
    shuffle = np.random.default_rng(0).permutation(len(records))

    def scores(images) -> list[float]:
        out = []
        for image, rec in zip(images, records, strict=True):
            predictor.set_image(image)
            out.append(predictor.predict(text=rec["expression"]).ambiguity)
        return out

    labels = [bool(r["ambiguous"]) for r in records]
    own = scores([r["image"] for r in records])
    other = scores([records[j]["image"] for j in shuffle])
    same_form = [i for i, r in enumerate(records) if r["kind"] in ("ambiguous", "category")]

    def auroc(s, idx):
        return M.auroc([s[i] for i in idx], [labels[i] for i in idx])

    everything = range(len(records))
    print(f"all {len(records)} scenes ({sum(labels)} ambiguous): AUROC own image {auroc(own, everything):.3f}, "
          f"shuffled images {auroc(other, everything):.3f}")
    print(f"ambiguous vs category ({len(same_form)} scenes, same wording): AUROC own image "
          f"{auroc(own, same_form):.3f}, shuffled images {auroc(other, same_form):.3f}")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["rsam-lite"]), *(int(a) for a in sys.argv[2:3]))
