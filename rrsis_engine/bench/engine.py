"""``rrsis bench engine``: image-embedding time, per-turn latency and peak RSS per config, each next to the
plain ``sam2`` image encoder / prompt encoder + mask decoder timed in the same process.

Each config runs in its own subprocess (so peak RSS is per config); inside it, our model is measured first,
its peak RSS recorded, then the same config with the CroBIM-U modules on (RUS + UGF + UDLR: text and click
turns, against the plain config's turns), then the SAM 2 baseline of the same Hiera family is built and
timed. Weights are random: timings do not depend on weight values — but for the spatial sentences, timed with the
shipped rsam-lite weights (their geometry's cost follows the objects the model finds). Writes
benchmarks/engine.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rrsis_engine.zoom import MAX_ENCODE_MS

BASELINE_FOR = {"rsam-tiny": "sam2.1_hiera_t", "rsam-lite": "sam2.1_hiera_t", "rsam-t": "sam2.1_hiera_t",
                "rsam-b+": "sam2.1_hiera_b+"}
_NEW_TEXT = itertools.count()
TEXTS = ["the largest lake in the top left", "the field right of the road", "all the water",
         "the small pond next to the big field", "the road along the bottom edge"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values, q):
    return float(np.percentile(np.asarray(values), q))


def _time(fn, repeats):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_config(name: str, repeats: int, device: str, dtype: str) -> dict:
    import torch

    dev = torch.device(device)
    rng = np.random.default_rng(0)
    # dtype is the image encoders' arithmetic (ours: the predictor's encoder_precision); decoders run in float32
    encoder_autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dtype == "bf16")
    result = _measure_rsam(name, repeats, dev, rng, dtype)  # our model is freed before the baseline
    result.update(_measure_uncertainty_turns(name, repeats, dev, rng, dtype))
    if name == "rsam-lite":
        result.update(_spatial_sentences(repeats, dev, dtype))
    result.update(_baseline(BASELINE_FOR[name], repeats, dev, encoder_autocast, rng))
    return result


def _measure_rsam(name: str, repeats: int, dev, rng, precision: str = "fp32") -> dict:
    import torch

    from rrsis_engine.model import build_rsam
    from rrsis_engine.predictor import Predictor

    torch.manual_seed(0)  # random weights, but the same ones every run: their masks set the post-processing cost
    model = build_rsam(name)
    # click fitting would run in some random-weight click turns and not in others: timed on its own (_click_fit)
    predictor = Predictor(model, device=str(dev), disk_cache=False, encoder_precision=precision, click_fit=False)
    result: dict = {"config": name, "input": model.config.image_size, "baseline": BASELINE_FOR[name]}
    for side in (512, 1024):
        images = [(rng.random((side, side, 3)) * 255).astype(np.uint8) for _ in range(repeats + 1)]
        it = iter(images)

        def embed(it=it):
            predictor._images.clear()
            predictor.set_image(next(it))
            _sync(dev)

        embed()  # warm-up
        result[f"embed_{side}_ms"] = statistics.median(_time(embed, repeats))
    image = predictor.set_image((rng.random((1024, 1024, 3)) * 255).astype(np.uint8))
    clicks, texts = _turns(predictor, image, repeats, dev)
    zooms = _zoom_turns(predictor, image, repeats, dev)
    result.update(_edge_snap(image, model.config.image_size // 4, repeats))
    result["click_fit_p50_ms"] = _click_fit(model, repeats)
    result.update(click_p50_ms=_pct(clicks, 50), click_p95_ms=_pct(clicks, 95), zoom_click_p50_ms=_pct(zooms, 50),
                  text_p50_ms=_pct(texts, 50), text_p95_ms=_pct(texts, 95), peak_rss_mb=_peak_rss_mb(),
                  decode_ms=statistics.median([predictor.predict(TEXTS[0], points=[[500, 500]], labels=[1],
                                                                 image=image).timings["decode_ms"]
                                               for _ in range(repeats * 3)]))
    return result


def _turns(predictor, image, repeats: int, dev) -> tuple[list[float], list[float]]:
    """Per-turn latencies (ms) on a cached image: 2-click turns with the previous mask as prior (decoder
    only: the zoom-in pass, the edge snap and the regions grown from positive clicks are off here, see
    :func:`_zoom_turns`, :func:`_edge_snap` and :func:`_click_regions`; the negative click lies on noise, where no
    colour region grows, and that answer is cached after the first turn; the rim rule reads the mask shown before),
    and new-text turns (text encoder + fusion + decoder)."""
    zoom_in, edge_refine, grow_clicks = predictor.zoom_in, predictor.edge_refine, predictor.grow_clicks
    predictor.zoom_in = predictor.edge_refine = predictor.grow_clicks = False
    try:
        predictor.predict(TEXTS[0], image=image)
        prev = predictor.predict(TEXTS[0], points=[[500, 500]], labels=[1], image=image)
        clicks = _time(lambda: (predictor.predict(TEXTS[0], points=[[500, 500], [300, 200]], labels=[1, 0],
                                                  mask_input=prev.low_res_logits, image=image,
                                                  previous_mask=prev.mask), _sync(dev)),
                       repeats * 10)

        def new_text():
            n = next(_NEW_TEXT)  # never seen before by any predictor here: no text or fusion cache hit
            predictor.predict(f"{TEXTS[n % len(TEXTS)]} {n}", image=image)
            _sync(dev)

        return clicks, _time(new_text, repeats * 5)
    finally:
        predictor.zoom_in, predictor.edge_refine, predictor.grow_clicks = zoom_in, edge_refine, grow_clicks


def _spatial_sentences(repeats: int, dev, precision: str = "fp32", side: int = 1024) -> dict:
    """Text turns of sentences the spatial words resolve (rrsis_engine.spatial_language: the category's own text turn,
    then geometry over its objects; "the leftmost building") against a sentence the rules do not read (the same words
    and "more or less": one text turn), with the shipped rsam-lite weights on synthetic side² scenes, a new scene per
    sentence (nothing cached but its embedding). Random weights would not tell: their category mask is speckle, and the
    geometry's cost follows the objects. {} without the shipped weights."""
    from rrsis_engine.data.synthetic import SyntheticReferringDataset
    from rrsis_engine.predictor import find_weights, load_predictor

    if find_weights("rsam-lite") is None:
        return {}
    predictor = load_predictor("rsam-lite", device=str(dev), disk_cache=False, encoder_precision=precision)
    scenes = SyntheticReferringDataset("test", 2 * repeats + 1, side)
    spatial, ships, plain = [], [], []
    for i in range(2 * repeats + 1):
        image = predictor.set_image(scenes.sample(i).image)
        for sentence, times in (("the leftmost building", spatial), ("all the ships", ships),
                                (f"the leftmost building, more or less {next(_NEW_TEXT)}", plain)):
            t = time.perf_counter()
            predictor.predict(sentence, image=image)
            _sync(dev)
            times.append((time.perf_counter() - t) * 1e3)
    spatial, ships, plain = spatial[1:], ships[1:], plain[1:]  # the first scene warms up
    return {"spatial_text_p50_ms": _pct(spatial, 50), "spatial_plain_text_p50_ms": _pct(plain, 50),
            "spatial_text_ratio": _pct(spatial, 50) / _pct(plain, 50), "spatial_side": side,
            "ships_text_p50_ms": _pct(ships, 50), "ships_text_ratio": _pct(ships, 50) / _pct(plain, 50)}


