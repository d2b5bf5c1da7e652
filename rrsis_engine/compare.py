"""Paired comparison of two evaluations on the same records (``rrsis compare``, promotion in ``rrsis train``).

``rrsis eval --out REPORT.json`` writes ``REPORT.records.jsonl`` beside the report: one line per record,
``{"id", "kind", "ambiguous", "ambiguity", "ious": [IoU after 0, 1, 2, … clicks], "followup_iou"}``. Two such
runs on the same data are compared record by record: for each metric the mean difference (candidate − base)
and its 95 % interval from a paired bootstrap (records resampled with replacement, both runs together), so a
difference that depends on which records happened to be drawn shows as an interval that straddles zero.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rrsis_engine import metrics as M
from rrsis_engine.errors import DataError

RESAMPLES = 10_000
CONFIDENCE = 0.95


def records_path(report_path: str | Path) -> Path:
    """REPORT.json → REPORT.records.jsonl (the per-record file ``rrsis eval`` writes beside it)."""
    report_path = Path(report_path)
    return report_path.with_name(report_path.stem + ".records.jsonl")


def write_records(samples, path: str | Path) -> Path:
    """One JSON line per :class:`rrsis_engine.evaluate.SampleResult` (IoUs rounded to 6 digits)."""
    path = Path(path)
    with open(path, "w") as f:
        for s in samples:
            f.write(json.dumps({
                "id": s.id, "kind": s.kind, "ambiguous": s.ambiguous,
                "ambiguity": None if s.ambiguity is None else round(float(s.ambiguity), 6),
                "ious": [round(float(v), 6) for v in s.ious],
                "followup_iou": None if s.followup_iou is None else round(float(s.followup_iou), 6),
            }) + "\n")
    return path


def load_evaluation(report_path: str | Path) -> tuple[dict, dict[str, dict]]:
    """(report, id → record line) of an ``rrsis eval`` output."""
    report_path = Path(report_path)
    if report_path.suffix == ".jsonl" and report_path.name.endswith(".records.jsonl"):
        report_path = report_path.with_name(report_path.name[: -len(".records.jsonl")] + ".json")
    if not report_path.is_file():
        raise DataError(f"{report_path} not found; give the REPORT.json that `rrsis eval --out` wrote.")
    per_record = records_path(report_path)
    if not per_record.is_file():
        raise DataError(f"{per_record} not found: the report was written by an older rrsis eval without per-record "
                        "results; run the evaluation again.")
    try:
        report = json.loads(report_path.read_text())
        lines = [json.loads(line) for line in per_record.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"{report_path} or {per_record} is not valid JSON ({exc}); run the evaluation again.") from None
    records = {str(r["id"]): r for r in lines}
    if len(records) != len(lines):
        raise DataError(f"{per_record} has repeated record ids; paired comparison needs a unique \"id\" per record in the data set.")
    return report, records


def resampled_mean_differences(base, candidate, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """R mean paired differences (candidate − base), each over N records drawn with replacement.

    base, candidate: N values for the same N records, in the same order.
    """
    base, candidate = np.asarray(base, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if base.shape != candidate.shape or base.ndim != 1 or base.size == 0:
        raise DataError("A paired comparison needs two non-empty value lists of the same length.")
    diff = candidate - base
    return diff[np.random.default_rng(seed).integers(diff.size, size=(resamples, diff.size))].mean(axis=1)


def interval(resampled: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap values."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled, [tail, 1.0 - tail])
    return float(low), float(high)


def paired_bootstrap(base, candidate, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """(mean(candidate) − mean(base), low, high): the mean paired difference and its 95 % bootstrap interval."""
    resampled = resampled_mean_differences(base, candidate, resamples, seed)
    return float(np.mean(candidate) - np.mean(base)), *interval(resampled)


def verdict(low: float, high: float, lower_is_better: bool = False) -> str:
    """'candidate better' or 'candidate worse' when the whole interval lies on one side of zero, else 'within noise'."""
    if low > 0 or high < 0:
        return "candidate better" if (low > 0) != lower_is_better else "candidate worse"
    return "within noise"


def _row(name: str, base: np.ndarray, cand: np.ndarray, lower_is_better: bool, resamples: int, seed: int) -> dict:
    diff, low, high = paired_bootstrap(base, cand, resamples=resamples, seed=seed)
    sign = -1.0 if lower_is_better else 1.0
    better = int((sign * (cand - base) > 0).sum())
    worse = int((sign * (cand - base) < 0).sum())
    return {"metric": name, "base": float(base.mean()), "candidate": float(cand.mean()), "diff": diff,
            "low": low, "high": high, "better": better, "worse": worse, "same": int(base.size - better - worse),
            "lower_is_better": lower_is_better,
            "verdict": "no difference" if better == worse == 0 else verdict(low, high, lower_is_better)}


def compare_evaluations(base_path: str | Path, candidate_path: str | Path, resamples: int = RESAMPLES,
                        seed: int = 0) -> dict:
    """Paired comparison of two ``rrsis eval`` outputs on the same records.

    Rows: IoU after each click count both reports have (its mean = the report's mIoU), the score ``rrsis train
    --promote`` ranks models by (mean of text-only and one-click IoU), NoC@85/90 when both
    ran ``--noc``, the follow-up turn's IoU when both have it, ambiguity AUROC when both scored it; and the
    text-only IoU per expression kind (``text_only_by_kind``: which kinds a change helped or hurt).
    """
    base_report, base = load_evaluation(base_path)
    cand_report, cand = load_evaluation(candidate_path)
    ids = [i for i in base if i in cand]
    only_base, only_cand = len(base) - len(ids), len(cand) - len(ids)
    if only_base or only_cand:
        raise DataError(f"The evaluations cover different records ({only_base} only in the base, {only_cand} only in "
                        "the candidate); run both on the same --data and --limit.")
    rows = []
    for k in sorted(set(base_report["by_clicks"]) & set(cand_report["by_clicks"]), key=int):
        b = np.array([iou_at(base[i]["ious"], int(k)) for i in ids])
        c = np.array([iou_at(cand[i]["ious"], int(k)) for i in ids])
        rows.append(_row(f"IoU, {k} clicks", b, c, False, resamples, seed))
    if {"0", "1"} <= set(base_report["by_clicks"]) & set(cand_report["by_clicks"]):
        b, c = (np.array([promotion_score(r[i]["ious"]) for i in ids]) for r in (base, cand))
        rows.append(_row("score (mean of 0- and 1-click IoU)", b, c, False, resamples, seed))
    if base_report.get("NoC@85") is not None and cand_report.get("NoC@85") is not None:
        for t in M.NOC_THRESHOLDS:
            b = np.array([M.clicks_to_reach(base[i]["ious"], t) for i in ids], dtype=np.float64)
            c = np.array([M.clicks_to_reach(cand[i]["ious"], t) for i in ids], dtype=np.float64)
            rows.append(_row(f"NoC@{round(t * 100)}", b, c, True, resamples, seed))
    fu = [i for i in ids if base[i].get("followup_iou") is not None and cand[i].get("followup_iou") is not None]
    if fu:
        rows.append(_row("follow-up IoU", np.array([base[i]["followup_iou"] for i in fu]),
                         np.array([cand[i]["followup_iou"] for i in fu]), False, resamples, seed))
    amb = [i for i in ids if base[i].get("ambiguity") is not None and cand[i].get("ambiguity") is not None]
    labels = np.array([bool(base[i]["ambiguous"]) for i in amb])
    if amb and labels.any() and not labels.all():
        rows.append(_auroc_row(np.array([base[i]["ambiguity"] for i in amb]),
                               np.array([cand[i]["ambiguity"] for i in amb]), labels, resamples, seed))
    by_kind = []
    for kind in sorted({base[i].get("kind") or "-" for i in ids}):
        of_kind = [i for i in ids if (base[i].get("kind") or "-") == kind]
        by_kind.append(_row(kind, np.array([iou_at(base[i]["ious"], 0) for i in of_kind]),
                            np.array([iou_at(cand[i]["ious"], 0) for i in of_kind]), False, resamples, seed))
    return {"base": _describe(base_path, base_report), "candidate": _describe(candidate_path, cand_report),
            "n": len(ids), "resamples": resamples, "confidence": CONFIDENCE, "rows": rows, "text_only_by_kind": by_kind}


def iou_at(ious: Sequence[float], k: int) -> float:
    """IoU after ``k`` clicks of a record's trajectory (its last value when the evaluation stopped earlier)."""
    return float(ious[k] if k < len(ious) else ious[-1])


def promotion_score(ious: Sequence[float]) -> float:
    """A record's share of the score ``rrsis train --promote`` ranks models by: mean of its 0- and 1-click IoU."""
    return 0.5 * (iou_at(ious, 0) + iou_at(ious, 1))


def _auroc_row(base: np.ndarray, cand: np.ndarray, labels: np.ndarray, resamples: int, seed: int) -> dict:
    """Ambiguity AUROC of both runs on the same bootstrap resamples (resamples with one class are skipped)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(labels.size, size=(resamples, labels.size))
    diffs = []
    for i in idx:
        a, b = M.auroc(cand[i], labels[i]), M.auroc(base[i], labels[i])
        if a is not None and b is not None:
            diffs.append(a - b)
    base_auc, cand_auc = M.auroc(base, labels), M.auroc(cand, labels)
    low, high = interval(np.array(diffs)) if diffs else (float("nan"), float("nan"))
    return {"metric": "ambiguity AUROC", "base": base_auc, "candidate": cand_auc, "diff": cand_auc - base_auc,
            "low": low, "high": high, "better": None, "worse": None, "same": None,
            "lower_is_better": False,
            "verdict": "no difference" if np.array_equal(base, cand) else verdict(low, high)}


def _describe(path, report: dict) -> dict:
    return {"report": str(path), "model": report.get("model"), "click_policy": report.get("click_policy", "standard")}


def _markdown_row(r: dict) -> str:
    digits = 2 if r["metric"].startswith("NoC") else 3
    counts = "–" if r["better"] is None else f"{r['better']} / {r['worse']} / {r['same']}"
    return (f"| {r['metric']} | {r['base']:.{digits}f} | {r['candidate']:.{digits}f} | {r['diff']:+.{digits}f} | "
            f"[{r['low']:+.{digits}f}, {r['high']:+.{digits}f}] | {counts} | {r['verdict']} |")


def compare_markdown(result: dict) -> str:
    b, c = result["base"], result["candidate"]
    lines = [f"# rrsis compare: {result['n']} records",
             "",
             f"base: `{b['report']}` ({b['model']}, {b['click_policy']} clicks); candidate: `{c['report']}` "
             f"({c['model']}, {c['click_policy']} clicks)",
             "",
             "| metric | base | candidate | difference | 95 % interval | records better / worse / same | verdict |",
             "|---|---|---|---|---|---|---|"]
    lines += [_markdown_row(r) for r in result["rows"]]
    if result.get("text_only_by_kind"):
        lines += ["", "Text-only IoU by expression kind:", "",
                  "| kind | base | candidate | difference | 95 % interval | records better / worse / same | verdict |",
                  "|---|---|---|---|---|---|---|"]
        lines += [_markdown_row(r) for r in result["text_only_by_kind"]]
    lines += ["",
              f"Paired bootstrap over records ({result['resamples']} resamples): the interval holds 95 % of the "
              "resampled differences (candidate − base). NoC: fewer clicks is better; \"within noise\" means the "
              "interval includes zero."]
    return "\n".join(lines) + "\n"
