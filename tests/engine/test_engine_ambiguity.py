"""Ambiguity cues, the calibrated score and the flag threshold (rrsis_engine.ambiguity)."""

import json

import numpy as np
import pytest

from rrsis_engine.ambiguity import (
    FEATURES,
    AmbiguityCalibration,
    ambiguity_features,
    candidate_entropy,
    fit_calibration,
    score_and_flag,
)
from rrsis_engine.errors import DataError
from rrsis_engine.prediction import Candidate


def _candidate(score, area):
    m = np.zeros((40, 40), bool)
    m.flat[:area] = True
    return Candidate(mask=m, score=score, bbox=(0, 0, 40, 40), point=(0.0, 0.0))


def test_candidate_entropy_separates_one_from_two_equal_regions():
    assert candidate_entropy([_candidate(0.9, 100)]) == 0.0
    assert candidate_entropy([_candidate(0.9, 100), _candidate(0.9, 100)]) == pytest.approx(1.0)
    assert 0 < candidate_entropy([_candidate(0.9, 400), _candidate(0.3, 16)]) < 0.5  # 18 vs 1.2


def test_features_read_the_cues():
    prob = np.zeros((16, 16))
    prob[2:6, 2:6] = 0.9
    prob[10:14, 10:14] = 0.9
    unc = 1 - np.abs(2 * prob - 1)
    f = ambiguity_features([_candidate(0.9, 16), _candidate(0.9, 16)], prob, unc, object_prob=0.7, iou_score=0.4)
    assert set(f) == set(FEATURES)
    assert f["second_share"] == pytest.approx(1.0) and f["n_candidates"] == pytest.approx(np.log(3))
    assert f["uncertainty"] == pytest.approx(0.2) and f["object_score"] == 0.7 and f["iou_score"] == 0.4
    assert f["head_score"] == 0.0  # no ambiguity head
    assert ambiguity_features([], prob, unc, 0.7, 0.4, head_prob=0.8)["head_score"] == 0.8


def test_calibration_fitted_before_the_head_cue_gives_it_no_weight():
    cues, labels = _synthetic_cues(200, 3)
    cal = fit_calibration(cues, labels).to_dict()
    for part in ("weights", "mean", "std"):
        del cal[part]["head_score"]
    old = AmbiguityCalibration.from_dict(cal)
    assert old.weights["head_score"] == 0.0
    assert old.score({**cues[0], "head_score": 0.0}) == old.score({**cues[0], "head_score": 1.0})


