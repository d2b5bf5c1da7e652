"""CroBIM-U uncertainty modules (RUS, UGF, UDLR) in RSAM: switches, exact-identity at init, checkpoints,
the online RUS target and loss, the predictor's uncertainty map. rsam-tiny, random weights."""

import json

import numpy as np
import pytest
import torch

from rrsis_engine.errors import CheckpointError
from rrsis_engine.model import build_rsam, get_config, load_checkpoint, model_hash, save_checkpoint
from rrsis_engine.model.config import RSAMConfig
from rrsis_engine.model.loss import rsam_loss, rus_error_target, rus_loss

SWITCHES = {
    "rus": {"use_rus": True},
    "rus+ugf": {"use_rus": True, "use_ugf": True},
    "rus+udlr": {"use_rus": True, "use_udlr": True},
    "all": {"use_rus": True, "use_ugf": True, "use_udlr": True},
}


def _build(tiny_model, **switches):
    """rsam-tiny with the given switches, sharing the (frozen) text encoder of the session model."""
    torch.manual_seed(0)
    return build_rsam(get_config("rsam-tiny").with_overrides(**switches), text_encoder=tiny_model.text_encoder)


def _copy_shared(src, dst):
    """Load src's weights into dst; dst may only have extra uncertainty-module keys."""
    missing, unexpected = dst.load_state_dict(src.state_dict(), strict=False)
    assert not unexpected and all(k.split(".")[0] in ("rus", "ugf", "udlr") for k in missing), (missing, unexpected)


