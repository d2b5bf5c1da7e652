"""The mask-quality estimate (rrsis_engine.quality): its fit, its storage by `rrsis calibrate`, and the predictor's use."""

import json

import numpy as np
import pytest

from rrsis_engine.errors import DataError
from rrsis_engine.prediction import Prediction
from rrsis_engine.quality import FEATURES, QualityCalibration, estimate_quality, fit_quality, quality_features


def _turns(n, seed):
    """Features of n turns whose IoU falls with the uncertainty inside the mask and rises with the clicks; the decoder
    IoU is noise (as the real head's is for the mask shown)."""
    rng = np.random.default_rng(seed)
    feats, ious = [], []
    for _ in range(n):
        f = {k: float(rng.normal()) for k in FEATURES}
        f["uncertainty_inside"] = float(rng.random())
        f["clicks"] = float(np.log1p(rng.integers(0, 4)))
        z = 3.0 - 5.0 * f["uncertainty_inside"] + 1.5 * f["clicks"]
        feats.append(f)
        ious.append(float(np.clip(1 / (1 + np.exp(-z)) + rng.normal(0, 0.05), 0, 1)))
    return feats, ious


def test_the_fit_learns_which_cues_tell_the_iou_and_generalises():
    cal = fit_quality(*_turns(400, 0), data="fixture")
    assert cal.n == 400 and cal.data == "fixture"
    assert cal.weights["uncertainty_inside"] < -1 and cal.weights["clicks"] > 0.3
    assert abs(cal.weights["decoder_iou"]) < 0.2
    feats, ious = _turns(200, 1)
    est = np.array([cal.estimate(f) for f in feats])
    assert np.abs(est - np.array(ious)).mean() < 0.08
    assert np.corrcoef(est, ious)[0, 1] > 0.9
    assert QualityCalibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal


def test_the_fit_refuses_too_few_turns_and_a_stored_fit_missing_a_cue():
    with pytest.raises(DataError, match="at least 20 turns"):
        fit_quality(*_turns(5, 0))
    d = fit_quality(*_turns(50, 0)).to_dict()
    del d["weights"]["clicks"]
    with pytest.raises(DataError, match="rrsis calibrate"):
        QualityCalibration.from_dict(d)


def _prediction(mask, uncertainty, iou_score=0.5):
    return Prediction(mask=mask, logits=np.where(mask, 5.0, -5.0).astype(np.float32), low_res_logits=None,
                      iou_score=iou_score, object_score=1.0, latency_ms=0.0, uncertainty=uncertainty,
                      ambiguity_cues={"candidate_entropy": 0.0, "second_share": 0.0, "n_candidates": np.log(2)})


def test_features_read_the_shown_mask_and_an_empty_mask_is_estimated_zero():
    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:30] = True  # one part, 200 px
    mask[30:32, 50:52] = True  # a second, 4 px
    unc = np.zeros((40, 60), np.float32)
    unc[10, 10:30] = 0.8  # on the first part's top rim only
    f = quality_features(_prediction(mask, unc), n_clicks=2)
    assert f["uncertainty_inside"] == pytest.approx(0.8 * 20 / 204)
    assert f["uncertainty_rim"] > f["uncertainty_inside"]
    assert f["uncertainty_image"] == pytest.approx(0.8 * 20 / 2400)
    assert f["n_components"] == pytest.approx(np.log(3)) and f["clicks"] == pytest.approx(np.log(3))
    assert f["log_area"] == pytest.approx(np.log(204 / 2400)) and f["decoder_iou"] == 0.5
    cal = fit_quality(*_turns(50, 0))
    empty = _prediction(np.zeros((40, 60), bool), unc)
    assert quality_features(empty, 0) is None and estimate_quality(empty, 0, cal) == 0.0
    assert estimate_quality(_prediction(mask, unc), 2, None) is None
    assert 0 < estimate_quality(_prediction(mask, unc), 2, cal) < 1


def test_rrsis_calibrate_stores_the_estimate_the_predictor_shows_and_keeps_the_ambiguity_fit(
        tiny_model, tmp_path, monkeypatch):
    import rrsis_engine.data.readers as readers
    from rrsis_engine.cli import main
    from rrsis_engine.model.checkpoint import config_path_for, save_checkpoint
    from rrsis_engine.predictor import load_predictor

    rng = np.random.default_rng(0)
    records = []
    for i in range(12):
        img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
        mask = np.zeros((64, 64), bool)
        mask[8 + i:30 + i, 10:40] = True
        records.append({"id": str(i), "image": img, "mask": mask, "ambiguous": i % 2 == 0,
                        "expression": ["the red roof", "the pool", "the road"][i % 3]})
    monkeypatch.setattr(readers, "load_records", lambda spec: records)
    ckpt = save_checkpoint(tiny_model, tmp_path / "tiny.safetensors")
    assert main(["calibrate", "--model", str(ckpt), "--data", "fixture", "--only", "ambiguity"]) == 0
    meta = json.loads(config_path_for(ckpt).read_text())["meta"]
    assert "quality_calibration" not in meta
    assert main(["calibrate", "--model", str(ckpt), "--data", "fixture", "--only", "quality"]) == 0
    after = json.loads(config_path_for(ckpt).read_text())["meta"]
    assert after["ambiguity_calibration"] == meta["ambiguity_calibration"]  # --only quality keeps it
    cal = after["quality_calibration"]
    assert 20 <= cal["n"] <= 48 and cal["data"] == "fixture" and set(cal["weights"]) == set(FEATURES)

    # `rrsis train --val`: the extra sets feed the estimate only, not the ambiguity flag
    from rrsis_engine.calibration import calibrate_model

    fitted, failed, _ = calibrate_model(ckpt, "fixture", quality_data=["real-val"])
    assert not failed and fitted["ambiguity"].n == 12 and fitted["quality"].n == 2 * cal["n"]
    assert fitted["quality"].data == "fixture + real-val"

    predictor = load_predictor(str(ckpt), device="cpu", disk_cache=False)
    predictor.set_image(records[0]["image"])
    pred = predictor.predict(text="the pool", points=[(20, 20)], labels=[1])
    assert pred.mask.any()
    assert pred.quality == pytest.approx(predictor.quality_calibration.estimate(quality_features(pred, 1)))
    assert pred.iou_label == f"estimated IoU {pred.quality:.2f}" and pred.summary()["quality"] is not None