def _synthetic_cues(n, seed):
    """Ambiguous cases have two strong candidates and higher uncertainty; noisy, overlapping classes."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.4
    cues = []
    for amb in labels:
        cues.append({
            "candidate_entropy": float(np.clip(rng.normal(0.7 if amb else 0.25, 0.25), 0, 1)),
            "n_candidates": float(np.log1p(rng.integers(2, 5) if amb else rng.integers(1, 3))),
            "second_share": float(np.clip(rng.normal(0.7 if amb else 0.3, 0.2), 0, 1)),
            "uncertainty": float(np.clip(rng.normal(0.5 if amb else 0.35, 0.1), 0, 1)),
            "object_score": float(rng.uniform(0.5, 1)),  # uninformative
            "iou_score": float(np.clip(rng.normal(0.5 if amb else 0.7, 0.15), 0, 1)),
            "head_score": float(np.clip(rng.normal(0.6 if amb else 0.4, 0.3), 0, 1)),
        })
    return cues, labels.tolist()


def test_calibration_reaches_the_precision_and_generalises():
    from rrsis_engine.metrics import auroc

    cues, labels = _synthetic_cues(400, 0)
    cal = fit_calibration(cues, labels, target_precision=0.9)
    assert cal.precision >= 0.9 and cal.recall > 0.3 and cal.n == 400
    # the fitted weights lean on the informative cues, not on the uninformative object score
    assert cal.weights["candidate_entropy"] > 0 and abs(cal.weights["object_score"]) < cal.weights["candidate_entropy"]
    test_cues, test_labels = _synthetic_cues(400, 1)
    scores = [score_and_flag(c, cal)[0] for c in test_cues]
    assert auroc(scores, test_labels) > 0.9
    baseline = [score_and_flag(c, None)[0] for c in test_cues]
    assert auroc(scores, test_labels) > auroc(baseline, test_labels)
    flags = np.array([score_and_flag(c, cal)[1] for c in test_cues])
    assert (np.array(test_labels)[flags]).mean() > 0.8  # held-out precision near the target
    # round trip through the checkpoint JSON
    again = AmbiguityCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.score(test_cues[0]) == pytest.approx(cal.score(test_cues[0]))


def test_calibration_refuses_too_little_data():
    cues, labels = _synthetic_cues(8, 0)
    with pytest.raises(DataError, match="at least 10"):
        fit_calibration(cues, labels)
    with pytest.raises(DataError, match="both labels"):
        fit_calibration(*_synthetic_cues(40, 0)[:1], [False] * 40)
    with pytest.raises(DataError, match="rrsis calibrate"):
        AmbiguityCalibration.from_dict({"weights": {"uncertainty": 1.0}})


def test_rrsis_calibrate_writes_the_calibration_the_predictor_uses(tiny_model, tmp_path, monkeypatch):
    import rrsis_engine.data.readers as readers
    from rrsis_engine.cli import main
    from rrsis_engine.model.checkpoint import config_path_for, save_checkpoint
    from rrsis_engine.predictor import load_predictor

    rng = np.random.default_rng(0)
    records = []
    for i in range(12):
        img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
        records.append({"id": str(i), "image": img, "mask": np.zeros((64, 64), bool),
                        "expression": ["the red roof", "the pool", "the road"][i % 3], "ambiguous": i % 2 == 0})
    monkeypatch.setattr(readers, "load_records", lambda spec: records)
    ckpt = save_checkpoint(tiny_model, tmp_path / "tiny.safetensors")
    assert main(["calibrate", "--model", str(ckpt), "--data", "fixture", "--precision", "0.6"]) == 0
    cal = json.loads(config_path_for(ckpt).read_text())["meta"]["ambiguity_calibration"]
    assert cal["n"] == 12 and cal["n_ambiguous"] == 6 and set(cal["weights"]) == set(FEATURES)
    predictor = load_predictor(str(ckpt), device="cpu", disk_cache=False)
    assert predictor.ambiguity_calibration is not None
    predictor.set_image(records[0]["image"])
    pred = predictor.predict(text="the pool")
    assert pred.ambiguity == pytest.approx(predictor.ambiguity_calibration.score(pred.ambiguity_cues))
    assert pred.ambiguous == (pred.ambiguity >= cal["threshold"])


def test_suggested_click_goes_to_the_most_expected_error_and_not_back_to_an_answered_place():
    from rrsis_engine.postprocess import suggest_click

    mask = np.zeros((64, 64), bool)
    mask[8:24, 8:24] = True  # the model's current mask (image frame, 64×64)
    unc = np.zeros((16, 16))  # expected error on the 4× coarser grid
    unc[2:6, 2:6] = 0.9  # uncertain over the predicted object
    unc[10:12, 12:14] = 1.0  # a smaller, very uncertain spot
    x, y, label = suggest_click(mask, unc, [], ambiguous=False)
    assert 8 <= x < 24 and 8 <= y < 24 and label == 0  # inside the mask: a negative click would answer it
    # once clicked there, that place is answered (σ(U) does not change with clicks): go to the other spot
    x2, y2, label2 = suggest_click(mask, unc, [], ambiguous=False, clicks=[(x, y)])
    assert 48 <= x2 < 56 and 40 <= y2 < 48 and label2 == 1
    assert suggest_click(mask, np.zeros((16, 16)), [], ambiguous=False) is None
    # ambiguous: confirm the best candidate with a positive click
    best = Candidate(mask=mask, score=0.9, bbox=(8, 8, 24, 24), point=(15.0, 15.0))
    assert suggest_click(mask, unc, [best], ambiguous=True) == (15.0, 15.0, 1)
