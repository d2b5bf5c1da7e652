"""Click-only training samples (no text, a positive first click, no prior) and --reset of model parts."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def tiny_model():
    from rrsis_engine.model import build_rsam, get_config

    torch.manual_seed(0)
    return build_rsam(get_config("rsam-tiny").with_overrides(image_size=64))


def _samples(n, click_only_share, size=64):
    from rrsis_train.easy import easy_sample
    from rrsis_train.trainer import TrainOptions, prepare_sample

    opts = TrainOptions(out="unused", click_share=1.0, click_only_share=click_only_share, augment=False)
    return [prepare_sample(easy_sample(i, size), np.random.default_rng(i), size, opts) for i in range(n)]


def test_click_only_samples_have_no_text_and_no_text_loss(tiny_model):
    from rrsis_train.trainer import TextFeatureCache, TrainStep

    samples = _samples(3, click_only_share=1.0)
    assert all(s.click_only and s.expression == "" and not s.dialogue for s in samples)
    assert not any(s.click_only for s in _samples(3, click_only_share=0.0))

    calls = []
    decode = tiny_model.decode

    def recording_decode(*args, **kw):
        calls.append(kw)
        return decode(*args, **kw)

    tiny_model.decode = recording_decode
    try:
        text = TextFeatureCache(tiny_model).batch([s.expression for s in samples], "cpu")
        _, stats = TrainStep(tiny_model)(samples, text, None, rounds=2)
    finally:
        del tiny_model.decode
    assert stats["loss_text"] is None and stats["loss_click"] is not None
    first_click, second_click = calls[1], calls[2]  # calls[0] is the text turn
    assert not first_click["has_mask"].any() and second_click["has_mask"].all()
    labels, points = first_click["labels"], first_click["points"]
    assert (labels[:, 0] == 1).all()  # the session starts with a positive click …
    for s, (x, y) in zip(samples, points[:, 0].tolist(), strict=True):
        assert s.target[0, int(y) // 4, int(x) // 4] > 0.5  # … inside the target


def test_reset_reinitialises_only_the_named_parts(tiny_model):
    from rrsis_train.trainer import reset_submodules

    from rrsis_engine.errors import RRSISError

    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    with torch.no_grad():
        for p in tiny_model.mask_decoder.parameters():
            p.add_(1.0)
    reset_submodules(tiny_model, ["mask_decoder"])
    after = tiny_model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("mask_decoder.") for k in changed)
    assert not any(torch.equal(tiny_model.mask_decoder.state_dict()[k], before[f"mask_decoder.{k}"] + 1.0)
                   for k in tiny_model.mask_decoder.state_dict() if before[f"mask_decoder.{k}"].is_floating_point())
    with pytest.raises(RRSISError, match="no such part"):
        reset_submodules(tiny_model, ["decoder"])


def test_parts_added_on_top_of_init_learn_faster(tiny_model, tmp_path):
    from rrsis_train.trainer import Trainer, TrainOptions

    from rrsis_engine.model import save_checkpoint

    init = save_checkpoint(tiny_model, tmp_path / "init.safetensors")
    opts = TrainOptions(out=str(tmp_path / "run"), init=str(init), click_refiner=True, reset=("mask_decoder",),
                        sources=["easy:1"], steps=1, batch=1, lr=1e-3, warmup=0, ckpt_every=0, progress=False)
    trainer = Trainer(opts)
    trainer.train_step()
    ids = {id(p): n for n, p in trainer.model.named_parameters()}
    for g in trainer.opt.param_groups:
        names = [ids[id(p)] for p in g["params"]]
        fresh = all(n.startswith(("click_refiner.", "mask_decoder.")) for n in names)
        assert fresh or not any(n.startswith(("click_refiner.", "mask_decoder.")) for n in names)
        assert g["lr"] == (1e-2 if fresh else 1e-3), (names[:3], g["lr"])
