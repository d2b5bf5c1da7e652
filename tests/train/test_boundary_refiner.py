"""The boundary refiner: it changes only the outline band of the mask shown and never a clicked pixel, it learns to
move a systematically wrong outline onto the object's colour edge, and ``rrsis train --train-only boundary_refiner
--refiner-cache N`` plays records through the engine, trains it alone and writes a model the predictor uses."""

import numpy as np
import pytest
import torch


def _squares(n: int, seed: int, shrink: int = 2, size: int = 64):
    """``n`` scenes: a coloured square on a noisy background of another colour → (images n×size×size×3 uint8, the
    squares (the truth), the masks drawn ``shrink`` px inside them, as a model that stops short of the edge would)."""
    rng = np.random.default_rng(seed)
    images, truths, masks = [], [], []
    for _ in range(n):
        image = np.clip(rng.integers(60, 120, 3) + rng.normal(0, 6, (size, size, 3)), 0, 255)
        top, left = rng.integers(8, 24, 2)
        side = int(rng.integers(18, 32))
        image[top:top + side, left:left + side] = np.clip(rng.integers(150, 250, 3) + rng.normal(0, 6, (side, side, 3)),
                                                          0, 255)
        truth = np.zeros((size, size), bool)
        truth[top:top + side, left:left + side] = True
        mask = np.zeros_like(truth)
        mask[top + shrink:top + side - shrink, left + shrink:left + side - shrink] = True
        images.append(image.astype(np.uint8))
        truths.append(truth)
        masks.append(mask)
    return images, truths, masks


def test_only_the_outline_band_changes_and_clicked_pixels_keep_their_label():
    from rrsis_engine.model.boundary_refiner import BAND, BoundaryRefiner, outline_band, refine_mask

    images, _, masks = _squares(1, seed=0)
    refiner = BoundaryRefiner().eval()
    assert np.array_equal(refine_mask(refiner, images[0], masks[0]), masks[0])  # zero output layer: unchanged
    torch.nn.init.constant_(refiner.out.bias, 50.0)  # says "object" everywhere
    grown = refine_mask(refiner, images[0], masks[0])
    band = outline_band(masks[0])
    assert np.array_equal(grown, masks[0] | band)  # grown by exactly the band, nothing farther
    rows, cols = np.nonzero(masks[0])
    assert grown.sum() == (np.ptp(rows) + 1 + 2 * BAND) * (np.ptp(cols) + 1 + 2 * BAND)
    outside = (int(cols.min()) - 1, int(rows.min()) - 1)  # (x, y): a pixel of the band outside the mask
    kept = refine_mask(refiner, images[0], masks[0], clicks=[outside], click_labels=[0])
    assert not kept[outside[1], outside[0]] and kept.sum() == grown.sum() - 1
    empty = np.zeros_like(masks[0])
    assert not refine_mask(refiner, images[0], empty).any()  # nothing to redraw: no object appears


def test_objects_no_wider_than_the_band_are_left_alone():
    """A refiner that says "background" everywhere trims a large object's outline band but cannot erase a small
    object (5×5 px: every pixel within the band) or the band around it: it has no core to anchor the outline."""
    from rrsis_engine.model.boundary_refiner import BAND, BoundaryRefiner, coreless_zone, refine_mask

    images, _, _ = _squares(1, seed=1)
    mask = np.zeros((64, 64), bool)
    mask[8:40, 8:40] = True  # large: a core beyond the band
    mask[50:55, 50:55] = True  # small: no pixel farther than BAND from its outline
    refiner = BoundaryRefiner().eval()
    torch.nn.init.constant_(refiner.out.bias, -50.0)
    trimmed = refine_mask(refiner, images[0], mask)
    assert np.array_equal(trimmed[45:, 45:], mask[45:, 45:])  # the small one, whole
    assert trimmed[8 + BAND:40 - BAND, 8 + BAND:40 - BAND].all() and trimmed[8:40, 8:40].sum() == (32 - 2 * BAND) ** 2
    zone = coreless_zone(mask)
    assert zone[50 - BAND:55 + BAND, 50 - BAND:55 + BAND].all() and zone.sum() == (5 + 2 * BAND) ** 2
    assert not coreless_zone(np.zeros_like(mask)).any()


