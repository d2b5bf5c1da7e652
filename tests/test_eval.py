"""The eval loop with an oracle predictor, and `rrsis eval` end to end with a random-weight rsam-tiny."""

import json

import numpy as np
import pytest
from fake_predictor import FakePredictor, fake_prediction
from scipy import ndimage

from rrsis_engine.cli import main
from rrsis_engine.evaluate import evaluate, report_markdown, run_evaluation
from rrsis_engine.prediction import Prediction

KEYS = {"mIoU", "oIoU", "P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9"}


class OraclePredictor(FakePredictor):
    """Text turn: a fixed wrong guess (the follow-up's mask for a follow-up); clicks: add the GT component under a
    positive click, remove the predicted component under a negative one."""

    model_name = "oracle"

    def __init__(self, records):
        super().__init__()
        self.by_text = {r["expression"]: r for r in records}
        self.mask = None

    def record(self, text):
        """The record whose expression or follow-up is ``text``."""
        return self.by_text.get(text) or next(r for r in self.by_text.values() if r.get("followup") == text)

    def answer(self, image, text, points, labels, box):
        rec = self.record(text)
        gt = rec["mask"]
        if points is None:
            if rec.get("followup") == text:
                m = rec["followup_mask"].copy()
            else:
                m = np.zeros_like(gt)
                m[: image.height // 4, : image.width // 4] = True  # wrong guess in the corner
                amb = 0.9 if rec["ambiguous"] else 0.1
        else:
            x, y = points[-1]
            r, c = int(y), int(x)
            m = self.mask.copy()
            if labels[-1] == 1:
                lab, _ = ndimage.label(gt)
                m |= lab == lab[r, c]
            else:
                lab, _ = ndimage.label(m & ~gt)
                m &= lab != lab[r, c]
        self.mask = m
        return fake_prediction(m, low_res=False, iou_score=0.5, object_score=1.0,
                               ambiguity=amb if points is None and rec.get("followup") != text else None)


def _records():
    recs = []
    for i in range(4):
        m = np.zeros((64, 64), bool)
        m[30:50, 30 + i : 50] = True
        recs.append({"id": f"r{i}", "image": np.zeros((64, 64, 3), np.uint8), "mask": m, "expression": f"thing {i}",
                     "ambiguous": i % 2 == 0, "followup": f"no, the other {i}" if i < 2 else None,
                     "followup_mask": m if i < 2 else None, "kind": "category"})
    return recs


def test_evaluate_with_oracle_clicks():
    recs = _records()
    res = run_evaluation(OraclePredictor(recs), recs, clicks=[0, 1, 2], noc=True)
    rep = res.report
    assert rep["model"] == "oracle" and rep["n"] == 4
    assert set(rep["by_clicks"]) == {"0", "1", "2"} and all(set(v) == KEYS for v in rep["by_clicks"].values())
    assert rep["by_clicks"]["0"]["mIoU"] == 0.0  # the corner guess misses every target
    # click 1 adds the whole target; click 2 removes the false-positive corner: IoU 1.0
    assert rep["by_clicks"]["2"]["mIoU"] == 1.0 and rep["by_clicks"]["2"]["P@0.9"] == 1.0
    assert 0 < rep["by_clicks"]["1"]["mIoU"] < 1
    assert rep["NoC@85"] <= 2 and rep["NoC@90"] == 2.0
    assert rep["ambiguity_auroc"] == 1.0  # the oracle's ambiguity score separates the labels perfectly
    assert rep["dialogue"] == {"n": 2, "mIoU": 1.0, "oIoU": 1.0}
    md = report_markdown(res)
    assert "| 2 | 1.000 |" in md and "NoC@90" in md
    json.dumps(rep)  # serialisable


def test_evaluate_without_noc():
    recs = _records()
    rep = evaluate(OraclePredictor(recs), recs, clicks=[0], noc=False)
    assert rep["NoC@85"] is None and set(rep["by_clicks"]) == {"0"}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from rrsis_engine.model import build_rsam
    from rrsis_engine.model.checkpoint import save_checkpoint

    return save_checkpoint(build_rsam("rsam-tiny"), tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def test_cli_eval_end_to_end(tmp_path, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("RRSIS_CACHE_DIR", str(tmp_path / "cache"))
    # a machine too slow for the predictor's automatic zoom-in: the evaluation still pins it on (scores must not
    # depend on the machine's load), and --no-zoom off
    monkeypatch.setattr("rrsis_engine.predictor.MAX_ENCODE_MS", -1.0)
    assert main(["data", "synth", "--n", "4", "--split", "test", "--size", "128", "--out", str(tmp_path / "ds")]) == 0
    out = tmp_path / "rep" / "REPORT.json"
    rc = main(["eval", "--data", str(tmp_path / "ds" / "data.jsonl"), "--model", str(tiny_checkpoint),
               "--clicks", "0,1", "--out", str(out), "--overlays", str(tmp_path / "ov"), "--device", "cpu"])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep["n"] == 4 and rep["model"] == "rsam-tiny"
    assert set(rep["by_clicks"]) == {"0", "1"}
    for row in rep["by_clicks"].values():
        assert set(row) == KEYS and all(0.0 <= v <= 1.0 for v in row.values())
    assert rep["NoC@85"] is None and "ambiguity_auroc" in rep
    assert out.with_suffix(".md").read_text().startswith("# rrsis eval: rsam-tiny")
    assert len(list((tmp_path / "ov").glob("*.png"))) == 4
    per_record = [json.loads(x) for x in (tmp_path / "rep" / "REPORT.records.jsonl").read_text().splitlines()]
    assert len(per_record) == 4 and all(len(r["ious"]) == 2 for r in per_record)
    assert rep["zoom_in"] is True and rep["click_fit"] is True and rep["spatial_words"] is True and rep["complete_roofs"]
    rc = main(["eval", "--data", str(tmp_path / "ds" / "data.jsonl"), "--model", str(tiny_checkpoint), "--clicks", "0",
               "--no-zoom", "--no-click-fit", "--no-spatial-words", "--no-complete-roofs", "--out", str(out),
               "--device", "cpu"])
    rep = json.loads(out.read_text())
    assert rc == 0 and rep["zoom_in"] is False and rep["click_fit"] is False and rep["spatial_words"] is False
    assert rep["complete_roofs"] is False
    for flag in ("`--no-click-fit`", "`--no-spatial-words`", "`--no-complete-roofs`"):
        assert flag in out.with_suffix(".md").read_text()


def test_cli_eval_reports_missing_data(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_policy_click_follows_a_right_suggestion():
    from rrsis_engine.evaluate import policy_click

    gt = np.zeros((64, 64), bool)
    gt[30:50, 30:50] = True
    pred = np.zeros_like(gt)
    pred[0:10, 0:10] = True  # a false positive in the corner
    pred[35:45, 35:45] = True  # part of the target
    suggestion = Prediction(mask=pred, logits=pred.astype(np.float32), low_res_logits=None, iou_score=0.5,
                            object_score=1.0, latency_ms=0.0, suggested_click=(32.2, 31.8, 0))
    # a correction on a missed target pixel: the simulated labeler clicks there, answering truthfully ("positive")
    assert policy_click("suggested", suggestion, pred, gt) == ((32.0, 32.0, 1), True)
    suggestion.suggested_click = (5.0, 5.0, 0)  # on the false positive
    assert policy_click("suggested", suggestion, pred, gt) == ((5.0, 5.0, 0), True)
    assert not suggestion.suggests_confirmation
    # a confirmation ("is it this one?", positive inside the mask) on the target: made
    suggestion.suggested_click = (40.0, 40.0, 1)
    assert suggestion.suggests_confirmation
    assert policy_click("suggested", suggestion, pred, gt) == ((40.0, 40.0, 1), True)
    # the standard protocol ignores the suggestion: centre of the largest error region (the missed ring of the target)
    click, used = policy_click("standard", suggestion, pred, gt)
    assert not used and click[2] == 1 and gt[int(click[1]), int(click[0])] and not pred[int(click[1]), int(click[0])]
    # a confirmation off the target ("no") and a suggestion on a correct pixel fall back to the standard click
    for wrong in ((5.0, 5.0, 1), (40.0, 40.0, 0), (60.0, 60.0, 1)):
        suggestion.suggested_click = wrong
        assert policy_click("suggested", suggestion, pred, gt) == (click, False)


def test_evaluate_with_the_suggested_click_policy():
    recs = _records()

    class Suggesting(OraclePredictor):
        def predict(self, *a, **k):
            p = super().predict(*a, **k)
            p.suggested_click = (5.0, 5.0, 0)  # always the corner false positive of the text turn
            return p

    rep = run_evaluation(Suggesting(recs), recs, clicks=[0, 1, 2], noc=True, click_policy="suggested").report
    assert rep["click_policy"] == "suggested" and 0 < rep["suggested_click_share"] < 1
    # first click removes the corner (suggested), second adds the target (standard fallback)
    assert rep["by_clicks"]["1"]["mIoU"] == 0.0 and rep["by_clicks"]["2"]["mIoU"] == 1.0
    with pytest.raises(Exception, match="click policy"):
        run_evaluation(Suggesting(recs), recs, click_policy="random")


class _MapPredictor(OraclePredictor):
    """The oracle, with an uncertainty map that marks exactly the turn's wrong pixels (or exactly the right ones)."""

    def __init__(self, records, inverted=False):
        super().__init__(records)
        self.inverted = inverted

    def predict(self, text="", **kw):
        pred = super().predict(text, **kw)
        wrong = (pred.mask != self.record(text)["mask"]).astype(np.float32)
        pred.uncertainty = 1 - wrong if self.inverted else wrong
        return pred


def test_the_report_scores_the_uncertainty_map_against_each_turns_errors():
    recs = _records()
    assert evaluate(OraclePredictor(recs), recs, clicks=(0, 1), noc=False)["uncertainty"] is None
    result = run_evaluation(_MapPredictor(recs), recs, clicks=(0, 1), noc=False)
    u = result.report["uncertainty"]
    assert set(u) == {"0", "1"}
    assert u["0"]["auroc"] == 1.0 and u["0"]["corr"] == pytest.approx(1.0)
    assert "uncertainty map vs wrong pixels" in report_markdown(result)
    inverted = evaluate(_MapPredictor(recs, inverted=True), recs, clicks=(0, 1), noc=False)["uncertainty"]
    assert inverted["0"]["auroc"] == 0.0 and inverted["0"]["corr"] == pytest.approx(-1.0)


class _EstimatingPredictor(OraclePredictor):
    """The oracle, whose estimated IoU (Prediction.quality) is each turn's true IoU; its IoU head says 0.5 throughout."""

    def predict(self, text="", **kw):
        from rrsis_engine.metrics import iou

        pred = super().predict(text, **kw)
        pred.quality = iou(pred.mask, self.record(text)["mask"])
        return pred


def test_the_report_scores_the_estimated_iou_of_each_turn_made_against_the_iou_head():
    recs = _records()
    assert evaluate(OraclePredictor(recs), recs, clicks=(0, 1, 2, 3), noc=False)["quality"] is None
    result = run_evaluation(_EstimatingPredictor(recs), recs, clicks=(0, 1, 2, 3), noc=False)
    q = result.report["quality"]
    assert q["n"] == 12  # per record the text turn and two clicks reach IoU 1: no third click is made
    assert q["mae"] == 0.0 and q["bias"] == 0.0 and q["rank_corr"] == pytest.approx(1.0)
    ious = np.array([s.ious[k] for s in result.samples for k in range(3)])
    assert q["decoder_mae"] == pytest.approx(np.abs(0.5 - ious).mean()) and q["decoder_rank_corr"] is None
    assert "estimated IoU (shown to the labeller; bias +0.000)" in report_markdown(result)
