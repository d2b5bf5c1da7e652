"""The turn-error head: neutral at initialisation (no mask changes, a constant map), trained alone with
``--train-only error_head`` on top of a checkpoint it leaves every other weight untouched and learns where each
turn's mask — text turn or correction click — is wrong; the predictor then reports σ(E) as the uncertainty, which
follows the clicks."""

import warnings

import numpy as np
import pytest
import torch


def test_error_head_changes_no_mask_and_starts_constant(tiny_model):
    from rrsis_engine.model import build_rsam

    cfg = tiny_model.config.with_overrides(use_error_head=True)
    assert "use_error_head" not in tiny_model.config.to_dict() and cfg.to_dict()["use_error_head"]
    model = build_rsam(cfg, text_encoder=tiny_model.text_encoder).eval()
    state = dict(tiny_model.state_dict())
    state.update({k: v for k, v in model.state_dict().items() if k.startswith("error_head.")})
    model.load_state_dict(state)
    s = model.image_size
    with torch.no_grad():
        feats = model.encode_image(torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(1)))
        vd, tg = model.fuse(feats.vd, *model.encode_text(*model.text_embed(["the red roof"])))
        pt, lb = torch.tensor([[[s / 3, s / 2]]]), torch.tensor([[1]])
        low, _, _ = model.decode(vd, tg, feats, points=pt, labels=lb)
        assert torch.equal(low, tiny_model.decode(vd, tg, feats, points=pt, labels=lb)[0])
        error = model.turn_error(low, feats.v1, pt, lb)
    assert error.shape == low.shape
    assert torch.allclose(error, torch.full_like(error, -2.0))  # σ ≈ 0.12 everywhere until trained
    assert tiny_model.turn_error(low, feats.v1) is None


def test_train_only_names_a_real_part(tiny_model):
    from rrsis_train.trainer import freeze_all_but

    from rrsis_engine.errors import RRSISError

    with pytest.raises(RRSISError, match="no such part.*mask_decoder"):
        freeze_all_but(tiny_model, ["error_head"])


def test_gain_candidates_split_between_error_pixels_and_likely_wrong_cells():
    from rrsis_train.trainer import gain_candidate_split

    assert gain_candidate_split(4) == (2, 1)  # the standard click + 2 error pixels + 1 likely-wrong cell
    assert gain_candidate_split(8) == (4, 3)
    assert gain_candidate_split(2) == (0, 1)
    with pytest.raises(ValueError, match="at least 2"):
        gain_candidate_split(1)


def _auroc(scores, labels):
    from rrsis_engine.metrics import auroc

    return auroc(np.concatenate(scores), np.concatenate(labels))


@pytest.mark.slow
def test_error_head_trained_alone_learns_each_turns_errors(easy_task_model, train_parts_alone, tmp_path):
    from rrsis_train.clicks import sample_correction_click
    from rrsis_train.easy import EasySource, easy_sample

    from rrsis_engine.predictor import Predictor

    trainer = train_parts_alone(easy_task_model, tmp_path, ("error_head", "click_gain_head"),
                                EasySource(128, twin_share=0.4), seed=1, error_head=1.0, click_gain_head=1.0,
                                gain_candidates=6, steps=120, batch=8, lr=3e-4, warmup=10, click_share=0.7,
                                click_rounds=2, log_every=20)
    model = trainer.model
    assert model.config.use_error_head and model.config.use_click_gain_head
    errors = [row["error"] for row in trainer.history if row.get("error") is not None]
    third = len(errors) // 3
    assert np.mean(errors[-third:]) < np.mean(errors[:third]), errors
    # the click-gain head got its loss every step and left its zero start (its effect on suggestions is measured on
    # the shipped model: MODEL_CARD.md, "Suggested clicks"; the easy task's masks leave little to gain)
    assert sum(row.get("click_gain") is not None for row in trainer.history) >= 100
    assert float(model.click_gain_head.out.weight.abs().sum()) > 0

    predictor = Predictor(model, device="cpu", disk_cache=False, encoder_precision="fp32")
    scores = {"text": ([], []), "click": ([], [])}
    moved = []
    for n in range(10**6, 10**6 + 16):  # item numbers never used in training
        rec = easy_sample(n, size=128)
        predictor.set_image(rec["image"])
        pred = predictor.predict(rec["expression"])
        scores["text"][0].append(pred.uncertainty.ravel())
        scores["text"][1].append((pred.mask != rec["mask"]).ravel())
        click = sample_correction_click(pred.mask, rec["mask"], np.random.default_rng(n), center_prob=1.0)
        if click is None:
            continue
        after = predictor.predict(rec["expression"], points=np.array([click[:2]], np.float32),
                                  labels=np.array([click[2]]), mask_input=pred.low_res_logits)
        scores["click"][0].append(after.uncertainty.ravel())
        scores["click"][1].append((after.mask != rec["mask"]).ravel())
        moved.append(float(np.abs(after.uncertainty - pred.uncertainty).max()))
        assert after.suggested_click is None or (0 <= after.suggested_click[0] < 128 and 0 <= after.suggested_click[1] < 128)
    for turn, (s, wrong) in scores.items():
        assert _auroc(s, wrong) > 0.85, (turn, _auroc(s, wrong))  # an untrained head's constant map scores 0.5
    assert moved and max(moved) > 0.1  # the uncertainty map follows the clicks


