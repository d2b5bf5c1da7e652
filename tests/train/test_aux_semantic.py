"""Dense auxiliary supervision: synthetic records carry a per-pixel category map, augmentation keeps it aligned,
and ``--aux-semantic`` trains a semantic head on V_d whose loss falls."""

import numpy as np
import pytest
import torch

from rrsis_engine.data.expressions import SEMANTIC_CLASSES


def test_synthetic_records_carry_the_category_of_every_object_pixel():
    from rrsis_engine.data.synthetic import generate_sample

    for seed in range(5):
        s = generate_sample(seed, 128)
        sem = s.to_record()["semantic"]
        assert sem.shape == s.mask.shape and sem.dtype == np.uint8
        for o in s.objects:
            assert (sem[o.mask] == SEMANTIC_CLASSES.index(o.category)).all()
        owned = np.zeros_like(s.mask)
        for o in s.objects:
            owned |= o.mask
        assert (sem[~owned] == 0).all()


def test_augment_moves_the_category_map_with_the_image_and_hides_it_under_black_rectangles():
    from rrsis_train.sources import augment

    from rrsis_engine.data.synthetic import generate_sample

    rec = generate_sample(3, 128).to_record()
    rec["expression"] = "the pool"  # no direction word: rotations and flips allowed
    original = rec["semantic"].copy()
    seen_rotation = seen_rect = False
    for i in range(20):
        out = augment(rec, np.random.default_rng(i), color=False)
        known = out["semantic"] != 255
        seen_rect |= not known.all()
        assert (out["image"][~known] == 0).all()  # unknown exactly where the image was blacked out
        # target pixels (not hidden) keep the target's category: the map moved with the mask
        target_labels = np.unique(out["semantic"][out["mask"] & known])
        assert set(target_labels) <= set(np.unique(original[rec["mask"]]))
        seen_rotation |= not np.array_equal(out["mask"], rec["mask"])
    assert seen_rotation and seen_rect
    assert np.array_equal(rec["semantic"], original)  # the (cached) source record is never modified


def test_semantic_target_is_area_fractions_on_the_s16_grid_with_padding_unknown():
    from rrsis_train.trainer import semantic_target

    sem = np.zeros((64, 128), np.uint8)  # landscape: content in the top half of the square frame
    sem[:, :64] = SEMANTIC_CLASSES.index("pool")
    sem[:8, :8] = 255
    t = semantic_target(sem, 128)  # S = 128 → 8×8 grid, content rows 0-3
    assert t.shape == (len(SEMANTIC_CLASSES), 8, 8)
    known = t.sum(0)
    assert torch.allclose(known[4:], torch.zeros(4, 8))  # padding
    assert known[0, 0] == pytest.approx(0.75)  # a quarter of the cell hidden by 255
    assert t[SEMANTIC_CLASSES.index("pool"), 2, 1] == pytest.approx(1.0)
    assert t[0, 2, 6] == pytest.approx(1.0)


def test_aux_semantic_trains_the_head_and_its_loss_falls(tmp_path):
    from rrsis_train.trainer import Trainer, TrainOptions

    from rrsis_engine.model import load_checkpoint

    opts = TrainOptions(out=str(tmp_path / "run"), config="rsam-tiny", image_size=64, steps=40, batch=4,
                        sources=["synth:1"], synth_reuse=8, lr=3e-3, warmup=0, click_share=0.0,
                        dialogue_share=0.0, aux_semantic=1.0, ckpt_every=0, threads=1, progress=False,
                        log_every=1)
    trainer = Trainer(opts)
    assert trainer.model.semantic_head is not None
    trainer.fit()
    losses = [h["semantic"] for h in trainer.history if h.get("semantic") is not None]
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:4]), np.round(losses, 2)
    model = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert model.config.use_semantic_head and model.semantic_head is not None
