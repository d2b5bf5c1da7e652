"""`rrsis bench store`: session-store latency, throughput and export time -> benchmarks/store.{json,md}.

1. Latency of logging one turn through the real SessionLogger (validation + 1024² mask -> RLE + one
   committed transaction), p50/p95, on SQLite and (when pg_ctl exists) a throwaway local PostgreSQL.
2. Turns/s with 1 and 8 writer processes.
3. A database with ``--turns`` turns (default 1 000 000) generated with bulk inserts, then the export
   time of its accepted annotations (default 100 000) as COCO and JSONL, and GeoJSON on a subset.
Goals (issue 7): p95 ≤ 5 ms per turn on SQLite; export of 100 000 accepted annotations ≤ 60 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

P95_GOAL_MS = 5.0
EXPORT_GOAL_S = 60.0


def _blob(h: int, w: int, i: int) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    cx, cy = w * (0.3 + 0.4 * ((i * 37) % 100) / 100), h * (0.3 + 0.4 * ((i * 61) % 100) / 100)
    rx, ry = w * (0.08 + 0.1 * (i % 7) / 7), h * (0.06 + 0.1 * (i % 5) / 5)
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1


def _turn(i: int, mask: np.ndarray):
    from rrsis_engine.prediction import Prediction
    from rrsis_engine.session import PromptState, Turn

    pred = Prediction(mask=mask, logits=None, low_res_logits=None, iou_score=0.8, object_score=0.9, latency_ms=50.0)
    h, w = mask.shape
    return Turn(i, "click" if i else "text", PromptState("the large building", ((w / 2, h / 2),) if i else (),
                                                           (1,) if i else ()), pred, i > 0)


def _image(size: int, seed: int):
    from rrsis_engine.imageio import RasterImage

    rng = np.random.default_rng(seed)
    return RasterImage(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def latency(url: str, n: int, size: int = 1024) -> dict:
    """Per-call wall time of logger(TurnEvent) with a size² mask."""
    from rrsis_engine import rle
    from rrsis_engine.session import TurnEvent
    from rrsis_engine.store import open_store

    store = open_store(url)
    lg = store.start_session(_image(size, 0), client="cli", model_version="bench")
    masks = [_blob(size, size, i) for i in range(16)]
    times = []
    for i in range(n + 20):
        t = _turn(i, masks[i % 16])
        t0 = time.perf_counter()
        lg(TurnEvent(lg.id, t))
        if i >= 20:  # warm-up
            times.append((time.perf_counter() - t0) * 1e3)
    assert lg.status.pending == 0
    lg.close()
    store.close()
    enc = []
    for i in range(200):
        t0 = time.perf_counter()
        rle.encode(masks[i % 16])
        enc.append((time.perf_counter() - t0) * 1e3)
    a = np.asarray(times)
    return {"turns": n, "mask": f"{size}x{size}", "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p95_ms": round(float(np.percentile(a, 95)), 3), "mean_ms": round(float(a.mean()), 3),
            "rle_encode_p50_ms": round(float(np.percentile(enc, 50)), 3)}


def _writer(url: str, seconds: float, seed: int, q) -> None:
    from rrsis_engine.session import TurnEvent
    from rrsis_engine.store import open_store

    store = open_store(url)
    lg = store.start_session(_image(1024, seed), client="cli", model_version="bench")
    masks = [_blob(1024, 1024, i) for i in range(8)]
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        lg(TurnEvent(lg.id, _turn(n, masks[n % 8])))
        n += 1
    ok = lg.close()
    q.put((n, ok and lg.status.pending == 0))
    store.close()


def throughput(url: str, writers: int, seconds: float) -> dict:
    from rrsis_engine.store import open_store

    open_store(url).close()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, seconds, i, q)) for i in range(writers)]
    for p in procs:
        p.start()
    res = [q.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    total = sum(n for n, _ in res)
    return {"writers": writers, "seconds": seconds, "turns": total, "turns_per_s": round(total / seconds, 1),
            "all_saved": all(ok for _, ok in res)}


def generate(url: str, n_turns: int, n_accepted: int, size: int, image_file: str) -> dict:
    """Bulk-insert a realistic log: sessions of 4 objects, ~10 % of objects rejected/skipped."""
    from sqlalchemy import insert

    from rrsis_engine import rle
    from rrsis_engine.store import models as m
    from rrsis_engine.store import open_store

    t0 = time.perf_counter()
    store = open_store(url)
    pool = [rle.encode(_blob(size, size, i)) for i in range(64)]
    areas = [int(rle.area(r)) for r in pool]
    n_objects = n_accepted + max(1, n_accepted // 10)
    per = np.full(n_objects, n_turns // n_objects)
    per[: n_turns - per.sum()] += 1
    start = datetime(2024, 1, 1)
    with store.engine.begin() as c:
        mv = c.execute(insert(m.ModelVersion).returning(m.ModelVersion.id),
                       [{"name": "bench", "created_at": start}]).scalar_one()
    turn_id = 0
    ann_id = 0
    obj = 0
    batch = 20_000
    rng = np.random.default_rng(0)
    while obj < n_objects:
        imgs, sess, turns, anns, traces = [], [], [], [], []
        while obj < n_objects and len(turns) < batch:
            sid = uuid.uuid4().hex
            img_id = obj // 4 + 1
            when = start + timedelta(seconds=obj * 30)
            imgs.append({"id": img_id, "content_hash": uuid.uuid4().hex + uuid.uuid4().hex, "path": image_file,
                         "height": size, "width": size, "band_count": 3, "bands": [1, 2, 3], "crs": "EPSG:32614",
                         "transform": [0.6, 0.0, 500000.0 + img_id, 0.0, -0.6, 4100000.0], "created_at": when})
            sess.append({"id": sid, "image_id": img_id, "model_version_id": mv, "annotator": None, "client": "web",
                         "started_at": when, "ended_at": when + timedelta(minutes=5)})
            seq = 0
            for k in range(4):
                if obj >= n_objects:
                    break
                status = "accepted" if obj < n_accepted else ("rejected" if obj % 2 else "skipped")
                first = turn_id + 1
                for ti in range(int(per[obj])):
                    turn_id += 1
                    r = pool[(obj + ti) % 64]
                    turns.append({"id": turn_id, "session_id": sid, "seq": seq, "object_index": k, "turn_index": ti,
                                  "kind": "text" if ti == 0 else "click", "text": f"object {obj} expression",
                                  "points": [[size / 2, size / 2]] if ti else None, "labels": [1] if ti else None,
                                  "box": None, "prior_turn_id": turn_id - 1 if ti else None, "used_prior": ti > 0,
                                  "mask_counts": r["counts"], "mask_height": size, "mask_width": size,
                                  "mask_area": areas[(obj + ti) % 64], "iou_score": float(rng.random()),
                                  "object_score": 0.9, "ambiguity": 0.1, "ambiguous": False, "latency_ms": 40.0,
                                  "undone": False, "created_at": when})
                    seq += 1
                ann_id += 1
                r = pool[(obj + int(per[obj]) - 1) % 64]
                anns.append({"id": ann_id, "session_id": sid, "image_id": img_id, "object_index": k, "status": status,
                             "expressions": [f"object {obj} expression"], "mask_counts": r["counts"],
                             "mask_height": size, "mask_width": size, "mask_area": areas[(obj + int(per[obj]) - 1) % 64],
                             "created_at": when})
                traces += [{"annotation_id": ann_id, "position": p, "turn_id": first + p} for p in range(int(per[obj]))]
                obj += 1
        with store.engine.begin() as c:
            for model, rows in ((m.Image, imgs), (m.Session, sess), (m.Turn, turns), (m.Annotation, anns),
                                (m.AnnotationTurn, traces)):
                c.execute(insert(model), rows)
    store.close()
    return {"turns": turn_id, "annotations": ann_id, "accepted": n_accepted, "mask": f"{size}x{size}",
            "seconds": round(time.perf_counter() - t0, 1)}


def export_time(url: str, fmt: str, out_dir: Path, root: Path, limit: int | None) -> dict:
    from rrsis_engine.store import open_store
    from rrsis_engine.store.export import export_annotations

    store = open_store(url)
    out = out_dir / f"export.{fmt}"
    t0 = time.perf_counter()
    s = export_annotations(store, fmt, out, allowed_roots=[root], limit=limit)
    dt = time.perf_counter() - t0
    store.close()
    size = out.stat().st_size
    shutil.rmtree(out_dir / "masks", ignore_errors=True)
    out.unlink()
    return {"format": fmt, "annotations": s.exported, "seconds": round(dt, 2),
            "per_1000_ms": round(dt / max(s.exported, 1) * 1e6, 1), "bytes": size, "skipped": s.skipped}


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="rrsis bench store", description=__doc__.split("\n\n")[0])
    p.add_argument("--turns", type=int, default=1_000_000, help="turns in the generated database")
    p.add_argument("--accepted", type=int, default=100_000, help="accepted annotations in it")
    p.add_argument("--mask-size", type=int, default=512, help="mask side of the generated annotations")
    p.add_argument("--latency-turns", type=int, default=500)
    p.add_argument("--writer-seconds", type=float, default=10.0)
    p.add_argument("--geojson-limit", type=int, default=10_000, help="annotations in the GeoJSON timing")
    p.add_argument("--postgres", choices=["auto", "no"], default="auto", help="also bench a throwaway PostgreSQL")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test of the benchmark itself)")
    p.add_argument("--out-dir", default="benchmarks")
    args = p.parse_args(argv)
    if args.quick:
        args.turns, args.accepted, args.latency_turns, args.writer_seconds = 2000, 200, 30, 1.0
        args.geojson_limit, args.mask_size = 50, 128
    from rrsis_engine.store.pgtemp import TemporaryPostgres, find_pg_bin

    work = Path(tempfile.mkdtemp(prefix="rrsis-bench-store-"))
    results: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                 "cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
                     "date": datetime.now().isoformat(timespec="seconds"), "quick": args.quick}
    pg = None
    try:
        backends = {"sqlite": lambda name: str(work / f"{name}.db")}
        if args.postgres == "auto" and find_pg_bin() is not None:
            pg = TemporaryPostgres().start()
            backends["postgresql"] = lambda name: pg.create_database(name)
        for b, mk in backends.items():
            print(f"[{b}] latency of one logged turn ...", flush=True)
            results.setdefault(b, {})["latency"] = latency(mk("lat"), args.latency_turns)
            for w in (1, 8):
                print(f"[{b}] throughput with {w} writer(s) ...", flush=True)
                results[b][f"throughput_{w}"] = throughput(mk(f"thr{w}"), w, args.writer_seconds)
        from PIL import Image as PILImage

        img_file = work / "tile.png"
        PILImage.fromarray(np.zeros((args.mask_size, args.mask_size, 3), np.uint8)).save(img_file)
        url = str(work / "big.db")
        print(f"[sqlite] generating {args.turns} turns ...", flush=True)
        results["generate"] = generate(url, args.turns, args.accepted, args.mask_size, str(img_file))
        results["generate"]["db_bytes"] = Path(url).stat().st_size
        results["export"] = []
        for fmt, limit in (("coco", None), ("jsonl", None), ("geojson", args.geojson_limit)):
            print(f"[sqlite] export {fmt} ...", flush=True)
            results["export"].append(export_time(url, fmt, work, work, limit))
    finally:
        if pg is not None:
            pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    lat = results["sqlite"]["latency"]
    full = [e for e in results["export"] if e["format"] in ("coco", "jsonl")]
    results["goals"] = {
        "sqlite_p95_ms_le_5": lat["p95_ms"] <= P95_GOAL_MS,
        "export_100k_le_60s": {e["format"]: e["seconds"] * 100_000 / max(e["annotations"], 1) <= EXPORT_GOAL_S
                               for e in full},
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "store.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "store.md").write_text(_markdown(results))
    print((out / "store.md").read_text())
    return 0


def _markdown(r: dict) -> str:
    lines = ["# Session store benchmark (`rrsis bench store`)", "",
             f"{r['date']} · {r['machine']['platform']} · {r['machine']['cpus']} CPUs · "
             f"OMP_NUM_THREADS={r['machine']['omp_num_threads']}" + (" · **quick run**" if r["quick"] else ""), "",
             "## Logging one turn (SessionLogger call: validation + RLE of the mask + one committed transaction)",
             "", "| backend | mask | p50 ms | p95 ms | mean ms | of which RLE encode p50 ms | 1 writer turns/s | 8 writers turns/s |",
             "|---|---|---|---|---|---|---|---|"]
    for b in ("sqlite", "postgresql"):
        if b in r:
            la, t1, t8 = r[b]["latency"], r[b]["throughput_1"], r[b]["throughput_8"]
            lines.append(f"| {b} | {la['mask']} | {la['p50_ms']} | {la['p95_ms']} | {la['mean_ms']} | "
                         f"{la['rle_encode_p50_ms']} | {t1['turns_per_s']} | {t8['turns_per_s']} |")
    g = r["generate"]
    lines += ["", f"Goal p95 ≤ {P95_GOAL_MS} ms on SQLite: **{'met' if r['goals']['sqlite_p95_ms_le_5'] else 'NOT met'}**.",
              "", "## Export", "",
              f"Generated SQLite database: {g['turns']:,} turns, {g['annotations']:,} annotations "
              f"({g['accepted']:,} accepted), {g['mask']} masks, {g['db_bytes'] / 1e9:.2f} GB, bulk insert "
              f"{g['seconds']} s.", "", "| format | annotations | seconds | ms per 1000 | output MB | goal (100k ≤ 60 s) |",
              "|---|---|---|---|---|---|"]
    for e in r["export"]:
        goal = r["goals"]["export_100k_le_60s"].get(e["format"])
        goal_s = "-" if goal is None else ("met" if goal else "NOT met")
        lines.append(f"| {e['format']} | {e['annotations']:,} | {e['seconds']} | {e['per_1000_ms']} | "
                     f"{e['bytes'] / 1e6:.1f} | {goal_s} |")
    lines += ["", "JSONL writes one binary PNG per mask; COCO copies the stored RLE; GeoJSON decodes and "
              "polygonises (rasterio.features.shapes) and is timed on a subset.", ""]
    return "\n".join(lines)
