"""The click refiner: neutral at initialisation, untouched text turns, and it really learns to segment the
clicked object (and not its look-alike) from a click — a toy task on the S/4 grid, trained in the test."""

import numpy as np
import torch


def test_refiner_is_neutral_at_init_and_skips_text_turns(tiny_model):
    from rrsis_engine.model import build_rsam

    cfg = tiny_model.config.with_overrides(use_click_refiner=True)
    assert "use_click_refiner" not in tiny_model.config.to_dict() and cfg.to_dict()["use_click_refiner"]
    model = build_rsam(cfg, text_encoder=tiny_model.text_encoder).eval()
    state = {k: v for k, v in tiny_model.state_dict().items()}
    state.update({k: v for k, v in model.state_dict().items() if k.startswith("click_refiner.")})
    model.load_state_dict(state)
    s = model.image_size
    with torch.no_grad():
        feats = model.encode_image(torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(1)))
        vd, tg = model.fuse(feats.vd, *model.encode_text(*model.text_embed(["the red roof"])))
        pt, lb = torch.tensor([[[s / 3, s / 2]]]), torch.tensor([[1]])
        for kw in ({}, {"points": pt, "labels": lb}):
            ours, _, _ = model.decode(vd, tg, feats, **kw)
            plain, _, _ = tiny_model.decode(vd, tg, feats, **kw)
            assert torch.equal(ours, plain)  # zero-initialised output: identical masks
        with torch.no_grad():
            model.click_refiner.out.bias.fill_(1.0)
        text_only, _, _ = model.decode(vd, tg, feats)
        clicked, _, _ = model.decode(vd, tg, feats, points=pt, labels=lb)
    assert torch.equal(text_only, tiny_model.decode(vd, tg, feats)[0])  # text turns never go through it
    assert torch.allclose(clicked, tiny_model.decode(vd, tg, feats, points=pt, labels=lb)[0] + 1.0)


def _toy_batch(n, rng, grid=32, channels=8):
    """Two discs in feature channel 0 (look-alikes); the click is on the first, which is the target."""
    v1 = torch.randn(n, channels, grid, grid, generator=torch.Generator().manual_seed(int(rng.integers(1 << 30)))) * 0.3
    target = torch.zeros(n, 1, grid, grid)
    other = torch.zeros(n, 1, grid, grid)
    points = torch.zeros(n, 1, 2)
    yy, xx = np.mgrid[:grid, :grid]
    for i in range(n):
        discs = []
        for _ in range(2):
            cy, cx, r = rng.integers(6, grid - 6, size=2).tolist() + [int(rng.integers(3, 6))]
            discs.append(((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r, cy, cx))
        for m, _, _ in discs:
            v1[i, 0][torch.from_numpy(m)] += 1.0
        (m, cy, cx), (m2, _, _) = discs
        target[i, 0] = torch.from_numpy(m.astype(np.float32))
        other[i, 0] = torch.from_numpy((m2 & ~m).astype(np.float32))
        points[i, 0] = torch.tensor([(cx + 0.5) * 4, (cy + 0.5) * 4])  # model-frame (x, y), stride 4
    return v1, target, other, points


def test_refiner_learns_to_segment_the_clicked_object_only():
    from rrsis_engine.model.click_refiner import ClickRefiner, click_maps

    torch.manual_seed(0)
    grid, channels = 32, 8
    net = ClickRefiner(channels)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    rng = np.random.default_rng(0)
    labels = torch.ones(8, 1, dtype=torch.long)
    for _ in range(150):
        v1, target, _, points = _toy_batch(8, rng, grid, channels)
        maps = click_maps(points, labels, grid, 4, net.sigma)
        out = net(torch.full_like(target, -4.0), torch.zeros_like(target), maps, v1)  # decoder found nothing
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    v1, target, other, points = _toy_batch(32, np.random.default_rng(99), grid, channels)
    with torch.no_grad():
        maps = click_maps(points, torch.ones(32, 1, dtype=torch.long), grid, 4, net.sigma)
        pred = net(torch.full_like(target, -4.0), torch.zeros_like(target), maps, v1) > 0
    t = target > 0.5
    iou = ((pred & t).sum((1, 2, 3)) / (pred | t).sum((1, 2, 3)).clamp(min=1)).float().mean()
    leak = ((pred & (other > 0.5)).sum() / (other > 0.5).sum().clamp(min=1)).item()
    assert iou > 0.6, float(iou)
    assert leak < 0.2, leak  # the look-alike that was not clicked stays background


def test_fine_tuning_adds_the_refiner_to_a_checkpoint_without_it(tiny_model, tmp_path):
    import pytest

    from rrsis_engine.errors import CheckpointError
    from rrsis_engine.model import load_checkpoint, save_checkpoint

    path = save_checkpoint(tiny_model, tmp_path / "m.safetensors")
    model = load_checkpoint(path, text_encoder=tiny_model.text_encoder, add_modules=["click_refiner"])
    assert model.added_modules == ("click_refiner",) and model.config.use_click_refiner
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    with pytest.raises(CheckpointError, match="optional parts"):
        load_checkpoint(path, text_encoder=tiny_model.text_encoder, add_modules=["refiner"])
