"""Expressions from a hand-made class-index mask."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from rrsis_engine.data.expressions import resolve
from rrsis_engine.data.from_masks import components, expressions_for_image, records_from_folders


def class_mask():
    cm = np.full((200, 200), 2, np.uint8)  # land
    cm[10:40, 10:40] = 1   # building, top-left
    cm[10:30, 150:190] = 1  # building, top-right
    cm[150:190, 150:195] = 1  # building, bottom-right (largest)
    cm[90:110, :] = 3       # road across
    cm[130:180, 20:80] = 5  # water
    cm[0:3, 0:3] = 4        # a vegetation fragment: below the size floor
    return cm


def test_components_per_class():
    objs = components(class_mask())
    cats = sorted(o.category for o in objs)
    assert cats.count("building") == 3 and cats.count("water") == 1 and cats.count("road") == 1
    assert "vegetation" not in cats  # 9 px fragment ignored
    assert cats.count("land") == 2  # the road splits the land in two


def test_generated_real_expressions_hold():
    cm = class_mask()
    image = np.zeros((200, 200, 3), np.uint8)
    recs = expressions_for_image(image, cm, seed=3, n=12)
    assert len(recs) >= 6
    objs = components(cm)
    kinds = set()
    for r in recs:
        kinds.add(r["kind"])
        assert r["mask"].any() and r["expression"]
        if r["ambiguous"]:
            # the ambiguous expression names a category with several components; all of them are its candidates
            assert any(w in r["expression"] for w in ("building", "house", "structure", "land", "unpaved", "sandy"))
            cand = r["candidates_mask"]
            assert not (r["mask"] & ~cand).any() and cand.sum() > r["mask"].sum()
        else:
            assert "candidates_mask" not in r
    assert len(kinds) >= 3
    # every building expression that claims uniqueness points at exactly one component
    m = resolve({"category": "building", "size": "largest"}, objs, cm.shape)
    assert m.unique and m.definite[0].bbox == (150, 150, 195, 190)


def test_records_from_folders_with_holdout(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("tile1_image_part_001", "tile1_image_part_009"):
        Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(tmp_path / "images" / f"{name}.jpg")
        Image.fromarray(class_mask()).save(tmp_path / "masks" / f"{name}.png")
    train = list(records_from_folders(tmp_path / "images", tmp_path / "masks", per_image=4, exclude=["*_009.*"]))
    held = list(records_from_folders(tmp_path / "images", tmp_path / "masks", per_image=4, include=["*_009.*"]))
    assert train and held
    assert all("part_001" in r["id"] for r in train) and all("part_009" in r["id"] for r in held)


def test_cli_from_masks_writes_disjoint_train_val_and_eval_sets(tmp_path, capsys):
    from rrsis_engine.cli import main

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("t_part_001", "t_part_002", "t_part_007", "t_part_009"):
        Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(tmp_path / "images" / f"{name}.jpg")
        Image.fromarray(class_mask()).save(tmp_path / "masks" / f"{name}.png")
    out = tmp_path / "refer"
    assert main(["data", "from-masks", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
                 "--out", str(out), "--val", "*_part_007.*", "--per-image", "3"]) == 0

    def images_of(name):
        return {json.loads(line)["image"] for line in (out / name).read_text().splitlines()}

    train, val, held = images_of("train.jsonl"), images_of("val.jsonl"), images_of("eval.jsonl")
    assert {Path(p).stem for p in train} == {"t_part_001", "t_part_002"}
    assert {Path(p).stem for p in val} == {"t_part_007"} and {Path(p).stem for p in held} == {"t_part_009"}
    assert "wrote" in capsys.readouterr().out
