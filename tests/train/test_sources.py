"""Training sources: spec parsing, determinism, augmentation, and the session DB picking up exactly the
accepted pairs."""

import numpy as np
import pytest
from rrsis_train.clicks import sample_correction_click
from rrsis_train.easy import EasySource
from rrsis_train.sources import MixedSource, augment, has_direction, parse_source, session_pairs

from rrsis_engine.errors import DataError


def test_parse_source_specs():
    assert parse_source("synth:0.5").weight == 0.5
    s = parse_source("jsonl:data/x.jsonl:2")
    assert (s.kind, s.location, s.weight) == ("jsonl", "data/x.jsonl", 2.0)
    s = parse_source("db:sqlite:///a/b.db")
    assert (s.location, s.weight) == ("sqlite:///a/b.db", 1.0)
    assert parse_source("db:postgresql://u@h/db:3").location == "postgresql://u@h/db"
    with pytest.raises(DataError, match="kind must be"):
        parse_source("imagenet:1")
    with pytest.raises(DataError, match="needs a path"):
        parse_source("jsonl")
    with pytest.raises(DataError, match="positive"):
        parse_source("synth:0")


def test_mixed_source_is_a_pure_function_of_the_sample_number():
    a = MixedSource([EasySource(64), EasySource(64, seed=1)], [1, 3], seed=5)
    b = MixedSource([EasySource(64), EasySource(64, seed=1)], [1, 3], seed=5)
    for n in (0, 7, 123):
        ra, _ = a.get(n)
        rb, _ = b.get(n)
        assert ra["id"] == rb["id"] and np.array_equal(ra["image"], rb["image"])
    picks = [a.get(n)[0]["image"].tobytes() for n in range(40)]
    assert len(set(picks)) > 30


def test_augment_keeps_image_and_mask_aligned_and_respects_directions():
    rec = EasySource(64).get(3)
    rng = np.random.default_rng(0)
    for _ in range(10):
        out = augment(rec, rng, color=False, black_rects=0)
        # the target's pixels are still the target's colour after flips/rotations
        assert out["mask"].sum() == rec["mask"].sum()
        assert (out["image"][out["mask"]] == rec["image"][rec["mask"]][0]).all()
    left = dict(rec, expression="the building on the left")
    assert has_direction(left["expression"]) and not has_direction("the red square")
    for _ in range(5):
        assert np.array_equal(augment(left, rng, color=False, black_rects=0)["mask"], rec["mask"])


def test_correction_click_lands_in_the_error_region():
    gt = np.zeros((16, 16), bool)
    gt[4:10, 4:10] = True
    pred = np.zeros_like(gt)
    rng = np.random.default_rng(0)
    col, row, label = sample_correction_click(pred, gt, rng)
    assert label == 1 and gt[row, col]
    pred = gt.copy()
    pred[12:15, 12:15] = True
    col, row, label = sample_correction_click(pred, gt, rng)
    assert label == 0 and pred[row, col] and not gt[row, col]
    assert sample_correction_click(gt, gt, rng) is None


def test_session_db_source_yields_exactly_the_accepted_pairs(session_db):
    db, accepted = session_db
    recs = [r() for r in session_pairs(db)]
    got = sorted((r["expression"], r["mask"].tobytes()) for r in recs)
    want = sorted((e, m.tobytes()) for e, m in accepted)
    assert got == want
    assert all(r["image"].shape == (48, 64, 3) for r in recs)
    # a held-out share of sessions goes to validation only, never into training
    train = {r()["id"] for r in session_pairs(db, holdout=0.5)}
    held = {r()["id"] for r in session_pairs(db, holdout=0.5, part="holdout")}
    assert train.isdisjoint(held) and len(train | held) == 3


def test_trainer_reads_the_session_db(tmp_path, session_db):
    from rrsis_train.trainer import Trainer, TrainOptions

    db, accepted = session_db
    opts = TrainOptions(out=str(tmp_path / "run"), config="rsam-tiny", image_size=64, steps=1, batch=2,
                        sources=[f"db:{db}:1"], db_holdout=0.0, progress=False, threads=1, ckpt_every=0)
    tr = Trainer(opts)
    seen = {tr.data.get(n)[0]["expression"] for n in range(30)}
    assert seen == {e for e, _ in accepted}
    tr.fit()
    assert (tmp_path / "run" / "model.safetensors").is_file()