def _edge_snap(image, grid_side: int, repeats: int) -> dict:
    """Latencies (ms) of the edge snap (rrsis_engine.edges, two guided-filter passes) on the 1024² image, for masks
    whose cost does not depend on random weights: a 256² object (the filter works on its box) with the three clicks
    of a click turn seeding it (two positive, one negative near its edge), and the whole image without clicks;
    and of the negative-click rules (rrsis_engine.postprocess.negated_by_clicks) where the strip rule
    does its work: a 60- and a 16-pixel road crossing the whole image, a positive click on the first, a negative one on
    the second."""
    from rrsis_engine import postprocess
    from rrsis_engine.edges import snap_to_edges

    out = {}
    object_clicks = {"clicks": np.array([[512.0, 512.0], [450.0, 580.0], [630.0, 500.0]]),
                     "click_labels": np.array([1, 1, 0])}  # (x, y)
    for name, box, clicks in (("object", (384, 640), object_clicks), ("whole", (0, 1024), {})):
        mask = np.zeros((image.height, image.width), bool)
        mask[box[0]:box[1], box[0]:box[1]] = True
        snap_to_edges(image.pixels, mask, grid_side, **clicks)  # warm-up
        out[f"snap_{name}_p50_ms"] = _pct(_time(lambda m=mask, c=clicks: snap_to_edges(image.pixels, m, grid_side, **c),
                                                repeats * 5), 50)
    roads = np.zeros((image.height, image.width), bool)
    roads[482:542, :] = True
    roads[:, 504:520] = True
    clicks, labels = np.array([[100.0, 512.0], [512.0, 100.0]]), np.array([1, 0])  # (x, y)

    def negated():
        return postprocess.negated_by_clicks(roads, clicks, labels)

    assert negated()[:400, 504:520].all()  # the crossing road goes (also the warm-up)
    out["negated_roads_p50_ms"] = _pct(_time(negated, repeats * 5), 50)
    # a 300² look-alike beside a 300² target in the previous turn's mask; this turn's mask lost a 60-pixel band of the
    # look-alike around the negative click, which lies deep in it there
    previous = np.zeros((image.height, image.width), bool)
    previous[100:400, 100:400] = previous[600:900, 600:900] = True
    cut = previous.copy()
    cut[600:900, 720:780] = False
    clicks_cut, labels_cut = np.array([[250.0, 250.0], [750.0, 750.0]]), np.array([1, 0])  # (x, y)

    def negated_cut():
        return postprocess.negated_by_clicks(cut, clicks_cut, labels_cut, previous)

    assert negated_cut()[600:900].sum() == cut[600:900].sum()  # both pieces of the look-alike go (also the warm-up)
    out["negated_cut_p50_ms"] = _pct(_time(negated_cut, repeats * 5), 50)
    # a negative click 3 pixels inside the 300² target, answered by dropping the target (the rim rule keeps it but for
    # the rim around the click) or by trimming a 4-pixel sliver along its edge (the answer stands)
    dropped, trimmed = previous.copy(), previous.copy()
    dropped[100:400, 100:400] = False
    trimmed[100:400, 100:104] = False
    cell_px = image.width / grid_side
    for name, answer in (("dropped", dropped), ("trimmed", trimmed)):
        zone = postprocess.rim_click_zone(previous, answer, 103, 250, False, cell_px)  # also the warm-up
        assert (zone is None) == (name == "trimmed")
        out[f"rim_{name}_p50_ms"] = _pct(_time(
            lambda a=answer: postprocess.rim_click_zone(previous, a, 103, 250, False, cell_px), repeats * 5), 50)
    out.update(_quality(previous, repeats))
    out.update(_boundary_refiner(image, previous, repeats))
    out.update(_click_regions(image, roads, clicks, labels, repeats))
    return out


