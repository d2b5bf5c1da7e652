"""The shipped demo model (rrsis_engine/weights/rsam-lite.safetensors) on held-out synthetic scenes.

Thresholds sit below what the model measured when it was shipped (version f8b513c360a0c948 — masks and maps as c5cf5f27d0b10803 — on these 16 scenes, drawn
at its 384² input: text-only mIoU 0.314, 0.595 after one correction click, the clicked pixel right in 16 of 16,
uncertainty/error correlation 0.54 at the text turn and 0.50 after the click — the previous version's σ(U): 0.51 and
0.37; ambiguity AUROC 0.951 on the 60 scenes of the last test, 0.948 on 150 test scenes at 256²; ff45beecc81b7e92,
the same with a component ranker: 0.451 text-only, 0.663 after the click, 16 of 16; 1d5d471c82b7810a, its ranker
retrained: 0.483 and 0.697, correlation after the click 0.40 against 0.27 for the text turn's map — ff45beecc81b7e92
0.45 against 0.35 with this VM's float32 encoder), so a replacement model that segments worse, stops using clicks,
loses its uncertainty heads or its ambiguity flag fails here.
"""

import numpy as np
import pytest

from rrsis_engine import metrics as M
from rrsis_engine import spatial_language as S
from rrsis_engine.data.synthetic import SyntheticReferringDataset
from rrsis_engine.predictor import find_weights, load_predictor

N_SCENES = 16
MIN_TEXT_MIOU = 0.25
#: one correction click removes at least this share of the text turn's error (1 − mean IoU): stop 46's engine 0.52
#: (0.70 → 0.86), stop 47's 0.43 (0.83 → 0.90: its better text turns leave less to gain, so an absolute gain bar of
#: 0.12 no longer fit)
MIN_CLICK_ERROR_SHARE = 0.3
#: the uncertainty map ranks the text turn's wrong pixels above the right ones (AUROC; stop 46's engine 0.96, stop
#: 47's 0.92). Not their correlation: it fell from 0.31 to 0.14 when stop 47's rules got scene 7 right (0.00 → 1.00),
#: where the map had been high and right, and a rare error class makes correlation a measure of false alarms
MIN_UNCERTAINTY_AUROC = 0.85
#: of the uncertainty map with the click turn's error map: 0.314 with stop 58's engine, 0.279 with stop 59's, the head
#: unchanged — scene 16 ("find the yellow field closest to the parking lot") reads its car park off the roads now, and
#: the model's own click-turn mask there went from IoU 0.44 to 0.80: a large error the map had flagged is gone (the
#: correlation, as for stop 47's scene 7 below, measures the scenes' errors as much as the map)
MIN_CLICK_TURN_CORRELATION = 0.25
#: by how much more the click turn's map correlates with the click turn's errors than the text turn's map does
MIN_FOLLOW_MARGIN = 0.05
#: the estimated IoU against the true IoU of the turns below (stop 52: 63 turns, error 0.174 and rank correlation 0.585;
#: the IoU head 0.285 and 0.195)
MAX_QUALITY_MAE, MIN_QUALITY_RANK_CORR = 0.22, 0.35


@pytest.fixture(scope="module")
def shipped():
    assert find_weights("rsam-lite") is not None, "the demo model must ship in rrsis_engine/weights/"
    return load_predictor("rsam-lite", device="cpu", disk_cache=False)


@pytest.fixture(scope="module")
def held_out(shipped):
    """(record, text-turn prediction) for the first synthetic test scenes with a definite target."""
    ds = SyntheticReferringDataset("test", size=N_SCENES * 2, image_size=shipped.image_size)
    out = []
    for i in range(len(ds)):
        rec = ds[i]
        if rec["ambiguous"]:
            continue
        shipped.set_image(rec["image"])
        out.append((rec, shipped.predict(text=rec["expression"])))
        if len(out) == N_SCENES:
            break
    return out


def test_the_shipped_model_segments_held_out_scenes(held_out):
    ious = [M.iou(p.mask, r["mask"]) for r, p in held_out]
    assert float(np.mean(ious)) > MIN_TEXT_MIOU, ious
    assert all(p.mask.shape == r["mask"].shape for r, p in held_out)


