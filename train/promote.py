"""Evaluate a freshly trained model, compare it with the current one on the same data, promote only if better,
and keep a model registry (``MODELS_DIR/registry.json``).

Registry format::

    {"format": 1,
     "current": {"rsam-lite": "rsam-lite-3f2a…"},                # name → id of the promoted version
     "models": [{"id", "name", "file", "sha256", "parent", "data", "metrics", "score", "promoted",
                 "created", "step", "samples", "accepted_pairs"}]}

The promoted weights are copied to ``MODELS_DIR/NAME.safetensors`` (+ ``.json``) — the file name
``load_predictor(NAME)`` finds when ``RRSIS_MODELS_DIR=MODELS_DIR``. Score = mean of text-only mIoU and
one-click mIoU, averaged over the validation sets (synthetic val split, ``--val`` sets, held-out logged
sessions). ``promote_when="better"``: a candidate must beat the current model's score by ``min_delta``;
``"significant"``: the lower end of the 95 % paired-bootstrap interval of the score difference (records of each set
resampled; :mod:`rrsis_engine.compare`) must exceed ``min_delta``, so a gain that is only noise is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from rrsis_engine.errors import CheckpointError, RRSISError

log = logging.getLogger("rrsis.train")
REGISTRY_NAME = "registry.json"
PROMOTE_WHEN = ("better", "significant")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_registry(models_dir: str | Path) -> dict:
    path = Path(models_dir) / REGISTRY_NAME
    if not path.is_file():
        return {"format": 1, "current": {}, "models": []}
    try:
        reg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); fix or move it away.") from None
    reg.setdefault("current", {})
    reg.setdefault("models", [])
    return reg


def save_registry(models_dir: str | Path, reg: dict) -> Path:
    path = Path(models_dir) / REGISTRY_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(reg, indent=2))
    tmp.replace(path)
    return path


def current_entry(reg: dict, name: str) -> dict | None:
    """The registry entry of ``name``'s promoted version (the same file refused earlier has an entry too)."""
    cid = reg["current"].get(name)
    return next((m for m in reversed(reg["models"]) if m["id"] == cid and m.get("promoted")), None)


def score(report: dict) -> float:
    """Mean of text-only and one-click mIoU (clicks absent from the report count as the text-only value)."""
    rows = report["by_clicks"]
    r0 = rows["0"]["mIoU"]
    r1 = rows.get("1", rows["0"])["mIoU"]
    return 0.5 * (r0 + r1)


def validation_sets(val_size: int, image_size: int, val_sets=(), db: str | None = None, db_holdout: float = 0.1,
                    db_image_root: str | None = None) -> dict[str, list[dict]]:
    """name → records: the synthetic val split, each ``--val`` spec, and the held-out logged sessions."""
    from rrsis_engine.data import load_records

    sets: dict[str, list[dict]] = {}
    if val_size > 0:
        sets["synthetic-val"] = list(load_records(f"synthetic:val:{val_size}:{image_size}"))
    for spec in val_sets:
        sets[spec] = list(load_records(spec))
    if db and db_holdout > 0:
        from rrsis_train.sources import session_pairs

        held = [r() for r in session_pairs(db, holdout=db_holdout, part="holdout", base_dir=db_image_root)]
        if held:
            sets["sessions-holdout"] = held
    if not sets:
        raise RRSISError("No validation data: give --val-size > 0, --val SPEC or a --db with held-out sessions.")
    return sets


def evaluate_model(weights: str | Path, sets: dict[str, list[dict]], clicks=(0, 1, 3)) -> dict:
    """name → :class:`rrsis_engine.evaluate.EvalResult` (report + per-record IoU trajectories) per set."""
    from rrsis_engine.evaluate import run_evaluation
    from rrsis_engine.model import load_checkpoint
    from rrsis_engine.predictor import Predictor

    # zoom-in pinned on, as in `rrsis eval`: on auto it would follow the machine's load
    predictor = Predictor(load_checkpoint(weights), device="cpu", disk_cache=False, zoom_in=True)
    return {name: run_evaluation(predictor, recs, clicks=list(clicks), noc=False) for name, recs in sets.items()}


