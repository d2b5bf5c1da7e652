"""Overlay drawing and the ``rrsis app`` command line."""

from __future__ import annotations

import numpy as np
import pytest
from rrsis_app import render as R
from rrsis_app.cli import build_services, parse_auth

from rrsis_engine.cli import main
from rrsis_engine.errors import RRSISError
from rrsis_engine.prediction import Candidate


def test_overlay_draws_points_box_mask_where_they_are():
    frame = R.DisplayFrame.for_image(2000, 1000, max_side=500)  # display 500×250, scale 4
    base = np.full((250, 500, 3), 100, np.uint8)
    mask = np.zeros((1000, 2000), bool)
    mask[400:600, 1200:1600] = True
    out = R.render_overlay(base, frame, mask=mask, points=[(400.0, 200.0), (1800.0, 800.0)], labels=[1, 0],
                           box=(40.0, 40.0, 400.0, 120.0), options=R.OverlayOptions(opacity=0.5))
    assert out.shape == base.shape and out.dtype == np.uint8
    assert tuple(out[50, 100]) == R.POSITIVE_COLOR  # point 1 at full (400, 200) -> display (100, 50)
    assert tuple(out[200, 450]) == R.NEGATIVE_COLOR  # point 2 at (1800, 800) -> (450, 200)
    assert out[125, 350, 2] > 150 and out[125, 350, 0] < 100  # inside the mask: cyan tint
    assert tuple(out[240, 10]) == (100, 100, 100)  # far from everything: untouched
    assert tuple(out[10, 50]) == R.BOX_COLOR  # top edge of the box (y=40 -> 9.6..10)
    clear = R.render_overlay(base, frame, mask=mask, options=R.OverlayOptions(opacity=0.0))
    assert tuple(clear[125, 350]) == (100, 100, 100)  # opacity 0: fill gone, outline kept
    assert tuple(clear[100, 300]) == R.MASK_COLOR


def test_overlay_candidates_suggestion_and_uncertainty():
    frame = R.DisplayFrame.for_image(200, 100)
    base = np.full((100, 200, 3), 60, np.uint8)
    m = np.zeros((100, 200), bool)
    m[20:40, 20:60] = True
    cand = Candidate(m, 0.7, (20, 20, 60, 40), (40.0, 30.0))
    out = R.render_overlay(base, frame, candidates=[cand], suggested_click=(150.0, 50.0, 1))
    assert tuple(out[20, 50]) == R.CANDIDATE_COLORS[0]  # outline of candidate 1
    assert (out[40:60, 125:175] != 60).any()  # the suggestion ring
    u = np.zeros((100, 200), np.float32)
    u[:, 100:] = 1.0
    heat = R.render_overlay(base, frame, uncertainty=u, options=R.OverlayOptions(show_uncertainty=True))
    assert tuple(heat[50, 20]) == (60, 60, 60) and heat[50, 150, 0] > 200
    hidden = R.render_overlay(base, frame, uncertainty=u, options=R.OverlayOptions(show_uncertainty=False))
    assert tuple(hidden[50, 150]) == (60, 60, 60)


def test_cli_registered_and_validates(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["app", "--help"])
    assert exc.value.code == 0
    assert parse_auth("ann:secret") == ("ann", "secret")
    for bad in ("ann", ":x", "ann:"):
        with pytest.raises(RRSISError, match="USER:PASS"):
            parse_auth(bad)
    assert main(["app", "--auth", "nopassword"]) == 2


def test_build_services_without_weights_keeps_the_reason(tmp_path, monkeypatch):
    import rrsis_engine.predictor as predictor_module

    monkeypatch.setattr(predictor_module, "model_search_dirs", lambda: [tmp_path / "none"])  # hide shipped weights
    sv = build_services(model="rsam-lite", no_db=True, samples_dir=None)
    assert sv.predictor is None and "No trained weights" in sv.predictor_error
    assert len(sv.samples) >= 1  # the bundled tiles
    with pytest.raises(RRSISError, match="not a folder"):
        build_services(model="rsam-lite", no_db=True, samples_dir=tmp_path / "missing")
