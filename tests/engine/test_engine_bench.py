"""rrsis bench engine: the CroBIM-U cost comparison measures both models and reports it with a goal; zoom and edge
snap are timed apart from the plain click turn."""

import numpy as np
import torch


def test_uncertainty_turn_comparison_reports_ratios_and_a_goal(monkeypatch):
    from rrsis_engine.bench import engine
    from rrsis_engine.model import RSAM

    fusions = []
    fuse = RSAM.fuse_with_uncertainty
    monkeypatch.setattr(RSAM, "fuse_with_uncertainty", lambda self, *a: fusions.append(1) or fuse(self, *a))
    # two of the bench's sentences have spatial words, whose category sentence is fused once more per image
    monkeypatch.setattr("rrsis_engine.spatial_language.parse", lambda text: None)
    torch.set_num_threads(1)
    r = engine._measure_uncertainty_turns("rsam-tiny", 1, torch.device("cpu"), np.random.default_rng(0))
    # every timed new-text turn really ran the fusion (no text-cache hits): 2 models × (1 warm-up + 3 × 5 texts)
    assert len(fusions) == 2 * (1 + 3 * 5)
    for k in ("off", "on"):
        assert r[f"unc_{k}_click_p50_ms"] > 0 and r[f"unc_{k}_text_p50_ms"] > 0
    assert np.isclose(r["unc_click_ratio"], r["unc_on_click_p50_ms"] / r["unc_off_click_p50_ms"])
    row = {"config": "rsam-tiny", "click_ratio": 1.0, **r}
    (goal,) = [g for g in engine._goals([row]) if "RUS" in g["goal"]]
    assert goal["met"] == (max(r["unc_click_ratio"], r["unc_text_ratio"]) <= 1.2)


def test_zoom_turns_and_the_edge_snap_are_timed_apart_from_plain_click_turns(monkeypatch):
    from rrsis_engine import edges
    from rrsis_engine.bench import engine
    from rrsis_engine.model import build_rsam
    from rrsis_engine.predictor import Predictor

    torch.manual_seed(0)
    predictor = Predictor(build_rsam("rsam-tiny").eval(), device="cpu", disk_cache=False)
    image = predictor.set_image((np.random.default_rng(0).random((1024, 1024, 3)) * 255).astype(np.uint8))
    zooms = []
    refine = predictor._zoom_refine
    monkeypatch.setattr(predictor, "_zoom_refine", lambda *a: zooms.append(refine(*a)) or zooms[-1])
    snaps = []
    snap = edges.snap_to_edges
    monkeypatch.setattr("rrsis_engine.edges.snap_to_edges", lambda *a, **k: snaps.append(1) or snap(*a, **k))
    engine._turns(predictor, image, 1, torch.device("cpu"))
    assert not any(zooms) and predictor.zoom_in is None  # plain click turns get no zoom pass; auto is restored
    assert not snaps and predictor.edge_refine is True  # nor the edge snap, timed on its own; restored
    assert predictor.grow_clicks is True
    r = engine._edge_snap(image, predictor.image_size // 4, 1)
    assert len(snaps) == 2 * (1 + 5) and r["snap_whole_p50_ms"] > 0 and r["snap_object_p50_ms"] > 0
    assert r["negated_roads_p50_ms"] > 0 and r["negated_cut_p50_ms"] > 0
    assert r["grow_smooth_p50_ms"] > 0 and r["grow_region_p50_ms"] > 0 and r["grow_split_p50_ms"] > 0
    assert r["grow_negated_p50_ms"] > 0
    assert r["quality_objects_p50_ms"] > 0 and r["quality_whole_p50_ms"] > 0
    assert all(r[f"outline_{name}_p50_ms"] > 0 for name in ("object", "two", "large"))
    zooms.clear()
    times = engine._zoom_turns(predictor, image, 1, torch.device("cpu"))
    assert len(times) == 5 and all(t > 0 for t in times)
    assert zooms == [True] * 6  # warm-up + 5 timed turns, each with a zoom pass
    assert predictor.zoom_in is None


def test_uncertainty_models_are_seeded_and_share_their_common_weights():
    from rrsis_engine.bench import engine

    off, on = engine.uncertainty_model_pair("rsam-tiny")
    off2, _ = engine.uncertainty_model_pair("rsam-tiny")
    off_sd, on_sd = off.state_dict(), on.state_dict()
    extra = set(on_sd) - set(off_sd)
    assert extra and all(k.split(".")[0] in ("rus", "ugf", "udlr") for k in extra)
    assert all(torch.equal(on_sd[k], v) for k, v in off_sd.items())  # only the three modules differ
    assert all(torch.equal(off2.state_dict()[k], v) for k, v in off_sd.items())  # the same weights every run


def test_spatial_sentences_are_timed_with_the_shipped_weights_against_plain_text_turns(monkeypatch):
    from rrsis_engine import spatial_language
    from rrsis_engine.bench import engine

    resolved = []
    resolve = spatial_language.resolve
    monkeypatch.setattr(spatial_language, "resolve", lambda *a: resolved.append(1) or resolve(*a))
    read_off_water = []
    ships_on = spatial_language.ships_on
    monkeypatch.setattr(spatial_language, "ships_on", lambda *a: read_off_water.append(1) or ships_on(*a))
    torch.set_num_threads(1)
    r = engine._spatial_sentences(1, torch.device("cpu"), side=256)
    assert len(resolved) == 3  # three scenes (one warm-up): the spatial sentence resolved, its plain twin not
    assert len(read_off_water) == 3  # "all the ships": once a scene
    assert r["spatial_text_p50_ms"] > 0 and r["spatial_plain_text_p50_ms"] > 0 and r["spatial_side"] == 256
    assert np.isclose(r["spatial_text_ratio"], r["spatial_text_p50_ms"] / r["spatial_plain_text_p50_ms"])
    assert np.isclose(r["ships_text_ratio"], r["ships_text_p50_ms"] / r["spatial_plain_text_p50_ms"])
