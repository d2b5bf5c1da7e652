"""Fitting a model's calibrations on labelled records and storing them with its weights (used by ``rrsis calibrate``
and, after training, by ``rrsis train``): the ambiguity score and flag (:mod:`rrsis_engine.ambiguity`, from text
turns of records labelled ``ambiguous``) and the mask-quality estimate (:mod:`rrsis_engine.quality`, from the text
turn and :data:`QUALITY_CLICKS` simulated correction clicks of every record)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rrsis_engine.errors import DataError

log = logging.getLogger("rrsis")

#: what ``rrsis calibrate`` fits, and the checkpoint-JSON key each is stored under
PARTS = {"ambiguity": "ambiguity_calibration", "quality": "quality_calibration"}
#: simulated correction clicks after each text turn whose turns the quality estimate is fitted on (the model card's
#: click rows: 0–3)
QUALITY_CLICKS = 3


@dataclass
class CalibrationTurns:
    """What the fits read: text-turn ambiguity cues with their labels; quality cues of every turn with a mask, with
    that turn's IoU against the record's mask."""

    cues: list[dict] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    quality_features: list[dict] = field(default_factory=list)
    ious: list[float] = field(default_factory=list)


def collect_turns(predictor, records, limit: int | None = None, quality_clicks: int = QUALITY_CLICKS,
                  ambiguity: bool = True) -> CalibrationTurns:
    """Run each record's text turn (ambiguity cues, when ``ambiguity`` and the record has the ``ambiguous`` label)
    and, when ``quality_clicks`` > 0, up to that many standard simulated clicks (:func:`_simulated_turns`),
    collecting the quality cues and IoU of every turn."""
    from rrsis_engine.quality import quality_features
    from rrsis_engine.session import RefinementSession

    turns = CalibrationTurns()
    for i, rec in enumerate(records):
        if limit is not None and i >= limit:
            break
        preds, ious = _simulated_turns(RefinementSession(predictor), rec, quality_clicks)
        if ambiguity and "ambiguous" in rec:
            turns.cues.append(preds[0].ambiguity_cues)
            turns.labels.append(bool(rec["ambiguous"]))
        for n_clicks, pred in enumerate(preds):
            features = quality_features(pred, n_clicks)
            if features is not None:
                turns.quality_features.append(features)
                turns.ious.append(ious[n_clicks])
        if (i + 1) % 50 == 0:
            log.info("calibrate: %d records", i + 1)
    return turns


def _simulated_turns(session, rec: dict, n_clicks: int) -> tuple[list, list[float]]:
    """The text turn of ``rec`` in ``session`` and up to ``n_clicks`` standard simulated clicks
    (:func:`rrsis_engine.metrics.simulate_clicks`) → (the predictions of the turns made — a perfect mask takes no
    further click —, the IoU after 0, 1, … clicks)."""
    from rrsis_engine import metrics as M

    session.set_image(rec["image"])
    preds = [session.text(rec["expression"])]

    def click(clicks):  # the session keeps the earlier clicks and the prior
        x, y, label = clicks[-1]
        preds.append(session.click(x, y, positive=bool(label)))
        return preds[-1].mask

    ious, _ = M.simulate_clicks(click, np.asarray(rec["mask"], dtype=bool), preds[0].mask, n_clicks)
    return preds, ious


def calibrate_model(model: str | Path | None, data, precision: float = 0.8, limit: int | None = None,
                    device: str | None = None, parts=tuple(PARTS),
                    quality_data=()) -> tuple[dict, dict[str, str], Path]:
    """Fit the calibrations ``parts`` (names of :data:`PARTS`) of checkpoint ``model`` on records ``data`` (a spec for
    :func:`rrsis_engine.data.readers.load_records`, or a list of them, read in turn) → (fitted {part: calibration},
    {part: why it could not be fitted} — e.g. too few ambiguous records —, the checkpoint's path). ``quality_data``:
    more specs whose records only the quality estimate reads (``rrsis train --val``: real validation images)."""
    from rrsis_engine.ambiguity import fit_calibration
    from rrsis_engine.data.readers import load_records
    from rrsis_engine.predictor import load_predictor, resolve_model_path
    from rrsis_engine.quality import fit_quality

    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise DataError(f"Unknown calibration {unknown or parts!r}; choose from {', '.join(PARTS)}.")
    if not 0 < precision <= 1:
        raise DataError("--precision is a fraction in (0, 1], e.g. 0.8.")
    specs = [data] if isinstance(data, (str, Path)) else list(data)
    extra = list(quality_data) if "quality" in parts else []
    name = " + ".join(str(s) for s in specs + extra) + (f" (first {limit} records of each)" if limit is not None else "")
    path = resolve_model_path(model)
    predictor = load_predictor(str(path), device=device, disk_cache=False)
    turns = CalibrationTurns()
    for spec in specs + extra:
        part = collect_turns(predictor, load_records(spec), limit, QUALITY_CLICKS if "quality" in parts else 0,
                             ambiguity=spec not in extra)
        for key in vars(turns):
            getattr(turns, key).extend(getattr(part, key))
    fitted, failed = {}, {}
    if "ambiguity" in parts:
        try:
            cal = fit_calibration(turns.cues, turns.labels, target_precision=precision, data=name)
            fitted["ambiguity"] = cal
            log.info("flag at score >= %.3f: precision %.3f, recall %.3f on %d records (%d ambiguous)",
                     cal.threshold, cal.precision, cal.recall, cal.n, cal.n_ambiguous)
        except DataError as e:
            failed["ambiguity"] = str(e)
    if "quality" in parts:
        try:
            cal = fit_quality(turns.quality_features, turns.ious, data=name)
            fitted["quality"] = cal
            log.info("mask quality: MAE %.3f, rank correlation %.3f on %d turns", cal.mae, cal.rank_corr or 0, cal.n)
        except DataError as e:
            failed["quality"] = str(e)
    return fitted, failed, path


def write_calibration(path: str | Path, calibrations: dict) -> Path:
    """Store each of ``calibrations`` ({part: calibration}, parts of :data:`PARTS`) under its key in ``meta`` of the
    JSON beside checkpoint ``path`` (atomic replace); the other calibrations there stay."""
    from rrsis_engine.model.checkpoint import config_path_for

    cfg_path = config_path_for(Path(path))
    info = json.loads(cfg_path.read_text())
    meta = info.setdefault("meta", {})
    for part, cal in calibrations.items():
        meta[PARTS[part]] = cal.to_dict()
    tmp = cfg_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(cfg_path)
    log.info("wrote the %s calibration into %s", " and ".join(calibrations), cfg_path)
    return cfg_path