def mean_score(reports: dict[str, dict]) -> float:
    return sum(score(r) for r in reports.values()) / len(reports)


def record_scores(result) -> np.ndarray:
    """Per record of an EvalResult: the mean of its text-only and one-click IoU (the score's summands)."""
    from rrsis_engine.compare import promotion_score

    return np.array([promotion_score(s.ious) for s in result.samples])


def score_interval(candidate: dict, current: dict, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95 % paired-bootstrap interval of mean_score(candidate) − mean_score(current): each set's records resampled
    (the same records for both models), the per-set mean differences averaged as the score averages the sets."""
    from rrsis_engine.compare import interval, resampled_mean_differences

    diffs = []
    for i, (name, cand) in enumerate(candidate.items()):  # both evaluated the same records in the same order
        diffs.append(resampled_mean_differences(record_scores(current[name]), record_scores(cand), resamples, seed + i))
    return interval(np.mean(diffs, axis=0))


def evaluate_and_promote(candidate: str | Path, models_dir: str | Path, name: str, val_size: int = 64,
                         val_sets=(), db: str | None = None, sources=(), parent: str | None = None,
                         db_holdout: float = 0.1, db_image_root: str | None = None, min_delta: float = 0.0,
                         run_meta: dict | None = None, accepted_pairs: int | None = None,
                         sets: dict[str, list[dict]] | None = None, promote_when: str = "better") -> dict:
    """Evaluate ``candidate``, compare with the registry's current ``name`` on the same data, promote if better
    (``promote_when``: "better" = higher score, "significant" = the whole 95 % interval above; module doc).

    Returns {"promoted": bool, "message": str, "entry": registry entry, "candidate": reports,
    "current": reports or None}.
    """
    from rrsis_engine.model.checkpoint import read_checkpoint_config

    if promote_when not in PROMOTE_WHEN:
        raise RRSISError(f"promote_when must be one of {', '.join(PROMOTE_WHEN)}, got {promote_when!r}.")
    candidate = Path(candidate)
    models_dir = Path(models_dir)
    cfg, _ = read_checkpoint_config(candidate)
    reg = load_registry(models_dir)
    cur = current_entry(reg, name)
    if sets is None:
        sets = validation_sets(val_size, cfg.image_size, val_sets, db, db_holdout, db_image_root)
    t0 = time.perf_counter()
    cand_results = evaluate_model(candidate, sets)
    cand_reports = {k: r.report for k, r in cand_results.items()}
    cand_score = mean_score(cand_reports)
    cur_reports = cur_score = low = high = None
    if cur is not None:
        cur_path = models_dir / cur["file"]
        if not cur_path.is_file():
            raise CheckpointError(f"The registry's current {name} ({cur_path}) is missing; restore it or edit "
                                  f"{models_dir / REGISTRY_NAME}.")
        cur_results = evaluate_model(cur_path, sets)
        cur_reports = {k: r.report for k, r in cur_results.items()}
        cur_score = mean_score(cur_reports)
        low, high = score_interval(cand_results, cur_results)
    if cur_score is None:
        better = True
    elif promote_when == "significant":
        better = low > min_delta
    else:
        better = cand_score > cur_score + min_delta
    digest = sha256_file(candidate)
    entry = {
        "id": f"{name}-{digest[:12]}",
        "name": name,
        "file": None,
        "sha256": digest,
        "parent": (cur or {}).get("id") if parent is None else parent,
        "data": list(sources),
        "metrics": {k: {"by_clicks": v["by_clicks"], "n": v.get("n")} for k, v in cand_reports.items()},
        "score": cand_score,
        "compared_with": (cur or {}).get("id"),
        "current_score": cur_score,
        "score_interval": None if low is None else [low, high],
        "promote_when": promote_when,
        "promoted": bool(better),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "eval_seconds": round(time.perf_counter() - t0, 1),
        "accepted_pairs": accepted_pairs,
        "config": cfg.name,
    }
    if run_meta:
        entry.update({k: run_meta.get(k) for k in ("step", "samples", "elapsed_s")})
    if better:
        versions = models_dir / "versions"
        versions.mkdir(parents=True, exist_ok=True)
        stored = versions / f"{entry['id']}.safetensors"
        shutil.copyfile(candidate, stored)
        shutil.copyfile(candidate.with_suffix(".json"), stored.with_suffix(".json"))
        for suffix in (".safetensors", ".json"):
            tmp = models_dir / f".{name}{suffix}.tmp"
            shutil.copyfile(stored.with_suffix(suffix), tmp)
            tmp.replace(models_dir / f"{name}{suffix}")
        entry["file"] = str(stored.relative_to(models_dir))
        reg["current"][name] = entry["id"]
        msg = (f"promoted {entry['id']}: score {cand_score:.4f}"
               + (f" > current {cur_score:.4f} ({cur['id']}){_interval_text(low, high)}" if cur is not None
                  else " (no current model)")
               + f"; weights at {models_dir / (name + '.safetensors')}")
    elif promote_when == "significant":
        msg = (f"not promoted: candidate score {cand_score:.4f} vs current {cur_score:.4f}"
               f"{_interval_text(low, high)} — the interval's lower end is not above {min_delta} "
               f"({cur['id']} stays current)")
    else:
        msg = (f"not promoted: candidate score {cand_score:.4f} ≤ current {cur_score:.4f} + {min_delta}"
               f"{_interval_text(low, high)} ({cur['id']} stays current)")
    reg["models"].append(entry)
    save_registry(models_dir, reg)
    log.info(msg)
    return {"promoted": bool(better), "message": msg, "entry": entry, "candidate": cand_reports,
            "current": cur_reports}


def _interval_text(low: float, high: float) -> str:
    return f", difference 95 % interval [{low:+.4f}, {high:+.4f}]"


def count_accepted(db: str) -> int:
    from rrsis_engine.store import open_store

    return sum(max(1, len([e for e in a.expressions if e and e.strip()]))
               for a in open_store(db).iter_annotations(status="accepted"))


def since_last(args) -> int:
    """``rrsis train --since-last``: fine-tune from the current model when ≥ ``--min-new`` new accepted pairs
    arrived in ``--db`` since the last registered training run; evaluate; promote if better."""
    if not args.db:
        raise RRSISError("--since-last needs --db (the session database the labelers log to).")
    models_dir = Path(args.models_dir)
    name = args.name or args.config
    reg = load_registry(models_dir)
    last = [m for m in reg["models"] if m["name"] == name and m.get("accepted_pairs") is not None]
    seen = last[-1]["accepted_pairs"] if last else 0
    total = count_accepted(args.db)
    new = total - seen
    if new < args.min_new:
        print(f"{new} new accepted pair(s) in {args.db} since the last run (need {args.min_new}); nothing to do.")
        return 0
    cur = current_entry(reg, name)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    args.out = args.out or str(Path("runs") / f"{name}-auto-{stamp}")
    if cur is not None and not args.init:
        args.init = str(models_dir / cur["file"])
    if not args.source:
        args.source = [f"db:{args.db}:1", "synth:0.5"]
    from rrsis_train.cli import calibrate_run, options_from_args
    from rrsis_train.trainer import Trainer

    opts = options_from_args(args)
    trainer = Trainer(opts, device=args.device)
    trainer.fit(resume=args.resume)
    if args.calibrate_size > 0:
        calibrate_run(Path(opts.out) / "model.safetensors", args.calibrate_size, args.val or [])
    result = evaluate_and_promote(Path(opts.out) / "model.safetensors", models_dir=models_dir, name=name,
                                  val_size=args.val_size, val_sets=args.val or [], db=args.db, sources=opts.sources,
                                  parent=(cur or {}).get("id"), db_holdout=args.db_holdout,
                                  db_image_root=args.db_image_root, run_meta=trainer.meta(), accepted_pairs=total,
                                  promote_when=args.promote_when)
    print(result["message"])
    return 0
