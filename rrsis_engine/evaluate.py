"""The evaluation loop behind ``rrsis eval`` (also called by ``rrsis train`` for model selection).

For each record: a text-only turn, then simulated correction clicks (standard protocol, see
:func:`rrsis_engine.metrics.next_click`) fed through a :class:`RefinementSession`, so every click turn
re-predicts from the text, all clicks so far and the previous turn's logits as the prior. Records with a
follow-up get a second text turn (prior = first turn's mask) scored against ``followup_mask``.

Report (fractions in [0, 1])::

    {"model": str, "n": int,
     "by_clicks": {"0": {"mIoU", "oIoU", "P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9"}, "1": {...}, ...},
     "NoC@85": float|null, "NoC@90": float|null, "ambiguity_auroc": float|null,
     "click_policy": "standard"|"suggested", "suggested_click_share": float|null,
     "quality": {"n", "mae", "bias", "rank_corr", "decoder_mae", "decoder_rank_corr"} | null,
                                                                # the estimated IoU (Prediction.quality) of each
                                                                # click row's turn (when made) against its IoU, next
                                                                # to the decoder's IoU head; null without it
     "uncertainty": {"0": {"auroc", "corr"}, ...} | null,      # the prediction's uncertainty map against the
                                                                # turn's wrong pixels, per click row (≈ 1 024 pixels
                                                                # per record); null when the model gives no map
     "zoom_in": bool,                                           # click turns also predicted on a zoomed crop
     "edge_refine": bool,                                       # masks snapped to colour edges (rrsis_engine.edges)
     "remove_negated_regions": bool,                            # parts and crossing strips under negative clicks removed
     "click_fit": bool,                                         # click turns' logits fitted to their clicks
     "grow_clicks": bool,                                       # positive clicks' colour regions (roads) added
     "spatial_words": bool,                                     # spatial sentences resolved by geometry
     "rim_clicks": bool,                                        # clicks on the shown mask's rim change it locally
     "boundary_refine": bool,                                   # outlines redrawn by a boundary refiner, if any
     "complete_roofs": bool,                                    # roofs covered in part completed (spatial words)
     "encoder_precision": "bf16" | "fp32",                      # the image encoder's arithmetic
     "dialogue": {"n": int, "mIoU": float, "oIoU": float}}      # only when records carry follow-ups
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rrsis_engine import metrics as M
from rrsis_engine.compare import records_path, write_records
from rrsis_engine.errors import DataError
from rrsis_engine.quality import score_estimates
from rrsis_engine.session import RefinementSession


@dataclass
class SampleResult:
    id: str
    kind: str
    ambiguous: bool
    ious: list[float]  # IoU after 0, 1, 2, ... clicks
    ambiguity: float | None
    followup_iou: float | None = None
    seconds: float = 0.0


@dataclass
class EvalResult:
    report: dict
    samples: list[SampleResult] = field(default_factory=list)
    seconds: float = 0.0
    model_version: str = ""


CLICK_POLICIES = ("standard", "suggested")


def policy_click(policy: str, prediction, mask: np.ndarray, gt: np.ndarray) -> tuple[tuple[float, float, int] | None, bool]:
    """The next simulated click (x, y, label) in the image frame, and whether the model's suggestion was used.

    standard: :func:`rrsis_engine.metrics.next_click` (centre of the largest error region, needs the ground
    truth to find it). suggested: the labeler makes the click the model suggests (``prediction.suggested_click``)
    when it is right: a correction (positive outside the mask, negative inside) on a wrong pixel, answered
    truthfully, or a confirmation (positive inside the mask, "is it this one?") on the target. Otherwise (no
    suggestion, a correction on a correct pixel, a confirmation off the target) the standard click is used.
    """
    if policy == "suggested" and prediction.suggested_click is not None:
        x, y, _ = prediction.suggested_click
        col = int(min(max(round(x), 0), gt.shape[1] - 1))
        row = int(min(max(round(y), 0), gt.shape[0] - 1))
        if prediction.suggests_confirmation:  # made only on the target
            if gt[row, col]:
                return (float(col), float(row), 1), True
        elif bool(mask[row, col]) != bool(gt[row, col]):
            return (float(col), float(row), int(gt[row, col])), True
    return M.next_click(mask, gt), False


def run_evaluation(predictor, records: Iterable[dict], clicks: Sequence[int] = (0, 1, 2, 3), noc: bool = True,
                   max_clicks: int = M.MAX_CLICKS, overlays_dir: str | Path | None = None, n_overlays: int = 12,
                   limit: int | None = None, progress: Callable[[int, dict], None] | None = None,
                   click_policy: str = "standard") -> EvalResult:
    """Evaluate ``predictor`` (anything with set_image/predict/validate_*) on records (common dict format).

    clicks: which click counts get a report row (0 = text only). noc: also run clicks up to
    ``max_clicks`` for NoC@85/90. overlays_dir: write PNG overlays of the ``n_overlays`` worst text-only
    samples there. progress(i, sample_summary) is called after each record. click_policy: how simulated
    clicks are placed (:func:`policy_click`).
    """
    if click_policy not in CLICK_POLICIES:
        raise DataError(f"click policy must be one of {', '.join(CLICK_POLICIES)}, got {click_policy!r}.")
    clicks = sorted({int(c) for c in clicks})
    if not clicks or clicks[0] < 0:
        raise DataError("clicks must be a non-empty list of non-negative integers, e.g. 0,1,2,3.")
    n_clicks = clicks[-1]
    if n_clicks > max_clicks:
        raise DataError(f"At most {max_clicks} clicks are simulated; got {n_clicks}.")
    t_start = time.perf_counter()
    rows: dict[int, tuple[list, list, list]] = {k: ([], [], []) for k in clicks}
    dialogue = M.IoUAccumulator()
    samples: list[SampleResult] = []
    worst: list[tuple[float, str, np.ndarray, np.ndarray, np.ndarray, str]] = []
    n_suggested = n_simulated = 0
    unc_pixels: dict[int, list[np.ndarray]] = {k: [] for k in clicks}  # per click row: (uncertainty, wrong) pairs
    quality_rows: list[tuple[float, float, float]] = []  # (estimated IoU, decoder IoU, IoU) of each click row's turn
    for idx, rec in enumerate(records):
        if limit is not None and idx >= limit:
            break
        t0 = time.perf_counter()
        gt = np.asarray(rec["mask"], dtype=bool)
        session = RefinementSession(predictor)
        session.set_image(rec["image"])
        pred0 = pred = session.text(rec["expression"])
        preds = {0: pred0}
        mask = pred0.mask
        ious = [M.iou(mask, gt)]
        limit_clicks = max(n_clicks, max_clicks if noc else 0)
        while len(ious) - 1 < limit_clicks:
            k = len(ious) - 1
            if k >= n_clicks and ious[-1] >= max(M.NOC_THRESHOLDS):
                break  # click rows complete and NoC needs no further click
            click, used_suggestion = policy_click(click_policy, pred, mask, gt)
            if click is not None:
                x, y, label = click
                pred = session.click(x, y, positive=bool(label))
                mask = pred.mask
                n_simulated += 1
                n_suggested += used_suggestion
                if k + 1 in rows:
                    preds[k + 1] = pred  # the turns made; a perfect mask takes no further click and keeps its row
            ious.append(M.iou(mask, gt))
        for k in clicks:
            p_k = preds.get(k, pred)
            m = p_k.mask
            if p_k.uncertainty is not None:
                unc_pixels[k].append(_uncertainty_sample(p_k.uncertainty, m != gt))
            i, u = M.intersection_union(m, gt)
            iou_k = ious[k] if k < len(ious) else ious[-1]
            if k in preds and p_k.quality is not None:
                quality_rows.append((p_k.quality, p_k.iou_score, iou_k))
            rows[k][0].append(iou_k)
            rows[k][1].append(i)
            rows[k][2].append(u)
        fu_iou = None
        fm = rec.get("followup_mask")
        if rec.get("followup") and fm is not None:
            s2 = RefinementSession(predictor)
            s2.set_image(rec["image"])
            s2.text(rec["expression"])
            fu_iou = dialogue.add(s2.text(rec["followup"]).mask, np.asarray(fm, dtype=bool))
        res = SampleResult(str(rec.get("id", idx)), rec.get("kind") or "", bool(rec.get("ambiguous", False)),
                           ious, pred0.ambiguity, fu_iou, time.perf_counter() - t0)
        samples.append(res)
        if overlays_dir is not None:
            worst.append((ious[0], res.id, rec["image"], gt, pred0.mask, rec["expression"]))
            worst.sort(key=lambda w: w[0])
            del worst[n_overlays:]
        if progress is not None:
            progress(idx, {"id": res.id, "iou": ious[0], "clicks": len(ious) - 1})
    if not samples:
        raise DataError("The data set has no records to evaluate.")
    report: dict = {
        "model": str(getattr(predictor, "model_name", type(predictor).__name__)),
        "n": len(samples),
        "by_clicks": {str(k): M.summarize(*rows[k]) for k in clicks},
        "NoC@85": M.noc([s.ious for s in samples], 0.85, max_clicks) if noc else None,
        "NoC@90": M.noc([s.ious for s in samples], 0.90, max_clicks) if noc else None,
        "ambiguity_auroc": None,
        "click_policy": click_policy,
        "suggested_click_share": (n_suggested / n_simulated if n_simulated else None)
        if click_policy == "suggested" else None,
        "quality": score_estimates(quality_rows),
        "uncertainty": _uncertainty_report(unc_pixels),
        "zoom_in": bool(getattr(predictor, "zoom_enabled", lambda: False)()),
        "edge_refine": bool(getattr(predictor, "edge_refine", False)),
        "remove_negated_regions": bool(getattr(predictor, "remove_negated_regions", False)),
        "click_fit": bool(getattr(predictor, "click_fit", False)),
        "grow_clicks": bool(getattr(predictor, "grow_clicks", False)),
        "spatial_words": bool(getattr(predictor, "spatial_words", False)),
        "rim_clicks": bool(getattr(predictor, "rim_clicks", False)),
        "boundary_refine": bool(getattr(predictor, "boundary_refine", False)),
        "complete_roofs": bool(getattr(predictor, "complete_roofs", False)),
        "encoder_precision": getattr(predictor, "encoder_precision", None),
    }
    amb = [(s.ambiguity, s.ambiguous) for s in samples if s.ambiguity is not None]
    if amb:
        report["ambiguity_auroc"] = M.auroc([a for a, _ in amb], [b for _, b in amb])
    if len(dialogue):
        d = dialogue.summary()
        report["dialogue"] = {"n": len(dialogue), "mIoU": d["mIoU"], "oIoU": d["oIoU"]}
    if overlays_dir is not None:
        _write_overlays(Path(overlays_dir), worst)
    return EvalResult(report, samples, time.perf_counter() - t_start, str(getattr(predictor, "model_version", "")))


#: pixels per record and click row that score the uncertainty map (a regular grid)
UNCERTAINTY_PIXELS = 1024


def _uncertainty_sample(uncertainty: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """N×2 (uncertainty, wrong) on a regular grid of about :data:`UNCERTAINTY_PIXELS` pixels of the H×W maps."""
    step = max(1, int(np.ceil(np.sqrt(wrong.size / UNCERTAINTY_PIXELS))))
    return np.stack([uncertainty[::step, ::step].ravel(), wrong[::step, ::step].ravel()], axis=1).astype(np.float32)


def _uncertainty_report(unc_pixels: dict[int, list[np.ndarray]]) -> dict | None:
    """Per click row: AUROC and Pearson correlation of the uncertainty map against the wrong pixels."""
    out = {}
    for k, parts in unc_pixels.items():
        if not parts:
            return None
        a = np.concatenate(parts)
        wrong = a[:, 1] > 0.5
        both = wrong.any() and not wrong.all() and a[:, 0].std() > 0
        out[str(k)] = {"auroc": M.auroc(a[:, 0], wrong),
                       "corr": float(np.corrcoef(a[:, 0], wrong)[0, 1]) if both else None}
    return out


def evaluate(predictor, records: Iterable[dict], clicks: Sequence[int] = (0, 1, 2, 3), noc: bool = True,
             **kwargs) -> dict:
    """The report dict only (see module doc); kwargs as :func:`run_evaluation`."""
    return run_evaluation(predictor, records, clicks=clicks, noc=noc, **kwargs).report


def _write_overlays(out: Path, worst) -> None:
    from rrsis_engine.data.jsonl import safe_name
    from rrsis_engine.data.visualize import overlay, tile

    out.mkdir(parents=True, exist_ok=True)
    for rank, (v, rid, image, gt, pred, text) in enumerate(worst):
        cell = tile(overlay(image, gt, second=pred), f"IoU {v:.2f} | {text}  (fill: ground truth, cyan: prediction)",
                    size=min(512, image.shape[1]))
        cell.save(out / f"{rank:02d}_{safe_name(rid)}.png")


def report_markdown(result: EvalResult | dict, data_name: str = "") -> str:
    """Markdown tables of a report (plus per-kind mIoU and timing when an EvalResult is given)."""
    rep = result.report if isinstance(result, EvalResult) else result
    lines = [f"# rrsis eval: {rep['model']}" + (f" on {data_name}" if data_name else ""), ""]
    if isinstance(result, EvalResult) and result.model_version:
        lines += [f"model version `{result.model_version}`, {rep['n']} samples, "
                  f"{result.seconds:.1f} s ({result.seconds / max(rep['n'], 1):.2f} s/sample)", ""]
    else:
        lines += [f"{rep['n']} samples", ""]
    keys = ["mIoU", "oIoU", "P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9"]
    lines += ["| clicks | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for k, row in rep["by_clicks"].items():
        lines.append(f"| {k} | " + " | ".join(f"{row[x]:.3f}" for x in keys) + " |")
    lines.append("")

    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    lines += ["| NoC@85 | NoC@90 | ambiguity AUROC |", "|---|---|---|",
              f"| {fmt(rep['NoC@85'])} | {fmt(rep['NoC@90'])} | {fmt(rep['ambiguity_auroc'])} |", ""]
    if rep.get("uncertainty"):
        u = rep["uncertainty"]
        lines += ["| uncertainty map vs wrong pixels | " + " | ".join(f"{k} clicks" for k in u) + " |",
                  "|---|" + "---|" * len(u),
                  "| AUROC | " + " | ".join(fmt(v["auroc"]) for v in u.values()) + " |",
                  "| correlation | " + " | ".join(fmt(v["corr"]) for v in u.values()) + " |", ""]
    if rep.get("quality"):
        q = rep["quality"]
        lines += [f"| shown mask's IoU ({q['n']} turns) | mean abs. error | rank correlation |", "|---|---|---|",
                  f"| estimated IoU (shown to the labeller; bias {q['bias']:+.3f}) | {fmt(q['mae'])} | "
                  f"{fmt(q['rank_corr'])} |",
                  f"| decoder's IoU head | {fmt(q['decoder_mae'])} | {fmt(q['decoder_rank_corr'])} |", ""]
    if rep.get("click_policy", "standard") != "standard":
        lines += [f"Clicks placed by the `{rep['click_policy']}` policy (the model's suggested click, labelled "
                  f"truthfully; {fmt(rep.get('suggested_click_share'))} of clicks followed a suggestion, the rest "
                  "fell back to the standard click).", ""]
    if rep.get("zoom_in") is False:
        lines += ["Click turns predicted on the full frame only (`--no-zoom`).", ""]
    if rep.get("edge_refine") is False:
        lines += ["Masks as the model's upsampled logits give them, not snapped to colour edges (`--no-edge-refine`).",
                  ""]
    if rep.get("remove_negated_regions") is False:
        lines += ["Separate mask parts and crossing strips under negative clicks kept as the model drew them "
                  "(`--keep-negated-regions`).",
                  ""]
    if rep.get("click_fit") is False:
        lines += ["Click turns as the decoder gives them, clicks on the wrong side left there (`--no-click-fit`).", ""]
    if rep.get("grow_clicks") is False:
        lines += ["Positive clicks add no colour region (`--no-grow-clicks`).", ""]
    if rep.get("spatial_words") is False:
        lines += ["Spatial sentences answered by the model alone, not resolved by geometry (`--no-spatial-words`).", ""]
    if rep.get("rim_clicks") is False:
        lines += ["Clicks on the rim of the shown mask change it as the model answers them, not only around the click "
                  "(`--no-rim-clicks`).", ""]
    if rep.get("boundary_refine") is False:
        lines += ["Outlines as the engine's rules leave them, not redrawn by the model's boundary refiner "
                  "(`--no-boundary-refine`).", ""]
    if rep.get("complete_roofs") is False:
        lines += ["Roofs as the model's mask covers them, not completed to their colour regions "
                  "(`--no-complete-roofs`).", ""]
    if "dialogue" in rep:
        d = rep["dialogue"]
        lines += [f"Dialogue (follow-up turn with the first turn's mask as prior): n = {d['n']}, "
                  f"mIoU = {d['mIoU']:.3f}, oIoU = {d['oIoU']:.3f}", ""]
    if isinstance(result, EvalResult) and result.samples:
        by_kind: dict[str, list[float]] = defaultdict(list)
        for s in result.samples:
            by_kind[s.kind or "-"].append(s.ious[0])
        lines += ["| expression kind | n | mIoU (text only) |", "|---|---|---|"]
        for kind, v in sorted(by_kind.items()):
            lines.append(f"| {kind} | {len(v)} | {np.mean(v):.3f} |")
        lines.append("")
    lines.append("NoC@t: clicks added to the text-only prediction until IoU >= t (0 if the text alone reaches it, "
                 "capped at 20). Fractions in [0, 1].")
    return "\n".join(lines) + "\n"


def write_report(result: EvalResult, out: str | Path, data_name: str = "") -> tuple[Path, Path, Path]:
    """REPORT.json, REPORT.md and REPORT.records.jsonl (per-record IoU trajectories, for ``rrsis compare``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.report, indent=2) + "\n")
    md = out.with_suffix(".md")
    md.write_text(report_markdown(result, data_name))
    return out, md, write_records(result.samples, records_path(out))