def test_the_uncertainty_map_is_high_where_the_model_is_wrong(held_out):
    unc = np.concatenate([p.uncertainty[::2, ::2].ravel() for _, p in held_out])
    err = np.concatenate([(p.mask != r["mask"])[::2, ::2].ravel() for r, p in held_out])
    auroc = M.auroc(unc.tolist(), err.tolist())
    assert auroc is not None and auroc > MIN_UNCERTAINTY_AUROC, auroc


@pytest.fixture(scope="module")
def clicked(shipped, held_out):
    """(record, text-turn prediction, click (x, y, label), click-turn prediction): one standard correction click
    (centre of the largest error region) on top of each text turn, with its logits as the prior."""
    out = []
    for rec, pred in held_out:
        click = M.next_click(pred.mask, rec["mask"])
        if click is None:
            continue
        x, y, label = click
        shipped.set_image(rec["image"])
        new = shipped.predict(text=rec["expression"], points=[[x, y]], labels=[label], mask_input=pred.low_res_logits)
        out.append((rec, pred, click, new))
    return out


def test_a_correction_click_improves_the_mask(clicked):
    """The click removes a good share of the text turn's error on the held-out scenes, and the mask changes at the
    click."""
    before = [M.iou(pred.mask, rec["mask"]) for rec, pred, _, _ in clicked]
    after = [M.iou(new.mask, rec["mask"]) for rec, _, _, new in clicked]
    changed_at_click = [bool(new.mask[int(y), int(x)]) == bool(label) for _, _, (x, y, label), new in clicked]
    gain, error = float(np.mean(after)) - float(np.mean(before)), 1.0 - float(np.mean(before))
    assert gain >= MIN_CLICK_ERROR_SHARE * error, (before, after)
    assert np.mean(changed_at_click) >= 0.75, changed_at_click  # the clicked pixel now has the clicked label


def test_the_uncertainty_map_follows_the_click(shipped, clicked):
    """After the click the map marks the click turn's errors (the turn-error head) better than the text turn's map
    does — a map of the image and text alone (σ(U), the stage-7 version's) cannot; 16 scenes are too few for a tight
    absolute bar (0.40–0.50 across versions and encoder precisions, 0.50 for both versions on 150 test scenes).

    The head reads the model's logits, so its map is scored against the errors of the model's own click-turn mask:
    the engine's snap and negative-click rules fix many of those (mean IoU 0.706 → 0.790 here), which the map cannot
    know (stop 40: 0.38 against 0.27 for the text turn's map on the model's masks, 0.29 against 0.20 on the shown
    ones, where a removed look-alike the map had marked no longer counts as an error). A boundary refiner (stop 58)
    is off too: it redraws the outline after the head has read the logits, and so is the completion of the roofs a
    sentence about all the buildings covers in part (stop 60: on with the click, 0.248 against 0.143 for the text turn's
    map; off, as before it applied to click turns, above 0.25)."""
    model_only = {"edge_refine": False, "remove_negated_regions": False, "grow_clicks": False,
                  "boundary_refine": False, "complete_roofs": False}
    saved = {k: getattr(shipped, k) for k in model_only}
    try:
        for k, v in model_only.items():
            setattr(shipped, k, v)
        own = []
        for rec, pred, (x, y, label), _ in clicked:
            shipped.set_image(rec["image"])
            own.append(shipped.predict(text=rec["expression"], points=[[x, y]], labels=[label],
                                       mask_input=pred.low_res_logits))
    finally:
        for k, v in saved.items():
            setattr(shipped, k, v)
    err = np.concatenate([(new.mask != rec["mask"])[::2, ::2].ravel()
                          for (rec, _, _, _), new in zip(clicked, own, strict=True)]).astype(np.float64)
    corr = {turn: float(np.corrcoef(np.concatenate([p.uncertainty[::2, ::2].ravel() for p in preds]), err)[0, 1])
            for turn, preds in (("click", own), ("text", [c[1] for c in clicked]))}
    assert corr["click"] > MIN_CLICK_TURN_CORRELATION, corr
    assert corr["click"] > corr["text"] + MIN_FOLLOW_MARGIN, corr
    assert all(not np.array_equal(new.uncertainty, pred.uncertainty) for _, pred, _, new in clicked)


