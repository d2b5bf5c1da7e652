"""Readers round-trip tiny generated fixtures; missing files raise DataError naming the file."""

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from rrsis_engine import rle
from rrsis_engine.data import load_records, read_jsonl, read_refsegrs, read_risbench, read_rrsisd, write_jsonl
from rrsis_engine.errors import DataError


def _img(seed, h=40, w=48):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _mask(h=40, w=48, r=(5, 20), c=(10, 30)):
    m = np.zeros((h, w), bool)
    m[r[0]:r[1], c[0]:c[1]] = True
    return m


def test_jsonl_round_trip(tmp_path):
    shared = _img(1)
    recs = [
        {"id": "a", "image": shared, "mask": _mask(), "expression": "the red roof", "ambiguous": False, "kind": "attribute",
         "followup": "no, the one further north", "followup_mask": _mask(r=(0, 4))},
        {"id": "b", "image": shared, "mask": _mask(c=(0, 3)), "expression": "the building", "ambiguous": True,
         "followup": None, "followup_mask": None, "candidates_mask": _mask(c=(0, 6)),
         "distractors_mask": _mask(c=(40, 44))},
    ]
    path = write_jsonl(recs, tmp_path / "ds")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["image"] == lines[1]["image"]  # the shared image is written once
    assert len(list((tmp_path / "ds" / "images").iterdir())) == 1
    assert "followup" not in lines[1] and lines[0]["followup_mask"] == "masks/a_followup.png"
    back = list(read_jsonl(path))
    assert [r["id"] for r in back] == ["a", "b"]
    for r, o in zip(back, recs, strict=False):
        np.testing.assert_array_equal(r["image"], o["image"])
        np.testing.assert_array_equal(r["mask"], o["mask"])
        assert r["expression"] == o["expression"] and r["ambiguous"] == o["ambiguous"]
    np.testing.assert_array_equal(back[0]["followup_mask"], recs[0]["followup_mask"])
    assert back[0]["followup"] == "no, the one further north" and back[1]["followup_mask"] is None
    assert "candidates_mask" not in back[0] and lines[1]["candidates_mask"] == "masks/b_candidates.png"
    np.testing.assert_array_equal(back[1]["candidates_mask"], recs[1]["candidates_mask"])
    np.testing.assert_array_equal(back[1]["distractors_mask"], recs[1]["distractors_mask"])
    # paths are relative to the file: moving the folder keeps it readable
    moved = tmp_path / "moved"
    (tmp_path / "ds").rename(moved)
    assert len(list(load_records(moved / "data.jsonl"))) == 2


def test_jsonl_missing_mask_names_file(tmp_path):
    path = write_jsonl([{"id": "a", "image": _img(0), "mask": _mask(), "expression": "x"}], tmp_path)
    (tmp_path / "masks" / "a.png").unlink()
    with pytest.raises(DataError, match=r"a\.png"):
        list(read_jsonl(path))
    with pytest.raises(DataError, match="nope.jsonl"):
        list(read_jsonl(tmp_path / "nope.jsonl"))


