"""Function twins of the web app's events, driven without a browser (fake predictor, real engine session)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from rrsis_app import state as S
from rrsis_app.render import DisplayFrame
from rrsis_app_testing import header_only_png, scene, write_geotiff

from rrsis_engine import rle
from rrsis_engine.predictor import MAX_TEXT_CHARS


def last(st: S.AppState) -> str:
    assert st.chat[-1]["role"] == "assistant"
    return st.chat[-1]["content"]


# ---- coordinates -------------------------------------------------------------------------------------
def test_display_frame_identity_when_small():
    f = DisplayFrame.for_image(640, 480, max_side=1024)
    assert not f.downsampled
    for dx, dy in [(0, 0), (13, 7), (639, 479)]:
        assert f.to_full(dx, dy) == (dx, dy)


@pytest.mark.parametrize("w,h", [(3000, 2000), (1025, 1024), (20000, 700), (2048, 2048)])
def test_display_frame_maps_each_display_pixel_into_its_block(w, h):
    f = DisplayFrame.for_image(w, h, max_side=1024)
    assert max(f.display_width, f.display_height) == 1024
    for dx in [0, 1, f.display_width // 2, f.display_width - 1]:
        for dy in [0, f.display_height // 3, f.display_height - 1]:
            x, y = f.to_full(dx, dy)
            # the display pixel covers full-res [dx*sx, (dx+1)*sx): the mapped point is inside that block
            assert dx * f.sx - 0.5 <= x <= (dx + 1) * f.sx - 0.5 + 1e-9
            assert dy * f.sy - 0.5 <= y <= (dy + 1) * f.sy - 0.5 + 1e-9
            assert 0 <= x <= w - 1 and 0 <= y <= h - 1
            bx, by = f.to_display(x, y)  # and maps back to the same display pixel
            assert round(bx) == dx and round(by) == dy


def test_display_frame_sampling_matches_mapping():
    """A feature at a full-resolution location shows up at the display pixel that maps back to it."""
    w, h = 2500, 1500
    f = DisplayFrame.for_image(w, h, max_side=1000)
    full = np.zeros((h, w), bool)
    full[900:910, 1700:1710] = True
    disp = f.sample(full)
    assert disp.shape == (f.display_height, f.display_width)
    ys, xs = np.nonzero(disp)
    for dy, dx in zip(ys, xs, strict=True):
        x, y = f.to_full(dx, dy)
        assert 1700 - f.sx <= x <= 1710 + f.sx and 900 - f.sy <= y <= 910 + f.sy


def test_a_candidates_number_in_the_chat_keeps_it_alone(services):
    """The ambiguous reply invites the candidate's number; "2" keeps candidate 2 alone, the history says so, and
    a number with nothing outlined is answered with what to do instead."""
    st = S.new_state(services)
    S.load_sample(st, services, 0)
    S.send_message(st, services, "a bright field")
    first = st.prediction
    assert first.offers_choice and "or its number: “2”" in last(st)
    S.send_message(st, services, "number 2")
    assert np.array_equal(st.prediction.mask, first.candidates[1].mask) and not st.prediction.offers_choice
    assert last(st).startswith("Kept candidate **2** alone.")
    assert "| pick | candidate 2 |" in S.history_markdown(st)
    S.send_message(st, services, "1")
    assert "none is outlined now" in last(st) and st.session.turns[-1].kind == "pick"


def test_display_frame_full_mask_is_the_inverse_of_sampling():
    """A display mask taken to full resolution covers each display pixel's block, and samples back to itself."""
    f = DisplayFrame.for_image(2500, 1500, max_side=1000)
    disp = np.zeros((f.display_height, f.display_width), bool)
    disp[100:120, 300:340] = True
    full = f.to_full_mask(disp)
    assert full.shape == (1500, 2500) and np.array_equal(f.sample(full), disp)
    assert abs(int(full.sum()) - disp.sum() * f.sx * f.sy) < 0.05 * full.sum()


