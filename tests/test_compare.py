"""Paired comparison of two evaluations (`rrsis compare`): the bootstrap, and the command on real eval outputs."""

import json

import numpy as np
import pytest

from rrsis_engine.cli import main
from rrsis_engine.compare import compare_evaluations, paired_bootstrap, records_path, verdict
from rrsis_engine.errors import DataError
from rrsis_engine.evaluate import run_evaluation, write_report
from tests.test_eval import OraclePredictor, _records


def test_paired_bootstrap_interval():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, 200)
    assert paired_bootstrap(base, base) == (0.0, 0.0, 0.0)
    diff, low, high = paired_bootstrap(base, base + 0.1)
    assert diff == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    # a difference that is pure noise around zero: the interval straddles zero and contains the mean difference
    diff, low, high = paired_bootstrap(base, base + rng.normal(0, 0.2, 200))
    assert low < diff < high
    noisy = base + rng.normal(0, 0.2, 200)
    noisy += base.mean() - noisy.mean()
    d, lo, hi = paired_bootstrap(base, noisy)
    assert lo < 0 < hi and abs(d) < 1e-9
    # pairing matters: the same shift hidden in large between-record spread is still detected
    spread = rng.uniform(0, 100, 200)
    assert paired_bootstrap(spread, spread + 0.5 + rng.normal(0, 0.1, 200))[1] > 0.4
    with pytest.raises(DataError):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_verdict_reads_the_interval_with_the_metrics_direction():
    assert verdict(0.01, 0.05) == "candidate better"
    assert verdict(-0.05, -0.01) == "candidate worse"
    assert verdict(-0.01, 0.05) == "within noise"
    assert verdict(-2.0, -0.5, lower_is_better=True) == "candidate better"  # fewer clicks
    assert verdict(0.5, 2.0, lower_is_better=True) == "candidate worse"


def _evaluation(tmp_path, name, policy, records):
    result = run_evaluation(_Suggesting(records), records, clicks=[0, 1, 2], noc=True, click_policy=policy)
    return write_report(result, tmp_path / f"{name}.json")[0]


class _Suggesting(OraclePredictor):
    def predict(self, *a, **k):
        p = super().predict(*a, **k)
        p.suggested_click = (5.0, 5.0, 0)  # the text turn's corner false positive
        return p


def test_compare_two_click_policies_record_by_record(tmp_path, capsys):
    recs = _records()
    standard = _evaluation(tmp_path, "standard", "standard", recs)
    suggested = _evaluation(tmp_path, "suggested", "suggested", recs)
    lines = records_path(standard).read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["r0", "r1", "r2", "r3"]
    ious = json.loads(lines[0])["ious"]
    assert ious[0] == 0.0 and 0 < ious[1] < 1 and ious[2] == 1.0  # corner guess, + target, - corner

    result = compare_evaluations(standard, suggested, resamples=500)
    rows = {r["metric"]: r for r in result["rows"]}
    assert result["n"] == 4 and result["candidate"]["click_policy"] == "suggested"
    assert set(rows) == {"IoU, 0 clicks", "IoU, 1 clicks", "IoU, 2 clicks", "score (mean of 0- and 1-click IoU)",
                         "NoC@85", "NoC@90", "follow-up IoU", "ambiguity AUROC"}
    assert rows["score (mean of 0- and 1-click IoU)"]["diff"] == pytest.approx(0.5 * rows["IoU, 1 clicks"]["diff"])
    assert rows["IoU, 0 clicks"]["diff"] == 0 and rows["IoU, 0 clicks"]["verdict"] == "no difference"
    # one suggested click removes the corner but misses the target on every record: worse, whatever is resampled
    one = rows["IoU, 1 clicks"]
    assert one["worse"] == 4 and one["high"] < 0 and one["verdict"] == "candidate worse"
    assert one["diff"] == pytest.approx(-json.loads(standard.read_text())["by_clicks"]["1"]["mIoU"])
    assert rows["NoC@90"]["same"] == 4 and rows["NoC@90"]["lower_is_better"]
    assert [(r["metric"], r["verdict"]) for r in result["text_only_by_kind"]] == [("category", "no difference")]

    out = tmp_path / "cmp" / "COMPARE.json"
    assert main(["compare", str(standard), str(suggested), "--resamples", "500", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| IoU, 1 clicks |" in printed and "candidate worse" in printed
    assert out.with_suffix(".md").read_text() == printed
    assert json.loads(out.read_text())["rows"][1]["metric"] == "IoU, 1 clicks"


def test_compare_refuses_runs_on_different_records(tmp_path, capsys):
    recs = _records()
    base = _evaluation(tmp_path, "all", "standard", recs)
    fewer = _evaluation(tmp_path, "fewer", "standard", recs[:3])
    assert main(["compare", str(base), str(fewer)]) == 2
    assert "1 only in the base" in capsys.readouterr().err
    records_path(fewer).unlink()
    assert main(["compare", str(base), str(fewer)]) == 2
    assert "run the evaluation again" in capsys.readouterr().err
