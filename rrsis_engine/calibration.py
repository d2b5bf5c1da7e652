"""Fitting a model's ambiguity calibration on labelled records and storing it with its weights (used by
``rrsis calibrate`` and, after training, by ``rrsis train``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rrsis_engine.errors import DataError

log = logging.getLogger("rrsis")


def collect_cues(predictor, records, limit: int | None = None) -> tuple[list[dict], list[bool]]:
    """Text-turn ambiguity cues and labels for each record (records without the label are skipped)."""
    cues, labels = [], []
    for i, rec in enumerate(records):
        if limit is not None and i >= limit:
            break
        if "ambiguous" not in rec:
            continue
        predictor.set_image(rec["image"])
        cues.append(predictor.predict(text=rec["expression"]).ambiguity_cues)
        labels.append(bool(rec["ambiguous"]))
        if (i + 1) % 50 == 0:
            log.info("calibrate: %d records", i + 1)
    return cues, labels


def calibrate_model(model: str | Path | None, data, precision: float = 0.8, limit: int | None = None,
                    device: str | None = None):
    """Fit the ambiguity calibration of checkpoint ``model`` on labelled records ``data`` (a spec for
    :func:`rrsis_engine.data.readers.load_records`) → (:class:`rrsis_engine.ambiguity.AmbiguityCalibration`, the
    checkpoint's path). Raises DataError when the records hold too few of either label."""
    from rrsis_engine.ambiguity import fit_calibration
    from rrsis_engine.data.readers import load_records
    from rrsis_engine.predictor import load_predictor, resolve_model_path

    if not 0 < precision <= 1:
        raise DataError("--precision is a fraction in (0, 1], e.g. 0.8.")
    path = resolve_model_path(model)
    predictor = load_predictor(str(path), device=device, disk_cache=False)
    cues, labels = collect_cues(predictor, load_records(data), limit)
    cal = fit_calibration(cues, labels, target_precision=precision, data=str(data))
    log.info("flag at score >= %.3f: precision %.3f, recall %.3f on %d records (%d ambiguous)",
             cal.threshold, cal.precision, cal.recall, cal.n, cal.n_ambiguous)
    return cal, path


def write_calibration(path: str | Path, cal) -> Path:
    """Store ``cal`` as ``meta.ambiguity_calibration`` in the JSON beside checkpoint ``path`` (atomic replace)."""
    from rrsis_engine.model.checkpoint import config_path_for

    cfg_path = config_path_for(Path(path))
    info = json.loads(cfg_path.read_text())
    info.setdefault("meta", {})["ambiguity_calibration"] = cal.to_dict()
    tmp = cfg_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(cfg_path)
    log.info("wrote the ambiguity calibration into %s", cfg_path)
    return cfg_path