def test_brush_strokes_add_and_remove_in_full_resolution(services, tmp_path):
    """Blue strokes on the (downsampled) brush canvas add their full-resolution blocks to the mask, pink ones remove
    theirs; a canvas of another size and an empty canvas are refused without a turn."""
    big = np.zeros((1500, 3000, 3), np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    st = S.new_state(services)
    S.load_upload(st, services, str(tmp_path / "big.png"))
    canvas = S.brush_canvas(st)
    assert canvas["background"].shape[:2] == (512, 1024) and canvas["layers"] == []
    layer = np.zeros((512, 1024, 4), np.uint8)
    layer[100:140, 200:300] = (0, 210, 255, 255)  # blue: add
    layer[120:130, 250:260] = (255, 60, 200, 255)  # pink: remove
    layer[300:310, 300:310] = (0, 210, 255, 60)  # faint anti-aliasing: not painted
    S.apply_brush(st, services, {"background": canvas["background"], "layers": [layer], "composite": None})
    expected = st.frame.to_full_mask((layer[..., 3] > 127) & (layer[..., 0] < 128))
    assert np.array_equal(st.prediction.mask, expected) and st.session.turns[-1].kind == "mask"
    assert f"+{int(expected.sum()):,} px, −0 px" in st.chat[-2]["content"]
    S.apply_brush(st, services, {"layers": [np.zeros((512, 1024, 4), np.uint8)]})
    assert "Nothing painted yet" in last(st) and len(st.session.turns) == 1
    S.apply_brush(st, services, {"layers": [np.zeros((100, 100, 4), np.uint8)]})
    assert "Load the current mask" in last(st) and len(st.session.turns) == 1
    S.command(st, services, "undo")
    assert st.prediction is None or not st.prediction.mask.any()
    assert not S.brush_is_stale(st)
    S.load_sample(st, services, 0)  # another image: the page reloads the brush canvas with it
    assert S.brush_is_stale(st) and S.brush_canvas(st)["background"].shape[:2] == st.base.shape[:2]
    assert not S.brush_is_stale(st)


def test_an_open_brush_canvas_follows_every_turn(services):
    """With the brush panel open, a click, sentence or undo reloads the canvas with the new mask; closed, only another
    image does (the panel loads the current mask when it opens)."""
    st = S.new_state(services)
    S.load_sample(st, services, 0)
    S.set_brush_open(st, True)
    first = S.brush_canvas(st)["background"]
    S.click(st, services, 40.0, 40.0)
    assert S.brush_is_stale(st)
    after_click = S.brush_canvas(st)["background"]
    assert not S.brush_is_stale(st) and not np.array_equal(first, after_click)  # the click's mask is drawn
    S.command(st, services, "undo")
    assert S.brush_is_stale(st) and np.array_equal(S.brush_canvas(st)["background"], first)
    S.set_brush_open(st, False)
    S.click(st, services, 40.0, 40.0)
    assert not S.brush_is_stale(st)  # closed: reloaded when it opens again
    S.load_sample(st, services, 1)
    assert S.brush_is_stale(st)  # another image: always reloaded (its strokes would land on the wrong image)


def test_click_on_downsampled_upload_reaches_engine_in_full_resolution(services, tmp_path):
    big = np.zeros((1500, 3000, 3), np.uint8)
    big[::50] = 255
    path = tmp_path / "big.png"
    Image.fromarray(big).save(path)
    st = S.new_state(services)
    S.load_upload(st, services, str(path))
    assert st.frame.downsampled and st.base.shape == (512, 1024, 3)
    assert "shown at 1024×512" in last(st)
    S.click(st, services, 700, 300)
    x, y = st.session.state.points[-1]
    assert (x, y) == st.frame.to_full(700, 300)
    assert abs(x - 700.5 * 3000 / 1024 + 0.5) < 1e-9 and abs(y - 300.5 * 1500 / 512 + 0.5) < 1e-9
    assert services.predictor.predict_images[-1].width == 3000  # the engine saw the full image


# ---- a whole conversation ------------------------------------------------------------------------------
def test_conversation_text_click_undo_redo_clear_accept(services):
    st = S.new_state(services)
    S.load_sample(st, services, 0)
    assert st.image is not None and st.session is not None and "Loaded" in last(st)
    S.send_message(st, services, "the bright lake")
    first = st.prediction.mask.copy()
    assert first.any() and "Mask" in last(st)
    # a negative click in the middle of the left blob removes pixels there
    cx, cy = int(200 * 0.25), int(160 * 0.5)
    S.click(st, services, cx, cy)  # positive by default
    S.set_mode(st, "negative")
    S.click(st, services, cx, cy)
    assert not st.prediction.mask[cy, cx]
    assert st.session.state.labels == (1, 0)
    S.send_message(st, services, "undo")
    assert st.prediction.mask[cy, cx] and st.session.state.labels == (1,)
    S.command(st, services, "redo")
    assert st.session.state.labels == (1, 0)
    S.command(st, services, "clear")
    assert st.prediction is None
    S.command(st, services, "undo")
    assert st.session.state.labels == (1, 0)
    view = S.views(st, services)
    assert view["image"].shape == (160, 200, 3)
    assert "| 3 | click |" in view["history"]
    final = st.prediction.mask.copy()
    S.command(st, services, "accept")
    assert "Accepted object 1" in last(st)
    assert st.prediction is None and len(st.accepted) == 1
    assert st.accepted[0]["expressions"] == ["the bright lake"]
    png, gj, coco = (p for p in st.exports)
    assert np.array_equal(np.asarray(Image.open(png)) > 0, final)
    geo = json.loads(open(gj).read())
    assert geo["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::26914"
    polygons = [poly for f in geo["features"] for poly in (
        [f["geometry"]["coordinates"]] if f["geometry"]["type"] == "Polygon" else f["geometry"]["coordinates"])]
    xs = [c[0] for poly in polygons for ring in poly for c in ring]
    assert 485900.0 <= min(xs) and max(xs) <= 485900.0 + 200 * 5.0
    ann = json.loads(open(coco).read())["annotations"][0]
    assert np.array_equal(rle.decode(ann["segmentation"]), final)
    assert ann["area"] == int(final.sum()) and ann["expressions"] == ["the bright lake"]


def test_box_mode_takes_two_corners(services):
    st = S.new_state(services)
    S.load_sample(st, services, 0)
    S.set_mode(st, S.MODE_LABELS["box"])
    S.click(st, services, 120, 90)
    assert st.pending_corner == (120.0, 90.0) and st.session.current is None
    assert "opposite corner" in last(st)
    S.click(st, services, 20, 30)
    assert st.session.state.box == (20.0, 30.0, 120.0, 90.0)
    assert st.pending_corner is None
    m = st.prediction.mask
    assert m.any() and not m[:30].any() and not m[:, 121:].any()


def test_ambiguous_expression_lists_candidates_and_suggestion(services):
    st = S.new_state(services)
    S.load_sample(st, services, 0)
    S.send_message(st, services, "a bright patch")
    msg = last(st)
    assert "could mean 2 different regions" in msg and "white ring" in msg
    # the suggestion is a positive click on the likelier region, shown: "is it this one?"
    assert st.prediction.suggests_confirmation and "keeps it alone" in msg
    assert "Say which one" in msg  # a follow-up sentence is ranked among the regions (engine, stop 35)
    plain = st.base
    shown = S.render_image(st)
    assert shown.shape == plain.shape and not np.array_equal(shown, plain)


def test_a_mask_showing_one_of_the_candidates_says_a_negative_click_shows_the_next(services):
    """For a sentence about one object the engine shows the likeliest look-alike alone (stop 46)."""
    from rrsis_engine.prediction import Candidate, Prediction

    st = S.new_state(services)
    left, right = np.zeros((40, 40), bool), np.zeros((40, 40), bool)
    left[5:15, 5:15], right[25:35, 25:35] = True, True
    cands = [Candidate(left, 0.9, (5, 5, 15, 15), (10.0, 10.0)), Candidate(right, 0.8, (25, 25, 35, 35), (30.0, 30.0))]
    pred = Prediction(mask=left, logits=left.astype(np.float32), low_res_logits=None, iou_score=0.8, object_score=0.9,
                      latency_ms=1.0, ambiguity=0.9, ambiguous=True, candidates=cands)
    assert pred.shows_one_candidate
    assert "the mask shows the likeliest, and a negative click on it shows the next likeliest" in \
        S.describe_turn(st, pred, "expression")
    pred.mask = left | right  # both shown: nothing to say about the others
    assert not pred.shows_one_candidate
    assert "negative click on it shows the next" not in S.describe_turn(st, pred, "expression")


def test_a_flag_with_one_candidate_claims_no_choice(services, monkeypatch):
    """A follow-up the geometry resolved ("the one on the left") shows one object; the ambiguity head, reading its
    wording, may still flag it: the reply and the picture do not offer "1 different regions" (as the plugin's do not)."""
    from rrsis_engine.prediction import Candidate, Prediction

    st = S.new_state(services)
    S.load_sample(st, services, 0)
    h, w = st.base.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[5:15, 5:15] = True
    pred = Prediction(mask=mask, logits=mask.astype(np.float32), low_res_logits=None, iou_score=0.8, object_score=0.9,
                      latency_ms=1.0, ambiguity=0.9, ambiguous=True,
                      candidates=[Candidate(mask, 0.9, (5, 5, 15, 15), (10.0, 10.0))])
    assert "Ambiguous" not in S.describe_turn(st, pred, "expression")
    monkeypatch.setattr(type(st), "prediction", property(lambda self: pred))
    with_flag = S.render_image(st)
    pred.ambiguous = False
    assert np.array_equal(with_flag, S.render_image(st))  # no numbered outline of the one object


def test_an_unflagged_suggestion_is_worded_by_what_it_asks(services):
    from rrsis_engine.prediction import Prediction

    st = S.new_state(services)
    mask = np.zeros((40, 40), bool)
    mask[5:15, 5:15] = mask[25:35, 25:35] = True
    pred = Prediction(mask=mask, logits=mask.astype(np.float32), low_res_logits=None, iou_score=0.8, object_score=0.9,
                      latency_ms=1.0, ambiguity=0.5, ambiguous=False, suggested_click=(10.0, 10.0, 1))
    assert "is it the one under the white ring (10, 10)? A positive click there keeps it alone" in \
        S.describe_turn(st, pred, "expression")
    pred.suggested_click = (20.0, 20.0, 1)  # outside the mask: a correction
    assert "try a positive click near the white ring (20, 20)" in S.describe_turn(st, pred, "expression")


def test_the_reply_shows_the_estimated_iou_and_asks_for_a_click_when_the_mask_is_likely_off(services):
    from rrsis_engine.prediction import Prediction

    st = S.new_state(services)
    mask = np.zeros((40, 40), bool)
    mask[5:15, 5:15] = True
    pred = Prediction(mask=mask, logits=mask.astype(np.float32), low_res_logits=None, iou_score=0.08, object_score=1.0,
                      latency_ms=1.0)
    msg = S.describe_turn(st, pred, "expression")
    assert "decoder IoU 0.08" in msg and "likely off" not in msg  # no estimate: the IoU head, labelled as such
    assert "object score" not in msg  # said only when low
    pred.quality = 0.91
    msg = S.describe_turn(st, pred, "expression")
    assert "estimated IoU 0.91" in msg and "likely off" not in msg
    pred.quality = 0.31
    msg = S.describe_turn(st, pred, "expression")
    assert "estimated IoU 0.31" in msg and "This mask is likely off: click on the object you mean" in msg
    pred.ambiguous = True  # the ambiguity message asks for the click instead
    assert "likely off" not in S.describe_turn(st, pred, "expression")
    pred.ambiguous = False
    pred.mask = np.zeros((40, 40), bool)  # nothing found says so instead
    msg = S.describe_turn(st, pred, "expression")
    assert "I found nothing" in msg and "likely off" not in msg


def test_commands_are_recognised():
    assert S.parse_command("Undo") == "undo"
    assert S.parse_command(" /redo ") == "redo"
    assert S.parse_command("next image.") == "next"
    assert S.parse_command("Accept!") == "accept"
    assert S.parse_command("the one next to the road") is None
    assert S.parse_command("undo the last click") is None


def test_next_and_previous_cycle_through_samples(services):
    st = S.new_state(services)
    S.command(st, services, "next")
    assert st.sample_index == 0
    S.send_message(st, services, "next image")
    assert st.sample_index == 1 and st.image_name == "scene_b.tif"
    S.command(st, services, "next")
    assert st.sample_index == 0
    S.command(st, services, "previous")
    assert st.sample_index == 1


# ---- bad input ---------------------------------------------------------------------------------------
def test_bad_inputs_become_chat_messages_and_the_app_keeps_working(services, tmp_path):
    st = S.new_state(services)
    S.send_message(st, services, "   ")
    assert "Type what to segment" in last(st)
    S.click(st, services, 10, 10)
    assert "No image yet" in last(st)
    S.send_message(st, services, "the lake")
    assert "No image yet" in last(st)
    S.command(st, services, "accept")
    assert "No image yet" in last(st)

    txt = tmp_path / "notes.txt"
    txt.write_text("this is not an image")
    S.load_upload(st, services, str(txt))
    assert "Cannot read notes.txt as an image" in last(st)

    huge = header_only_png(tmp_path / "huge.png", 20000, 20000)
    S.load_upload(st, services, str(huge))
    assert "20000×20000" in last(st) and "limit" in last(st)
    assert st.image is None

    services.limits.max_upload_bytes = 100
    ok = write_geotiff(tmp_path / "ok.tif", scene())
    S.load_upload(st, services, str(ok))
    assert "upload limit" in last(st)
    services.limits.max_upload_bytes = 10**9

    S.load_upload(st, services, str(ok))
    assert st.image is not None and "Loaded **ok.tif**" in last(st)
    S.send_message(st, services, "the lake")
    assert st.prediction is not None
    S.send_message(st, services, "x" * (MAX_TEXT_CHARS + 1))
    assert f"keep it under {MAX_TEXT_CHARS}" in last(st)
    assert not any("Traceback" in m["content"] for m in st.chat)


def test_engine_failure_is_reported_not_raised(services, monkeypatch):
    st = S.new_state(services)
    S.load_sample(st, services, 0)

    def boom(**kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(services.predictor, "predict", boom)
    S.send_message(st, services, "the lake")
    assert "Something went wrong (RuntimeError: out of memory)" in last(st)
    monkeypatch.undo()
    S.send_message(st, services, "the lake")
    assert st.prediction is not None


def test_without_model_the_reason_is_shown(sample_dir, tmp_path):
    sv = S.Services(None, "No trained weights for 'rsam-lite' are installed. Train one with rrsis train.",
                    workdir=tmp_path / "w")
    sv.samples = S.discover_samples(sample_dir, sv.workdir / "thumbs")
    st = S.new_state(sv)
    assert "No trained weights" in last(st)
    S.load_sample(st, sv, 0)
    assert st.image is not None and "No trained weights" in last(st)
    assert S.render_image(st).shape == (160, 200, 3)
    S.send_message(st, sv, "the lake")
    assert "No model is loaded" in last(st) and "No trained weights" in last(st)


# ---- isolation and logging ---------------------------------------------------------------------------
def test_two_tabs_have_isolated_sessions(services):
    a, b = S.new_state(services), S.new_state(services)
    S.load_sample(a, services, 0)
    S.load_sample(b, services, 1)
    S.send_message(a, services, "the lake")
    S.click(a, services, 30, 30)
    S.send_message(b, services, "the field")
    assert a.session is not b.session
    assert a.session.state.points == ((30.0, 30.0),) and b.session.state.points == ()
    assert services.predictor.predict_images[-1] is b.image
    S.click(a, services, 40, 40)
    assert services.predictor.predict_images[-1] is a.image  # each tab predicts on its own image
    assert b.session.state.text == "the field" and a.session.state.text == "the lake"


def test_accept_is_logged_to_the_store(services, tmp_path):
    from rrsis_engine.store import open_store

    store = open_store(tmp_path / "sessions.db")
    services.store = store
    st = S.new_state(services)
    S.load_sample(st, services, 0)
    S.send_message(st, services, "the bright lake")
    S.click(st, services, 150, 60)
    mask = st.prediction.mask.copy()
    S.command(st, services, "accept")
    assert "logged to the session database" in last(st)
    S.close(st)
    recs = store.list_annotations(status="accepted")
    assert len(recs) == 1
    assert recs[0].expressions == ["the bright lake"]
    assert np.array_equal(recs[0].mask, mask)
    store.close()


@pytest.mark.slow
def test_real_predictor_turn(sample_dir, tmp_path):
    """The state functions against the engine's real Predictor (random rsam-tiny weights)."""
    from rrsis_engine.model import build_rsam
    from rrsis_engine.predictor import Predictor

    sv = S.Services(Predictor(build_rsam("rsam-tiny"), device="cpu", disk_cache=False), workdir=tmp_path / "w")
    sv.samples = S.discover_samples(sample_dir, sv.workdir / "thumbs")
    st = S.new_state(sv)
    S.load_sample(st, sv, 1)
    S.send_message(st, sv, "the lake on the left")
    assert st.prediction is not None and st.prediction.mask.shape == (160, 200)
    S.set_mode(st, "negative")
    S.click(st, sv, 50, 80)
    assert st.session.state.labels == (0,)
    assert S.render_image(st).shape == (160, 200, 3)