def _batch(model, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = model.image_size
    images = torch.randn(n, 3, s, s, generator=g)
    hidden, mask = model.text_embed(["the red roof", "the large lake on the left"][:n])
    target = torch.zeros(n, 1, s, s)
    target[0, :, s // 8: s // 2, s // 4: 3 * s // 4] = 1
    target[-1, :, s // 2:, : s // 3] = 1
    return images, hidden, mask, target


def _run(model, images, hidden, mask):
    """→ (logits B×1×S/4×S/4, iou, obj, U or None)."""
    feats = model.encode_image(images)
    txt, txt_mask = model.encode_text(hidden, mask)
    u = model.uncertainty(feats.vd, txt, txt_mask)
    vd, tg = model.fuse(feats.vd, txt, txt_mask, uncertainty=u)
    low, iou, obj = model.decode(vd, tg, feats, uncertainty=u)
    return low, iou, obj, u


@pytest.fixture()
def clean_grads(tiny_model):
    yield
    for p in tiny_model.text_encoder.parameters():  # the shared text encoder must not keep test gradients
        p.grad = None


@pytest.mark.parametrize("name", list(SWITCHES))
def test_each_switch_builds_runs_and_backpropagates(tiny_model, name, clean_grads):
    model = _build(tiny_model, **SWITCHES[name]).train()
    assert set(model.config.uncertainty_modules) == {k[4:] for k in SWITCHES[name]}
    images, hidden, mask, target = _batch(model)
    low, iou, obj, u = _run(model, images, hidden, mask)
    s = model.image_size
    assert low.shape == (2, 1, s // 4, s // 4) and u.shape == (2, 1, s // 16, s // 16)
    loss = rsam_loss(low, iou, obj, target)["loss"] + rus_loss(u, low, target)["loss"]
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if n.split(".")[0] in ("rus", "ugf", "udlr")}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    # RUS learns from its own loss; UGF's zero-initialised projection and UDLR's zero-initialised output conv
    # get gradients on the first step (the rest of each follows once those are non-zero)
    assert grads["rus.mlp.2.weight"].abs().sum() > 0 and grads["rus.v_proj.weight"].abs().sum() > 0
    if "use_ugf" in SWITCHES[name]:
        assert grads["ugf.proj.0.weight"].abs().sum() > 0
    if "use_udlr" in SWITCHES[name]:
        assert grads["udlr.out.weight"].abs().sum() > 0
    # and the full forward (RSAM.forward) takes the same path
    with torch.no_grad():
        assert torch.equal(model(images, hidden, mask)[0], low.detach())


def test_ugf_changes_fusion_once_its_projection_is_trained(tiny_model):
    base = tiny_model
    model = _build(tiny_model, use_rus=True, use_ugf=True).eval()
    _copy_shared(base, model)
    images, hidden, mask, _ = _batch(model)
    with torch.no_grad():
        feats = model.encode_image(images)
        txt, txt_mask = model.encode_text(hidden, mask)
        u = model.uncertainty(feats.vd, txt, txt_mask)
        fused0, _ = model.fuse(feats.vd, txt, txt_mask, uncertainty=u)
        torch.nn.init.normal_(model.ugf.proj[0].weight, std=0.1)
        fused1, _ = model.fuse(feats.vd, txt, txt_mask, uncertainty=u)
        # the gate follows U: a much more uncertain map changes the update
        fused2, _ = model.fuse(feats.vd, txt, txt_mask, uncertainty=u + 5)
        g_lo = model.ugf.gate(u, u.shape[-2:])
        g_hi = model.ugf.gate(u + 5, u.shape[-2:])
    assert not torch.allclose(fused0, fused1) and not torch.allclose(fused1, fused2)
    assert (g_hi > g_lo).all()  # α = 1 at start: higher uncertainty → stronger language injection


def test_udlr_at_init_leaves_the_logits_bit_identical(tiny_model):
    base = tiny_model
    rus_only = _build(tiny_model, use_rus=True).eval()
    with_udlr = _build(tiny_model, use_rus=True, use_udlr=True).eval()
    _copy_shared(base, rus_only)
    _copy_shared(rus_only, with_udlr)
    images, hidden, mask, _ = _batch(base)
    points = torch.tensor([[[20.0, 30.0]], [[100.0, 40.0]]])
    labels = torch.tensor([[1], [0]])
    with torch.no_grad():
        ref = base(images, hidden, mask, points, labels)
        a = rus_only(images, hidden, mask, points, labels)
        b = with_udlr(images, hidden, mask, points, labels)
        for x, y, z in zip(ref, a, b, strict=True):
            assert torch.equal(x, y) and torch.equal(x, z)
        # the test can fail: a non-zero head changes the logits, only where the soft mask M is on
        torch.nn.init.constant_(with_udlr.udlr.out.bias, 1.0)
        c = with_udlr(images, hidden, mask, points, labels)[0]
        feats = with_udlr.encode_image(images)
        txt, txt_mask = with_udlr.encode_text(hidden, mask)
        m = with_udlr.udlr.soft_mask(with_udlr.uncertainty(feats.vd, txt, txt_mask), tuple(c.shape[-2:]))
    assert torch.allclose(c - ref[0], m, atol=1e-5)


def test_udlr_needs_the_uncertainty_map(tiny_model):
    model = _build(tiny_model, use_rus=True, use_udlr=True).eval()
    images, hidden, mask, _ = _batch(model, n=1)
    with torch.no_grad():
        feats = model.encode_image(images)
        txt, txt_mask = model.encode_text(hidden, mask)
        vd, tg = model.fuse(feats.vd, txt, txt_mask)
        with pytest.raises(ValueError, match="uncertainty"):
            model.decode(vd, tg, feats)


def test_checkpoint_with_all_switches_round_trips(tiny_model, tmp_path):
    model = _build(tiny_model, **SWITCHES["all"], udlr_tau=0.4)
    torch.nn.init.normal_(model.udlr.out.weight)  # not the initial values
    path = save_checkpoint(model, tmp_path / "u.safetensors", meta={"t": 1})
    saved = json.loads((tmp_path / "u.json").read_text())["config"]
    assert saved["use_rus"] and saved["use_ugf"] and saved["use_udlr"] and saved["udlr_tau"] == 0.4
    loaded = load_checkpoint(path, text_encoder=tiny_model.text_encoder)
    assert loaded.config == model.config and model_hash(loaded) == model_hash(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    images, hidden, mask, _ = _batch(model, n=1)
    with torch.no_grad():
        assert torch.equal(model.eval()(images, hidden, mask)[0], loaded.eval()(images, hidden, mask)[0])


def test_old_config_dicts_load_and_keep_their_hash(tiny_model, tmp_path):
    cfg = get_config("rsam-tiny")
    d = cfg.to_dict()
    assert not any(k.startswith(("use_rus", "use_ugf", "use_udlr", "rus_", "udlr_")) for k in d)
    old = RSAMConfig.from_dict(json.loads(json.dumps(d)))
    assert old == cfg and not old.use_rus and not old.use_ugf and not old.use_udlr
    assert old.uncertainty_modules == ()
    # a checkpoint written before the modules existed (no such keys, no such weights) loads strictly
    path = save_checkpoint(tiny_model, tmp_path / "old.safetensors")
    assert "use_rus" not in json.loads((tmp_path / "old.json").read_text())["config"]
    loaded = load_checkpoint(path, text_encoder=tiny_model.text_encoder)
    assert loaded.rus is None and loaded.uncertainty(None, None, None) is None
    assert model_hash(loaded) == model_hash(tiny_model)


def test_ugf_or_udlr_without_rus_is_refused():
    with pytest.raises(CheckpointError, match="use_rus"):
        get_config("rsam-tiny").with_overrides(use_udlr=True)
    with pytest.raises(CheckpointError, match="use_rus"):
        get_config("rsam-tiny").with_overrides(use_ugf=True)


def test_adding_modules_to_an_old_checkpoint_keeps_its_weights(tiny_model, tmp_path):
    from rrsis_engine.model import load_checkpoint

    path = save_checkpoint(tiny_model, tmp_path / "old.safetensors")
    model = load_checkpoint(path, text_encoder=tiny_model.text_encoder, add_modules=["rus", "udlr"]).eval()
    assert model.config.use_rus and model.config.use_udlr and not model.config.use_ugf
    assert model.added_modules == ("rus", "udlr")
    old = tiny_model.state_dict()
    for k, v in model.state_dict().items():
        if k.split(".")[0] not in ("rus", "udlr"):
            assert torch.equal(v, old[k]), k
    images, hidden, mask, _ = _batch(model, n=1)
    with torch.no_grad():  # fresh UDLR: the fine-tuning starts from exactly the old predictions
        assert torch.equal(model(images, hidden, mask)[0], tiny_model(images, hidden, mask)[0])
    # any other mismatch still fails and names the keys
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    del state["twgm.final_norm.weight"]
    state["rus.mlp.0.weight"] = torch.zeros(1)
    save_file(state, str(tmp_path / "bad.safetensors"))
    (tmp_path / "bad.json").write_text((tmp_path / "old.json").read_text())
    with pytest.raises(CheckpointError, match="rus.mlp.0.weight"):
        load_checkpoint(tmp_path / "bad.safetensors", text_encoder=tiny_model.text_encoder, add_modules=["rus"])
    del state["rus.mlp.0.weight"]
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError, match="missing keys: twgm.final_norm.weight"):
        load_checkpoint(tmp_path / "bad.safetensors", text_encoder=tiny_model.text_encoder, add_modules=["rus"])


def test_rus_target_is_high_exactly_where_the_prediction_is_wrong():
    # Target 64×64: object in rows 0:32, cols 0:40. Prediction (16×16 logits): the whole top half.
    # Wrong pixels: rows 0:32, cols 40:64. On a 4×4 U grid (16-pixel cells): cells (0..1, 3) fully wrong,
    # cells (0..1, 2) half wrong (cols 40:48 of 32:48), everything else right.
    target = torch.zeros(2, 1, 64, 64)
    target[0, :, :32, :40] = 1
    logits = torch.full((2, 1, 16, 16), -10.0)
    logits[0, :, :8, :] = 10.0
    target[1, :, 16:48, :] = 1  # sample 2: a perfect prediction (a full-width band: no rounded corners
    logits[1, :, 4:12, :] = 10.0  # from the bilinear upsampling)
    z = rus_error_target(logits, target, (4, 4))
    expected = torch.zeros(2, 1, 4, 4)
    expected[0, 0, :2, 3] = 1.0
    expected[0, 0, :2, 2] = 0.5
    assert torch.equal(z, expected)
    # the loss: a U that matches the error map is cheaper than its opposite; error cells weigh n0/n1
    out = rus_loss(torch.where(expected > 0.25, 4.0, -4.0), logits, target)
    worse = rus_loss(torch.where(expected > 0.25, -4.0, 4.0), logits, target)
    assert out["loss"] < worse["loss"]
    assert out["pos_weight"][0] == pytest.approx((13 + 1) / (3 + 1))
    assert torch.equal(out["target"], expected)


def test_rus_loss_weights_hard_samples_and_clamps_the_pixel_weight():
    target = torch.zeros(1, 1, 32, 32)
    target[..., :4, :4] = 1  # a small object, predicted as absent: IoU 0 → a hard sample
    logits = torch.full((1, 1, 8, 8), -10.0)
    u = torch.zeros(1, 1, 8, 8)
    hard = rus_loss(u, logits, target, hard_weight=1.0, max_pos_weight=5.0)
    easy = rus_loss(u, logits, target, hard_weight=0.0, max_pos_weight=5.0)
    assert hard["loss"] == pytest.approx(2 * float(easy["loss"]))
    assert float(hard["pos_weight"][0]) == 5.0  # (63 + 1)/(1 + 1) = 32, clamped


def test_a_few_steps_on_one_batch_reduce_the_rus_loss(tiny_model):
    model = _build(tiny_model, use_rus=True).eval()
    _copy_shared(tiny_model, model)
    images, hidden, mask, target = _batch(model)
    with torch.no_grad():
        feats = model.encode_image(images)
        txt, txt_mask = model.encode_text(hidden, mask)
        vd, tg = model.fuse(feats.vd, txt, txt_mask)
        low, _, _ = model.decode(vd, tg, feats)
    assert rus_error_target(low, target, feats.vd.shape[-2:]).sum() > 0  # something to learn
    opt = torch.optim.Adam(model.rus.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = rus_loss(model.uncertainty(feats.vd, txt, txt_mask), low, target)["loss"]
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0], losses


def test_predictor_shows_the_learned_uncertainty_and_caches_it(tiny_model, rgb_image, tmp_path, monkeypatch):
    import torch.nn.functional as F

    from rrsis_engine.model import transforms as T
    from rrsis_engine.predictor import Predictor

    model = _build(tiny_model, **SWITCHES["all"]).eval()
    p = Predictor(model, device="cpu", cache_dir=tmp_path, encoder_precision="fp32")  # compared with fp32 below
    p.set_image(rgb_image)
    first = p.predict("the red roof")
    h, w = rgb_image.shape[:2]
    assert first.uncertainty.shape == (h, w) and first.uncertainty.dtype == np.float32
    # σ(U) upsampled to the image frame with the padding cropped (not the margin baseline)
    with torch.no_grad():
        x = T.image_to_tensor(rgb_image, model.image_size)
        txt, txt_mask = model.encode_text(*model.text_embed(["the red roof"]))
        u = model.uncertainty(model.encode_image(x).vd, txt, txt_mask)
    g = u.shape[-1]
    vh, vw = T.valid_shape(h, w, g)
    expected = torch.sigmoid(F.interpolate(u[..., :vh, :vw], size=(h, w), mode="bilinear", align_corners=False))
    np.testing.assert_allclose(first.uncertainty, expected[0, 0].numpy(), atol=1e-5)
    calls = {"uncertainty": 0, "fuse": 0, "encode_image": 0}
    for name in calls:
        original = getattr(p.model, name)

        def counted(*a, _n=name, _o=original, **k):
            calls[_n] += 1
            return _o(*a, **k)

        monkeypatch.setattr(p.model, name, counted)
    second = p.predict("the red roof", points=[[60, 50]], labels=[1], mask_input=first.low_res_logits)
    assert calls == {"uncertainty": 0, "fuse": 0, "encode_image": 0}  # a click turn: decoder (+ UDLR) only
    assert np.array_equal(first.uncertainty, second.uncertainty)
    p.predict("the car with a roof box")  # a sentence the spatial words leave to the model: one fusion
    assert calls == {"uncertainty": 1, "fuse": 1, "encode_image": 0}