def _boundary_refiner(image, two_objects: np.ndarray, repeats: int) -> dict:
    """Latencies (ms) of the boundary refiner (rrsis_engine.model.boundary_refiner.refine_mask, last in every turn of
    a model that has one; its cost depends on the outline's length, not on the weights) on the 1024² image: a 256²
    object, the two 300² objects of :func:`_edge_snap` and a 600×550 one."""
    import torch

    from rrsis_engine.model.boundary_refiner import BoundaryRefiner, refine_mask

    refiner = BoundaryRefiner().eval()
    torch.nn.init.normal_(refiner.out.weight, std=0.5)  # zero-initialised: make it redraw something
    masks = {"two": two_objects}
    for name, (top, bottom, left, right) in (("object", (384, 640, 384, 640)), ("large", (200, 800, 250, 800))):
        masks[name] = np.zeros((image.height, image.width), bool)
        masks[name][top:bottom, left:right] = True
    out = {}
    with torch.no_grad():
        for name, mask in masks.items():
            refine_mask(refiner, image.pixels, mask)  # warm-up
            out[f"outline_{name}_p50_ms"] = _pct(_time(lambda m=mask: refine_mask(refiner, image.pixels, m),
                                                       repeats * 3), 50)
    return out


def _latency_table(rows: list[dict], intro: str, columns: dict[str, str]) -> list[str]:
    """Markdown lines: ``intro``, then a table of one row per config that has the ``columns`` ({header: row key},
    latencies in ms)."""
    lines = ["", intro, "", "| config | " + " | ".join(f"{h} (ms)" for h in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for r in rows:
        if all(k in r for k in columns.values()):
            lines.append(f"| {r['config']} | " + " | ".join(f"{r[k]:.1f}" for k in columns.values()) + " |")
    return lines


def _quality(two_objects: np.ndarray, repeats: int) -> dict:
    """Latencies (ms) of the estimated IoU (rrsis_engine.quality, every turn of a calibrated model) of a mask of two
    300² objects on the 1024² image and of a mask covering it, with a 1024² uncertainty map; the calibration is a fit
    to random cues (the cost does not depend on its weights)."""
    from rrsis_engine.prediction import Prediction
    from rrsis_engine.quality import FEATURES, estimate_quality, fit_quality

    rng = np.random.default_rng(0)
    cal = fit_quality([dict(zip(FEATURES, rng.random(len(FEATURES)), strict=True)) for _ in range(40)],
                      rng.random(40).tolist())
    uncertainty = rng.random(two_objects.shape).astype(np.float32)
    out = {}
    for name, mask in (("objects", two_objects), ("whole", np.ones_like(two_objects))):
        pred = Prediction(mask=mask, logits=None, low_res_logits=None, iou_score=0.5, object_score=1.0,
                          latency_ms=0.0, uncertainty=uncertainty, ambiguity_cues={})
        assert 0 < estimate_quality(pred, 2, cal) < 1  # also the warm-up
        out[f"quality_{name}_p50_ms"] = _pct(_time(lambda p=pred: estimate_quality(p, 2, cal), repeats * 5), 50)
    return out


def _click_regions(image, roads: np.ndarray, clicks: np.ndarray, labels: np.ndarray, repeats: int) -> dict:
    """Latencies (ms) of the colour regions grown from positive clicks (rrsis_engine.click_regions) with the two
    crossing roads painted in one asphalt colour on the 1024² image: smoothing the image (once per image), growing
    the region from the positive click (once per click; both cached by the predictor), splitting it at the negative
    click on the other road (every turn with both), and taking the negative click's straight strip (grown and cached
    the same way) with its slivers out of a mask holding both roads (every turn with such a click)."""
    from rrsis_engine import click_regions, postprocess

    pixels = image.pixels.copy()
    pixels[roads] = (80, 80, 85)
    smooth = click_regions.smoothed(pixels)
    region = click_regions.grow_region(smooth, *clicks[0])
    assert region is not None and region[roads].all()  # the crossing road too: the same asphalt
    kept = click_regions.split_at_negatives(region, smooth, clicks, labels)
    assert kept[482:542].mean() > 0.95 and kept[:400].sum() < 50  # the negative click's road goes, not the other
    # the model's mask holds both roads but a disc around the negative click: its strip goes on both sides of it
    mask = roads.copy()
    rows, cols = np.ogrid[:mask.shape[0], :mask.shape[1]]
    mask[(cols - clicks[1, 0]) ** 2 + (rows - clicks[1, 1]) ** 2 <= 40 ** 2] = False
    strip = postprocess.strip_through(click_regions.grow_region(smooth, *clicks[1]), *clicks[1])  # cached per click

    def negated_strip():
        return postprocess.negated_strip_regions(mask, [strip], clicks, labels)

    removed = negated_strip()
    assert removed[150:400, 504:520].all() and not removed[482:542, :480].any()
    return {"grow_smooth_p50_ms": _pct(_time(lambda: click_regions.smoothed(pixels), repeats * 3), 50),
            "grow_region_p50_ms": _pct(_time(lambda: click_regions.grow_region(smooth, *clicks[0]), repeats * 3), 50),
            "grow_split_p50_ms": _pct(_time(lambda: click_regions.split_at_negatives(region, smooth, clicks, labels),
                                            repeats * 3), 50),
            "grow_negated_p50_ms": _pct(_time(negated_strip, repeats * 3), 50)}


def _click_fit(model, repeats: int) -> float:
    """p50 latency (ms) of click fitting (rrsis_engine.model.click_fit) where it has work to do: the model's S/4 grid
    and decoder feature width, a mask that is one blob, a positive click outside it and a negative one inside. (Its
    cost depends on those shapes, not on the weights: random weights would fit in some click turns and not others.)"""
    import torch

    from rrsis_engine.model.click_fit import click_values, fit_to_clicks

    size = model.config.image_size
    g = size // 4
    channels = model.mask_decoder.output_hypernetworks_mlps[0].layers[-1].out_features
    logits = torch.full((1, 1, g, g), -6.0)
    logits[..., g // 4:g // 2, g // 4:g // 2] = 6.0
    features = torch.randn(1, channels, g, g, generator=torch.Generator().manual_seed(0))
    points = torch.tensor([[0.75 * size, 0.75 * size], [0.375 * size, 0.375 * size]])
    labels = torch.tensor([1, 0])

    def fit():
        return fit_to_clicks(logits, features, points, labels, size)

    assert (click_values(fit(), points, size) * torch.tensor([1.0, -1.0]) > 0).all()  # the fit works (and warms up)
    return _pct(_time(fit, repeats * 5), 50)


def _zoom_turns(predictor, image, repeats: int, dev) -> list[float]:
    """Latencies (ms) of 2-click turns on a small object that get the zoom-in pass (rrsis_engine.zoom): the full-frame
    decode plus an image-encoder pass and a decode on the crop. The crop cache is emptied before each turn, as
    in a real session, where every click moves the crop."""
    drawn = np.zeros((image.height, image.width), bool)
    drawn[470:530, 480:540] = True  # the previous turn's mask: a 60-pixel object
    prior = predictor.prediction_from_mask(drawn, image=image).low_res_logits

    zoom_in, predictor.zoom_in = predictor.zoom_in, True  # measured even where auto mode would skip it

    def turn():
        predictor._crops.clear()
        pred = predictor.predict(TEXTS[0], points=[[500, 500], [520, 510]], labels=[1, 1], mask_input=prior,
                                 image=image)
        _sync(dev)
        assert "zoom_ms" in pred.timings, "the benchmark's zoom turn got no zoom pass"

    try:
        turn()  # warm-up
        return _time(turn, repeats * 5)
    finally:
        predictor.zoom_in = zoom_in


def uncertainty_model_pair(name: str):
    """Two random-weight models of config ``name``, without and with RUS + UGF + UDLR, seeded (the same weights
    every run) and equal in every weight they share, so their masks, and so their post-processing costs, are
    comparable."""
    import torch

    from rrsis_engine.model import build_rsam, get_config

    cfg = get_config(name)
    torch.manual_seed(0)
    off = build_rsam(cfg)
    on = build_rsam(cfg.with_overrides(use_rus=True, use_ugf=True, use_udlr=True))
    on.load_state_dict(off.state_dict(), strict=False)
    return off, on


def _measure_uncertainty_turns(name: str, repeats: int, dev, rng, precision: str = "fp32") -> dict:
    """Click and new-text turn latency with and without RUS + UGF + UDLR, alternating the two models turn
    block by turn block so both see the same machine load."""
    from rrsis_engine.predictor import Predictor

    off, on = uncertainty_model_pair(name)
    predictors = {k: Predictor(m, device=str(dev), disk_cache=False, encoder_precision=precision, click_fit=False)
                  for k, m in (("off", off), ("on", on))}
    img = (rng.random((1024, 1024, 3)) * 255).astype(np.uint8)
    times = {k: ([], []) for k in predictors}
    images = {k: p.set_image(img) for k, p in predictors.items()}
    for _ in range(3):
        for k, p in predictors.items():
            clicks, texts = _turns(p, images[k], max(1, repeats // 2 + 1), dev)
            times[k][0].extend(clicks)
            times[k][1].extend(texts)
    out = {}
    for k, (clicks, texts) in times.items():
        out[f"unc_{k}_click_p50_ms"] = _pct(clicks, 50)
        out[f"unc_{k}_text_p50_ms"] = _pct(texts, 50)
    out["unc_click_ratio"] = out["unc_on_click_p50_ms"] / out["unc_off_click_p50_ms"]
    out["unc_text_ratio"] = out["unc_on_text_p50_ms"] / out["unc_off_text_p50_ms"]
    return out


def _baseline(config: str, repeats: int, dev, encoder_autocast, rng) -> dict:
    """Plain SAM 2: image encoder (under ``encoder_autocast``) at 512² and 1024², and prompt encoder + mask decoder
    for a 2-click turn."""
    import torch
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    sam = build_sam2(f"configs/sam2.1/{config}.yaml", ckpt_path=None, device=str(dev), mode="eval")
    pred = SAM2ImagePredictor(sam)
    out = {}
    with torch.inference_mode():
        for side in (512, 1024):
            images = [(rng.random((side, side, 3)) * 255).astype(np.uint8) for _ in range(repeats + 1)]
            it = iter(images)

            def embed(it=it):
                with encoder_autocast:
                    pred.set_image(next(it))
                pred._features = {k: [f.float() for f in v] if isinstance(v, list) else v.float()
                                  for k, v in pred._features.items()}  # float32 for the decoder, as ours
                _sync(dev)

            embed()
            out[f"sam2_embed_{side}_ms"] = statistics.median(_time(embed, repeats))
        pts = np.array([[500, 500], [300, 200]], np.float32)
        lab = np.array([1, 0])
        _, _, low = pred.predict(point_coords=pts[:1], point_labels=lab[:1], multimask_output=False)
        clicks = _time(lambda: (pred.predict(point_coords=pts, point_labels=lab, mask_input=low,
                                             multimask_output=False), _sync(dev)), repeats * 10)
    out.update(sam2_click_p50_ms=_pct(clicks, 50), sam2_click_p95_ms=_pct(clicks, 95))
    return out


def _markdown(report: dict) -> str:
    rows = report["results"]
    lines = [
        f"# Engine benchmark ({report['device']}, {report['dtype']}, {report['threads']} threads)",
        "",
        f"{report['host']}; {report['date']}; command: `{report['command']}`. Random weights (timing only). "
        "Each row ran in its own process; the SAM 2 baseline of the same Hiera family was timed in that process.",
        "",
        "| config | input | embed 512² (ms) | embed 1024² (ms) | SAM 2 embed 1024² (ms) | click p50 / p95 (ms) "
        "| SAM 2 click p50 (ms) | click ratio | new-text p50 / p95 (ms) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['input']}² | {r['embed_512_ms']:.0f} | {r['embed_1024_ms']:.0f} | "
            f"{r['sam2_embed_1024_ms']:.0f} ({r['baseline']}) | {r['click_p50_ms']:.1f} / {r['click_p95_ms']:.1f} | "
            f"{r['sam2_click_p50_ms']:.1f} | {r['click_ratio']:.2f}× | {r['text_p50_ms']:.1f} / {r['text_p95_ms']:.1f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    lines += ["", "Zoom-in click turns (rrsis_engine.zoom: from the second click on a small object the predictor also "
              "encodes and decodes a crop around it), p50 against the plain click turn above. Left on auto, a "
              f"predictor zooms only while an image-encoder pass takes at most {MAX_ENCODE_MS:.0f} ms.", "",
              "| config | click p50 (ms) | zoom click p50 (ms) | ratio | zoom on auto |", "|---|---|---|---|---|"]
    for r in rows:
        if "zoom_click_p50_ms" in r:
            auto = "yes" if r["embed_1024_ms"] <= MAX_ENCODE_MS else "no"
            lines.append(f"| {r['config']} | {r['click_p50_ms']:.1f} | {r['zoom_click_p50_ms']:.1f} | "
                         f"{r['zoom_click_p50_ms'] / r['click_p50_ms']:.2f}× | {auto} |")
    lines += ["", "Edge snap (rrsis_engine.edges: every turn's mask snapped to the image's colour edges, two guided-filter "
              "passes over the mask's box; on by default, off in the click turns above): its p50 on the 1024² image "
              "for a 256² object seeded by a click turn's three clicks and for a mask covering the whole image, and the "
              "click turn with it; and the "
              "negative-click rules (rrsis_engine.postprocess: negated look-alikes and crossing strips, in every "
              "turn with a negative click, also in the click turns above) on two roads crossing the 1024² image "
              "with a negative click on the narrower one, which they remove, and on a 300² look-alike the turn cut "
              "in two around the negative click, whose pieces they remove with the previous turn's mask; and click "
              "fitting "
              "(rrsis_engine.model.click_fit, in click turns that leave a click on the wrong side) with two such "
              "clicks on the model's grid.", "",
              "| config | click p50 (ms) | snap, 256² object, 3 clicks (ms) | snap, whole image (ms) | click + object snap "
              "vs SAM 2 | negative-click rules, crossing roads (ms) | negative-click rules, look-alike cut at the "
              "click (ms) | click fit, two wrong-side clicks (ms) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "snap_object_p50_ms" in r:
            negated = " | ".join(f"{r[k]:.1f}" if k in r else "–" for k in ("negated_roads_p50_ms",
                                                                               "negated_cut_p50_ms"))
            fit = f"{r['click_fit_p50_ms']:.1f}" if "click_fit_p50_ms" in r else "–"
            lines.append(f"| {r['config']} | {r['click_p50_ms']:.1f} | {r['snap_object_p50_ms']:.1f} | "
                         f"{r['snap_whole_p50_ms']:.1f} | "
                         f"{(r['click_p50_ms'] + r['snap_object_p50_ms']) / r['sam2_click_p50_ms']:.2f}× | {negated} | "
                         f"{fit} |")
    lines += _latency_table(
        rows, "Clicks on the rim (rrsis_engine.postprocess.rim_click_zone, in every click turn with the mask shown "
        "before it, also in the click turns above): a negative click 3 pixels inside the 300² target above, the "
        "model's answer dropping the target (the rule keeps all but the rim around the click) or trimming a "
        "4-pixel sliver along its edge (the answer stands).",
        {"answer dropped the target": "rim_dropped_p50_ms", "answer trimmed the rim": "rim_trimmed_p50_ms"})
    lines += _latency_table(
        rows, "Estimated IoU (rrsis_engine.quality, in every turn of a model with a quality calibration; not in the "
        "click turns above, whose random weights have none): the mask of the 300² target and look-alike above, and a "
        "mask covering the 1024² image, with a 1024² uncertainty map.",
        {"two 300² objects": "quality_objects_p50_ms", "whole image": "quality_whole_p50_ms"})
    lines += _latency_table(
        rows, "Boundary refiner (rrsis_engine.model.boundary_refiner, last in every turn of a model that has one; the "
        "shipped rsam-lite has none, and neither has the random-weight model of the click turns above): "
        "the outline band of a 256² object, of the two 300² objects above and of a 600×550 object on the 1024² image.",
        {"256² object": "outline_object_p50_ms", "two 300² objects": "outline_two_p50_ms",
         "600×550 object": "outline_large_p50_ms"})
    lines += ["", "Colour regions grown from positive clicks (rrsis_engine.click_regions, on by default) on the two "
              "crossing roads above painted in one asphalt colour: smoothing the 1024² image (once per image, on its "
              "first positive click), growing the region from a click on the wide road (once per click; both are "
              "cached), cutting the crossing road off it at the negative click (every turn with both kinds), and the "
              "negative click's own region (grown and cached the same way) taking that road's straight strip out of a "
              "mask holding both roads (every turn with a negative click on a strip).", "",
              "| config | smoothing (ms) | region from a click (ms) | split at a negative click (ms) | "
              "negative click's strip out of the mask (ms) |",
              "|---|---|---|---|---|"]
    for r in rows:
        if "grow_smooth_p50_ms" in r:
            lines.append(f"| {r['config']} | {r['grow_smooth_p50_ms']:.1f} | {r['grow_region_p50_ms']:.1f} | "
                         f"{r['grow_split_p50_ms']:.1f} | {r['grow_negated_p50_ms']:.1f} |")
    lines += ["", "Spatial sentences (rrsis_engine.spatial_language), with the shipped rsam-lite weights (with random "
              "weights the category's mask is speckle): the text turn of \"the leftmost building\" (the category's "
              "own text turn, then geometry over its objects) against \"the leftmost building, more or less\" (words "
              "the rules do not read: one plain text turn), and of \"all the ships\" (the water's and the rivers' "
              "text turns, then the ships read off them), p50 over synthetic scenes, a new one per sentence.", "",
              "| config | scene | spatial text turn (ms) | ships text turn (ms) | plain text turn (ms) | spatial ratio "
              "| ships ratio |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "spatial_text_p50_ms" in r:
            lines.append(f"| {r['config']} | {r['spatial_side']}² | {r['spatial_text_p50_ms']:.1f} | "
                         f"{r.get('ships_text_p50_ms', float('nan')):.1f} | {r['spatial_plain_text_p50_ms']:.1f} | "
                         f"{r['spatial_text_ratio']:.2f}× | {r.get('ships_text_ratio', float('nan')):.2f}× |")
    lines += ["", "CroBIM-U cost: the same config with RUS + UGF + UDLR on, per-turn p50 against it off, the two "
              "models alternating in one process.", "",
              "| config | click off / on (ms) | click ratio | new text off / on (ms) | new-text ratio |",
              "|---|---|---|---|---|"]
    for r in rows:
        if "unc_click_ratio" in r:
            lines.append(
                f"| {r['config']} | {r['unc_off_click_p50_ms']:.1f} / {r['unc_on_click_p50_ms']:.1f} | "
                f"{r['unc_click_ratio']:.2f}× | {r['unc_off_text_p50_ms']:.1f} / {r['unc_on_text_p50_ms']:.1f} | "
                f"{r['unc_text_ratio']:.2f}× |")
    lines += ["", "## Goals", ""]
    for goal in report["goals"]:
        lines.append(f"- {'✅' if goal['met'] else '❌'} {goal['goal']}: {goal['value']}")
    return "\n".join(lines) + "\n"


def _goals(rows: list[dict]) -> list[dict]:
    by = {r["config"]: r for r in rows}
    goals = []
    for r in rows:
        goals.append({"goal": f"{r['config']} click-turn p50 ≤ 1.5× plain SAM 2 decoding",
                      "value": f"{r['click_ratio']:.2f}×", "met": r["click_ratio"] <= 1.5})
        if "unc_click_ratio" in r:
            worst = max(r["unc_click_ratio"], r["unc_text_ratio"])
            goals.append({"goal": f"{r['config']} per-turn p50 with RUS + UGF + UDLR ≤ 1.2× without",
                          "value": f"click {r['unc_click_ratio']:.2f}×, new text {r['unc_text_ratio']:.2f}×",
                          "met": worst <= 1.2})
    if "rsam-lite" in by:
        lite = by["rsam-lite"]
        goals.append({"goal": "rsam-lite new-text-turn p50 ≤ 150 ms", "value": f"{lite['text_p50_ms']:.1f} ms",
                      "met": lite["text_p50_ms"] <= 150})
        ratio = lite["embed_1024_ms"] / lite["sam2_embed_1024_ms"]
        goals.append({"goal": "rsam-lite embedding (1024² image) ≤ 1/3 of sam2.1_hiera_t's",
                      "value": f"{ratio:.2f}×", "met": ratio <= 1 / 3})
    return goals


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rrsis bench engine", description=__doc__)
    ap.add_argument("--configs", default="rsam-lite,rsam-t,rsam-b+")
    ap.add_argument("--repeats", type=int, default=3, help="embedding repeats (turns: ×10 clicks, ×5 texts)")
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default=None,
                    help="image encoders' arithmetic (default: the predictor's auto choice on this device)")
    ap.add_argument("--out", default="benchmarks", help="folder for engine.json / engine.md")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one config, print JSON
    args = ap.parse_args(argv)
    dtype = args.dtype
    if dtype is None:
        import torch

        from rrsis_engine.predictor import resolve_encoder_precision

        dtype = resolve_encoder_precision("auto", torch.device(args.device))
    if args.one:
        print("RESULT " + json.dumps(measure_config(args.one, args.repeats, args.device, dtype)))
        return 0
    rows = []
    for name in args.configs.split(","):
        cmd = [sys.executable, "-m", "rrsis_engine.bench.engine", "--one", name, "--repeats", str(args.repeats),
               "--device", args.device, "--dtype", dtype]
        print(f"measuring {name} ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            return 1
        r = json.loads(line[0][7:])
        r["click_ratio"] = r["click_p50_ms"] / r["sam2_click_p50_ms"]
        rows.append(r)
        print(f"  embed 1024² {r['embed_1024_ms']:.0f} ms (SAM 2 {r['sam2_embed_1024_ms']:.0f}), click p50 "
              f"{r['click_p50_ms']:.1f} ms (SAM 2 {r['sam2_click_p50_ms']:.1f}), text p50 {r['text_p50_ms']:.1f} ms")
    import torch

    report = {
        "device": args.device, "dtype": dtype, "threads": torch.get_num_threads(),
        "host": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
        "command": "rrsis bench engine " + " ".join(argv or []), "results": rows, "goals": _goals(rows),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else "-" + args.device.split(":")[0]
    (out / f"engine{suffix}.json").write_text(json.dumps(report, indent=2))
    (out / f"engine{suffix}.md").write_text(_markdown(report))
    print(_markdown(report))
    return 0


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
