"""`rrsis sessions list|show|stats|export` on a logged session: JSONL / COCO / GeoJSON outputs checked
against the stored masks, the allowed-roots rule, and --since."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rrsis_engine import rle
from rrsis_engine.cli import main
from rrsis_engine.imageio import RasterImage
from rrsis_engine.session import RefinementSession
from rrsis_engine.store import open_store
from rrsis_engine.store.export import bbox_from_rle


@pytest.fixture
def filled(db_url, image, predictor, tmp_path, monkeypatch):
    """Two accepted objects and one rejected on ``image`` (inside tmp_path, the allowed root)."""
    monkeypatch.chdir(tmp_path)
    store = open_store(db_url)
    session = RefinementSession(predictor, image)
    lg = store.start_session(session.image, client="cli", annotator="me", model_version="fake-1")
    session.subscribe(lg)
    session.text("the tennis court")
    session.click(30, 20)
    session.accept()
    session.box(40, 30, 70, 60)
    session.text("the pool")
    session.accept()
    session.text("nothing")
    session.accept(status="rejected")
    lg.close()
    masks = [r.mask for r in store.list_annotations()]
    store.close()
    return db_url, masks


def test_list_show_stats(filled, capsys):
    url, _ = filled
    assert main(["sessions", "list", "--db", url]) == 0
    out = capsys.readouterr().out
    sid = out.splitlines()[1].split()[0]
    assert "cli" in out and "img.png" in out
    assert main(["sessions", "show", sid, "--db", url]) == 0
    out = capsys.readouterr().out
    assert "the tennis court" in out and "annotation" in out and "rejected" in out
    assert main(["sessions", "stats", "--json", "--db", url]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["turns"] == 5 and st["annotations"] == {"accepted": 2, "rejected": 1}
    assert "estimated_iou_vs_accepted" not in st
    # the logged estimates (the fake predictor's: 1 − 0.01 per click) against the accepted masks: "the tennis court"
    # text turn 1.0 for a disc the click then moved away (IoU 0), its click 0.99 (IoU 1); "the pool": its box and text
    # turns 1.0 (IoU 1). The IoU head says 0.9 throughout.
    assert main(["sessions", "stats", "--json", "--estimated-iou", "--db", url]) == 0
    est = json.loads(capsys.readouterr().out)["estimated_iou_vs_accepted"]
    assert est["n"] == 4 and est["bias"] == pytest.approx((1.0 - 0.01) / 4)
    assert est["mae"] == pytest.approx((1.0 + 0.01) / 4) and est["decoder_mae"] == pytest.approx((0.9 + 3 * 0.1) / 4)
    assert main(["sessions", "show", "zzzz", "--db", url]) == 2
    assert "No session" in capsys.readouterr().err


@pytest.mark.parametrize("images", ["reference", "copy"])
def test_export_jsonl(filled, tmp_path, images, image):
    url, masks = filled
    out = tmp_path / "export" / "train.jsonl"
    assert main(["sessions", "export", "--format", "jsonl", "--out", str(out), "--images", images, "--db", url]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["expression"] for x in lines] == ["the tennis court", "the pool"]
    for rec, mask in zip(lines, masks, strict=True):
        got = np.asarray(Image.open(out.parent / rec["mask"])) > 127
        assert np.array_equal(got, mask)
        img_path = out.parent / rec["image"]
        assert np.array_equal(np.asarray(Image.open(img_path)), image.pixels)
        assert (img_path.parent.name == "images") == (images == "copy")
    assert lines[1]["expressions"] == ["the pool"]


def test_export_coco(filled, tmp_path):
    url, masks = filled
    out = tmp_path / "coco.json"
    assert main(["sessions", "export", "--format", "coco", "--out", str(out), "--db", url]) == 0
    coco = json.loads(out.read_text())
    assert len(coco["images"]) == 1 and coco["images"][0]["height"] == 64
    anns = coco["annotations"]
    assert [a["expression"] for a in anns] == ["the tennis court", "the pool"]
    for a, mask in zip(anns, masks, strict=True):
        assert np.array_equal(rle.decode(a["segmentation"]), mask)
        assert a["area"] == mask.sum() and tuple(a["bbox"]) == rle.to_bbox(mask)


def test_bbox_from_rle_matches_decoded_masks():
    rng = np.random.default_rng(3)
    for _ in range(30):
        m = np.zeros((rng.integers(1, 30), rng.integers(1, 30)), bool)
        if rng.random() < 0.8:
            r0, c0 = rng.integers(0, m.shape[0]), rng.integers(0, m.shape[1])
            m[r0 : r0 + rng.integers(1, 10), c0 : c0 + rng.integers(1, 10)] = True
        assert tuple(bbox_from_rle(rle.encode(m))) == rle.to_bbox(m)


def test_export_geojson_in_image_crs(filled, tmp_path):
    url, masks = filled
    out = tmp_path / "objects.geojson"
    assert main(["sessions", "export", "--format", "geojson", "--out", str(out), "--db", url]) == 0
    gj = json.loads(out.read_text())
    assert gj["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32614"
    assert len(gj["features"]) == 2
    for feat, mask in zip(gj["features"], masks, strict=True):
        geometry = feat["geometry"]
        polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        xs = [p[0] for poly in polygons for ring in poly for p in ring]
        ys = [p[1] for poly in polygons for ring in poly for p in ring]
        x, y, w, h = rle.to_bbox(mask)
        # transform: x = 500000 + 0.5 col, y = 4100000 - 0.5 row; polygons follow pixel edges
        assert min(xs) == pytest.approx(500000 + 0.5 * x) and max(xs) == pytest.approx(500000 + 0.5 * (x + w))
        assert max(ys) == pytest.approx(4100000 - 0.5 * y) and min(ys) == pytest.approx(4100000 - 0.5 * (y + h))
        assert feat["properties"]["image_hash"]


def test_export_never_reads_outside_allowed_roots(db_url, predictor, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    outside.mkdir()
    root.mkdir()
    secret = outside / "secret.png"
    Image.fromarray(np.full((16, 16, 3), 7, np.uint8)).save(secret)
    os.symlink(secret, root / "link.png")  # a symlink inside the root pointing outside
    monkeypatch.chdir(root)
    store = open_store(db_url)
    for path in (secret, root / "link.png"):
        img = RasterImage(np.asarray(Image.open(path)), path=str(path))
        s = RefinementSession(predictor, img)
        lg = store.start_session(s.image, client="cli")
        s.subscribe(lg)
        s.text("x")
        s.accept()
        lg.close()
    store.close()
    out = root / "exp" / "train.jsonl"
    assert main(["sessions", "export", "--format", "jsonl", "--out", str(out), "--images", "copy", "--db", db_url]) == 0
    assert out.read_text() == ""
    assert not (out.parent / "images").exists()
    # explicitly allowing the folder exports it
    assert main(["sessions", "export", "--format", "jsonl", "--out", str(out), "--images", "copy",
                 "--allowed-root", str(outside), "--db", db_url]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["image"] == lines[1]["image"]  # same pixels: one image row
    assert len(list((out.parent / "images").iterdir())) == 1


def test_export_since_and_errors(filled, tmp_path, capsys):
    url, _ = filled
    out = tmp_path / "a.jsonl"
    assert main(["sessions", "export", "--format", "jsonl", "--out", str(out), "--since", "2999-01-01", "--db", url]) == 0
    assert out.read_text() == ""
    assert main(["sessions", "export", "--format", "jsonl", "--out", str(out), "--since", "soon", "--db", url]) == 2
    assert "not a date" in capsys.readouterr().err
    assert main(["sessions", "export", "--format", "coco", "--out", str(tmp_path), "--db", url]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not Path(str(out) + ".part").exists()