def test_refsegrs_layout(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(2):
        Image.fromarray(_img(i)).save(tmp_path / "images" / f"{i}.tif")
        Image.fromarray((_mask(c=(i, 20 + i)) * 255).astype(np.uint8)).save(tmp_path / "masks" / f"{i}.tif")
    (tmp_path / "output_phrase_test.txt").write_text("0 vehicle along the road\n1 building with a pool\n")
    recs = list(read_refsegrs(tmp_path, "test"))
    assert [r["expression"] for r in recs] == ["vehicle along the road", "building with a pool"]
    np.testing.assert_array_equal(recs[1]["mask"], _mask(c=(1, 21)))
    np.testing.assert_array_equal(recs[0]["image"], _img(0))
    assert len(list(load_records(f"refsegrs:{tmp_path}:test"))) == 2
    assert len(list(load_records(tmp_path))) == 2  # detected from the folder
    (tmp_path / "masks" / "1.tif").unlink()
    with pytest.raises(DataError, match=r"1\.tif"):
        list(read_refsegrs(tmp_path, "test"))
    with pytest.raises(DataError, match="output_phrase_val.txt"):
        list(read_refsegrs(tmp_path, "val"))


def test_rrsisd_layout(tmp_path):
    (tmp_path / "rrsisd").mkdir()
    img_dir = tmp_path / "images" / "rrsisd" / "JPEGImages"
    img_dir.mkdir(parents=True)
    Image.fromarray(_img(3)).save(img_dir / "00001.png")
    poly_mask = np.zeros((40, 48), bool)
    poly_mask[5:21, 10:31] = True  # polygon (10,5)-(30,5)-(30,20)-(10,20) rasterised inclusive
    inst = {
        "images": [{"id": 1, "file_name": "00001.png", "height": 40, "width": 48}],
        "annotations": [
            {"id": 11, "image_id": 1, "segmentation": [[10, 5, 30, 5, 30, 20, 10, 20]]},
            {"id": 12, "image_id": 1, "segmentation": rle.encode(_mask(r=(30, 38)))},
        ],
    }
    (tmp_path / "rrsisd" / "instances.json").write_text(json.dumps(inst))
    refs = [
        {"ref_id": 0, "ann_id": 11, "image_id": 1, "split": "test", "sentences": [{"sent": "the airplane"}, {"sent": "the plane"}]},
        {"ref_id": 1, "ann_id": 12, "image_id": 1, "split": "test", "sentences": [{"raw": "the storage tank"}]},
        {"ref_id": 2, "ann_id": 12, "image_id": 1, "split": "train", "sentences": [{"sent": "x"}]},
    ]
    with open(tmp_path / "rrsisd" / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f)
    recs = list(read_rrsisd(tmp_path, "test"))
    assert [r["expression"] for r in recs] == ["the airplane", "the plane", "the storage tank"]
    np.testing.assert_array_equal(recs[0]["mask"], poly_mask)
    np.testing.assert_array_equal(recs[2]["mask"], _mask(r=(30, 38)))
    assert len(list(load_records(tmp_path))) == 3


def test_rrsisd_refuses_pickled_objects(tmp_path):
    (tmp_path / "rrsisd").mkdir()
    (tmp_path / "rrsisd" / "instances.json").write_text("{}")
    with open(tmp_path / "rrsisd" / "refs(unc).p", "wb") as f:
        pickle.dump([{"x": np.float64(1.0)}], f)  # needs a global: refused
    with pytest.raises(DataError, match="numpy"):
        list(read_rrsisd(tmp_path))
    (tmp_path / "rrsisd" / "refs(unc).p").unlink()
    with pytest.raises(DataError, match=r"refs\(unc\)\.p"):
        list(read_rrsisd(tmp_path))


def test_risbench_jsonl(tmp_path):
    Image.fromarray(_img(4)).save(tmp_path / "a.png")
    m = _mask(r=(2, 9), c=(3, 40))
    lines = [{"image": "a.png", "sentence": "the long bridge over the river", "segmentation": rle.encode(m)},
             {"image_path": "a.png", "expression": "the tank", "mask": {"size": [40, 48], "counts": rle.mask_to_counts(~m)}}]
    (tmp_path / "ris.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    recs = list(load_records(tmp_path / "ris.jsonl"))  # detected as RISBench by the RLE dicts
    np.testing.assert_array_equal(recs[0]["mask"], m)
    np.testing.assert_array_equal(recs[1]["mask"], ~m)
    assert recs[0]["expression"] == "the long bridge over the river"
    # export to our JSONL and read it back
    out = write_jsonl(read_risbench(tmp_path / "ris.jsonl"), tmp_path / "ours", image_mode="copy")
    back = list(read_jsonl(out))
    np.testing.assert_array_equal(back[1]["mask"], ~m)
    (tmp_path / "a.png").unlink()
    with pytest.raises(DataError, match=r"a\.png"):
        list(read_risbench(tmp_path / "ris.jsonl"))


def test_load_records_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_records(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="synthetic:SPLIT:N"):
        load_records("synthetic:test")
    recs = list(load_records("synthetic:test:2:96"))
    assert len(recs) == 2 and recs[0]["image"].shape == (96, 96, 3)