def test_tiles_give_what_one_pass_over_the_window_gives():
    from rrsis_engine.model.boundary_refiner import BoundaryRefiner, refiner_input, tiled_logits

    torch.manual_seed(0)
    refiner = BoundaryRefiner().eval()
    torch.nn.init.normal_(refiner.out.weight, std=0.5)
    pixels = np.random.default_rng(0).integers(0, 255, (150, 170, 3), dtype=np.uint8)
    mask = np.zeros((150, 170), bool)
    mask[20:130, 30:60] = True
    x = refiner_input(pixels, mask)
    wanted = np.zeros_like(mask)
    wanted[10:140, 25:70] = True  # tiles of 40 px: some hold wanted pixels, some do not
    with torch.inference_mode():
        whole = refiner(x)[0, 0].numpy()
        tiled = tiled_logits(refiner, x, wanted, tile=40)
    assert np.allclose(tiled[wanted], whole[wanted], atol=1e-5)
    assert not tiled[:, 120:].any()  # tiles without a wanted pixel are not computed


@pytest.mark.slow
def test_a_trained_refiner_moves_an_outline_that_stops_short_onto_the_colour_edge():
    """Masks 2 px inside their squares (IoU ≈ 0.75): 300 steps on crops of 40 training scenes, then the masks of 20
    other scenes redrawn come close to the squares."""
    from rrsis_train.refiner_cache import RefinerCache, cached_refiner_loss

    from rrsis_engine import metrics as M
    from rrsis_engine.model.boundary_refiner import BoundaryRefiner, refine_mask

    images, truths, masks = _squares(40, seed=1)
    cache = RefinerCache([torch.from_numpy(im) for im in images], torch.arange(40),
                         [torch.from_numpy(np.packbits(m)) for m in masks],
                         [torch.from_numpy(np.packbits(t)) for t in truths], meta={})
    image, mask, truth = cache.turn(3)
    assert np.array_equal(image, images[3]) and np.array_equal(mask, masks[3]) and np.array_equal(truth, truths[3])
    torch.manual_seed(0)
    refiner = BoundaryRefiner()
    model = torch.nn.Module()
    model.boundary_refiner = refiner
    opt = torch.optim.AdamW(refiner.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(300):
        loss = cached_refiner_loss(model, cache, rng, 8, "cpu")
        opt.zero_grad()
        loss.backward()
        opt.step()
    refiner.eval()
    images, truths, masks = _squares(20, seed=2)
    before = np.mean([M.iou(m, t) for m, t in zip(masks, truths, strict=True)])
    after = np.mean([M.iou(refine_mask(refiner, im, m), t) for im, m, t in zip(images, masks, truths, strict=True)])
    assert before < 0.8 and after > 0.92, (before, after)


@pytest.mark.slow
def test_refiner_trained_alone_on_the_engines_turns_is_saved_and_used_by_the_predictor(easy_task_model,
                                                                                      train_parts_alone, tmp_path):
    """``--boundary-refiner --train-only boundary_refiner --refiner-cache 12``: 12 records played through the engine
    (text turn and up to two clicks each), 20 steps on crops of their outlines; every other weight unchanged (checked
    by ``train_parts_alone``); the written model loads with the refiner, and the predictor redraws outlines with it
    unless told not to."""
    from rrsis_train.easy import EasySource
    from rrsis_train.trainer import Trainer, TrainOptions

    from rrsis_engine.errors import RRSISError
    from rrsis_engine.imageio import RasterImage
    from rrsis_engine.model import load_checkpoint
    from rrsis_engine.predictor import Predictor

    trainer = train_parts_alone(easy_task_model, tmp_path, ("boundary_refiner",), EasySource(128), seed=1,
                                boundary_refiner=True, refiner_cache=12, steps=20, batch=4, lr=1e-3, warmup=2,
                                fresh_lr_mult=1.0)
    cache = trainer.refiner_cache
    assert (tmp_path / "run" / "refiner-cache.pt").is_file() and 12 <= len(cache) <= 36
    assert cache.meta["records"] == 12 and len(cache.images) <= 12
    trained = trainer.model.boundary_refiner.out.weight
    assert trained.abs().sum() > 0  # the zero-initialised output layer learned something

    model = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert model.config.use_boundary_refiner
    assert torch.equal(model.boundary_refiner.out.weight, trained.detach())
    image = RasterImage(EasySource(128).get(0)["image"])
    on = Predictor(model, device="cpu", disk_cache=False).predict("the red square", image=image)
    off = Predictor(model, device="cpu", disk_cache=False, boundary_refine=False).predict("the red square", image=image)
    assert "outline_ms" in on.timings and "outline_ms" not in off.timings

    with pytest.raises(RRSISError, match="--refiner-cache"):  # the decoder's turns are not what it redraws
        Trainer(TrainOptions(out=str(tmp_path / "bad"), init=str(tmp_path / "parent.safetensors"),
                             train_only=("boundary_refiner",), boundary_refiner=True, sources=["easy:1"], steps=1,
                             progress=False))