def test_the_ambiguity_score_separates_ambiguous_expressions(shipped):
    """On the first 60 synthetic test scenes (ambiguous ones included) the calibrated ambiguity score ranks the
    expressions the data labels ambiguous above the others."""
    ds = SyntheticReferringDataset("test", size=60, image_size=shipped.image_size)
    labels, scores = [], []
    for i in range(len(ds)):
        rec = ds[i]
        shipped.set_image(rec["image"])
        labels.append(bool(rec["ambiguous"]))
        scores.append(shipped.predict(text=rec["expression"]).ambiguity)
    assert 5 <= sum(labels) <= 55
    assert M.auroc(scores, labels) > 0.8


def test_the_estimated_iou_tells_good_masks_from_bad_ones_better_than_the_iou_head(shipped):
    """The IoU the front ends show (Prediction.quality, fitted by `rrsis calibrate` on validation turns) against the
    true IoU of the text turn and two simulated clicks on 24 synthetic test scenes: lower error and a higher rank
    correlation than the decoder's IoU head, which scores the model's own mask, not the one shown."""
    from rrsis_engine.evaluate import run_evaluation

    assert shipped.quality_calibration is not None, "the shipped model carries a mask-quality calibration"
    ds = SyntheticReferringDataset("test", size=24, image_size=256)
    q = run_evaluation(shipped, ds, clicks=(0, 1, 2), noc=False).report["quality"]
    assert 48 <= q["n"] <= 72  # the turns made: a perfect mask takes no further click
    assert q["mae"] < MAX_QUALITY_MAE and q["mae"] < q["decoder_mae"] - 0.03, q
    assert q["rank_corr"] > MIN_QUALITY_RANK_CORR and q["rank_corr"] > q["decoder_rank_corr"] + 0.1, q


def test_a_follow_up_sentence_picks_the_object_it_names(shipped):
    """The first synthetic test scenes with a follow-up the engine reads: one that picks among the look-alikes an
    ambiguous sentence left ("the building" → "no, the one further left") or corrects a definite one ("the leftmost
    road" → "no, the road further right", "also the one next to it"). The session reads it against the sentence
    before. Without that sentence (the model alone, the first turn's logits as the prior) the follow-ups of the 300
    validation scenes scored 0.34, with it 0.82 (stop 62); these 19, 0.33 and 0.87."""
    from rrsis_engine.session import RefinementSession

    ds = SyntheticReferringDataset("test", size=60, image_size=shipped.image_size)
    with_context, without = [], []
    for i in range(len(ds)):
        rec = ds[i]
        first = S.parse_object(rec["expression"])
        if not rec.get("followup") or first is None or (S.parse_followup(rec["followup"], first.category) is None and
                                                        S.parse_correction(rec["followup"], first.category) is None):
            continue
        session = RefinementSession(shipped)
        session.set_image(rec["image"])
        first_turn = session.text(rec["expression"])
        target = np.asarray(rec["followup_mask"], bool)
        with_context.append(M.iou(session.text(rec["followup"]).mask, target))
        without.append(M.iou(shipped.predict(rec["followup"], mask_input=first_turn.low_res_logits).mask, target))
    assert len(with_context) >= 10
    assert np.mean(with_context) > 0.7 and np.mean(with_context) > np.mean(without) + 0.25, (with_context, without)


def test_a_follow_up_picks_among_the_numbered_candidates(shipped):
    """A bundled NAIP sample: "a lake" outlines two candidates (the engine finds the sentence's objects in the model's
    own map); "the one on the left" and "the bigger one" keep the left one, "the right one" the other. Before the
    follow-up read the candidates on screen it chose among the objects of that map and showed neither (stop 65)."""
    from rrsis_engine.cli.demo import samples_dir
    from rrsis_engine.session import RefinementSession

    session = RefinementSession(shipped)
    session.set_image(samples_dir() / "naip_2020_fields.tif")
    first = session.text("a lake")
    assert first.offers_choice and len(first.candidates) == 2
    left, right = sorted(first.candidates, key=lambda c: c.bbox[0])
    for words, meant in [("the one on the left", left), ("the bigger one", max(left, right, key=lambda c: c.area)),
                         ("the right one", right)]:
        shown = session.text(words).mask
        other = right if meant is left else left
        assert (shown & meant.mask).sum() >= 0.8 * meant.area and not (shown & other.mask).any(), words
        session.undo()