def test_click_gain_head_starts_at_zero_and_suggests_its_best_cell(tiny_model):
    from rrsis_engine import postprocess
    from rrsis_engine.model import build_rsam

    model = build_rsam(tiny_model.config.with_overrides(use_click_gain_head=True), text_encoder=tiny_model.text_encoder)
    g = model.image_size // 4
    with torch.no_grad():
        gain = model.click_gain(torch.randn(1, 1, g, g), torch.randn(1, model.config.d_model // 8, g, g))
    assert torch.equal(gain, torch.zeros_like(gain))
    assert postprocess.suggest_by_gain(np.zeros((128, 128), bool), gain[0, 0].numpy()) is None  # nothing promised

    mask = np.zeros((128, 128), bool)
    mask[:64] = True
    gain_low = np.zeros((32, 32), np.float32)
    gain_low[4, 20] = 0.8  # inside the mask: a negative click
    assert postprocess.suggest_by_gain(mask, gain_low) == (82.0, 18.0, 0)
    gain_low[28, 2] = 1.5  # outside, larger: a positive click there
    assert postprocess.suggest_by_gain(mask, gain_low) == (10.0, 114.0, 1)
    # once clicked there, that place is answered even if the head still promises a gain: the next best cell
    assert postprocess.suggest_by_gain(mask, gain_low, clicks=[(10.0, 114.0)]) == (82.0, 18.0, 0)
    assert postprocess.suggest_by_gain(mask, gain_low, clicks=[(10.0, 114.0), (82.0, 18.0)]) is None
    # a click on a cell ruled out (-inf: σ(E) says it is right) is not discounted into -inf × 0 = nan
    ruled_out = np.full((32, 32), -np.inf, np.float32)
    ruled_out[4, 20] = 0.8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert postprocess.suggest_by_gain(mask, ruled_out, clicks=[(10.0, 114.0)]) == (82.0, 18.0, 0)
    # with the error head's wrong cells: only they are suggested, and the click goes deep into the best cell's region
    # of them on its side of the mask (a 10×6-cell false negative whose best cell is at its corner: to its middle)
    wrong = np.zeros((32, 32), bool)
    wrong[20:30, 10:16] = True  # outside the mask (rows 16-31 of the grid are background)
    wrong[4, 20] = True
    gain_low[:] = 0.0
    gain_low[20, 10] = 1.0  # the region's corner cell
    gain_low[28, 2] = 2.0  # a larger gain on a cell the error head thinks right: not suggested
    x, y, label = postprocess.suggest_by_gain(mask, gain_low, wrong_low=wrong)
    assert label == 1 and 22 <= int(y) // 4 <= 27 and int(x) // 4 in (12, 13)  # 3 cells from every side
    # a region straddling the mask's edge is split at it: the click stays on the best cell's side
    wrong[:] = False
    wrong[14:30, 8:13] = True  # grid rows 14-15 inside the mask, 16-29 (the deeper part) outside
    gain_low[:] = 0.0
    gain_low[14, 9] = 1.0
    x, y, label = postprocess.suggest_by_gain(mask, gain_low, wrong_low=wrong)
    assert label == 0 and mask[int(y), int(x)] and int(y) // 4 in (14, 15)