def test_a_correction_said_again_moves_on(shipped):
    """"The leftmost building" → "no, the building further right" → the same again: each correction is relative to the
    building shown, so the third turn shows the next building to the right, not the second one again (until stop 63
    both corrections were read against the first sentence's building). The expected chain follows the generators' rule
    (:data:`rrsis_engine.data.expressions.REDIRECT_MARGIN`) on the scene's true buildings: on these scenes the three
    turns measured IoU 0.96 / 0.69 / 0.87 against it on 7 scenes, the third turn's IoU with the second 0.14 (stop 63;
    before, the third turn repeated the second: IoU 0.14 with the third building)."""
    from rrsis_engine.data import expressions as E
    from rrsis_engine.data.synthetic import generate_sample
    from rrsis_engine.session import RefinementSession

    def next_right(objects, shown):
        ahead = [o for o in objects if o.centroid[0] - shown.centroid[0] > E.REDIRECT_MARGIN * 256]
        return min(ahead, key=lambda o: np.hypot(*np.subtract(o.centroid, shown.centroid)), default=None)

    third_right, third_as_second = [], []
    for seed in range(1000, 1010):
        scene = generate_sample(seed, 256)
        buildings = sorted((o for o in scene.objects if o.category == "building"), key=lambda o: o.centroid[0])
        chain = buildings[:1]
        while len(buildings) >= 3 and len(chain) < 3 and (after := next_right(buildings, chain[-1])) is not None:
            chain.append(after)
        if len(chain) < 3:
            continue
        session = RefinementSession(shipped)
        session.set_image(scene.image)
        session.text("the leftmost building")
        second = session.text("no, the building further right").mask
        third = session.text("no, the building further right").mask
        third_right.append(M.iou(third, chain[2].mask))
        third_as_second.append(M.iou(third, second))
    assert len(third_right) >= 5
    assert np.mean(third_right) > 0.6 and np.mean(third_as_second) < 0.3, (third_right, third_as_second)


def test_a_sentence_whose_words_leave_several_objects_shows_one_and_numbers_each(shipped):
    """"The building in the lower part" with two or more buildings there (the generators' rule; synthetic scenes
    1000–1059, one sentence each): the text turn shows one of them, not the model's mask elsewhere, and when it asks
    which, its numbered candidates are those objects, whole — typing a number gives one of them. Stop 65 measured, on
    the 59 such scenes: the mask shown one of the objects (IoU > 0.5) on 76 %, and of the candidates of the turns that
    ask, 83 % are objects; before (the candidates blobs of the model's coarse map, the mask shown the model's own), 59 %
    and 18 %."""
    from rrsis_engine.data.expressions import resolve
    from rrsis_engine.data.synthetic import generate_sample

    phrases = {"top": "at the top", "bottom": "in the lower part", "left": "on the left", "right": "on the right"}
    nouns = {"building": "building", "trees": "group of trees", "field": "field", "water": "body of water"}
    shown_is_one, numbered = [], []
    for seed in range(1000, 1060):
        scene = generate_sample(seed, 256)
        found = next(((cat, region, match) for cat in nouns for region in phrases
                      if (match := resolve({"category": cat, "region": region}, scene.objects, (256, 256))).ambiguous
                      and len(match.definite) >= 2), None)
        if found is None:
            continue
        cat, region, match = found
        shipped.set_image(scene.image)
        pred = shipped.predict(f"the {nouns[cat]} {phrases[region]}")
        objects = [o.mask for o in match.definite]
        shown_is_one.append(max(M.iou(pred.mask, o) for o in objects) > 0.5)
        if pred.offers_choice:  # each candidate one of the objects, each object a candidate
            numbered.append(np.mean([max(M.iou(c.mask, o) for o in objects) > 0.5 for c in pred.candidates]))
    assert len(shown_is_one) >= 30 and len(numbered) >= 15
    assert np.mean(shown_is_one) > 0.7 and np.mean(numbered) > 0.7, (np.mean(shown_is_one), np.mean(numbered))
