"""Picking an outlined candidate by its number ("2", "number 2"): the front ends number the candidate regions of an
ambiguous turn 1, 2, … and a labeller types the number; the session keeps that region alone as a ``pick`` turn, which
undo takes back and the store logs with the sentence it disambiguates."""

from __future__ import annotations

import fake_predictor
import numpy as np
import pytest

from rrsis_engine.errors import PromptError
from rrsis_engine.imageio import RasterImage
from rrsis_engine.prediction import Candidate
from rrsis_engine.session import RefinementSession
from rrsis_engine.spatial_language import (
    is_follow_up,
    parse_candidate_number,
    parse_followup,
    picked_candidate,
)
from rrsis_engine.store import open_store

H, W = 60, 90
CENTRES = ((15, 30), (45, 30), (75, 30))  # three look-alike discs, (x, y)


class ThreeDiscs(fake_predictor.FakePredictor):
    """"the pond" is ambiguous: three discs, the likeliest (the middle one) shown; other sentences show the first."""

    def answer(self, image, text, points, labels, box):
        discs = [fake_predictor.disk(H, W, x, y, 8) for x, y in CENTRES]
        candidates = [Candidate(d, s, (x - 8, y - 8, x + 9, y + 9), (float(x), float(y)))
                      for d, s, (x, y) in zip(discs, (0.7, 0.6, 0.5), CENTRES, strict=True)]
        if text == "the pond" and points is None:
            return fake_predictor.fake_prediction(discs[1], ambiguous=True, ambiguity=0.8, candidates=candidates)
        mask = discs[0].copy()
        for (x, y), lab in zip(points if points is not None else [], labels if labels is not None else [], strict=True):
            mask |= fake_predictor.disk(H, W, x, y, 4) if lab == 1 else False
        return fake_predictor.fake_prediction(mask)


@pytest.fixture
def session():
    image = RasterImage(np.zeros((H, W, 3), np.uint8))
    predictor = ThreeDiscs()
    predictor.set_image(image)
    return RefinementSession(predictor, image)


@pytest.mark.parametrize("text, number", [
    ("2", 2), ("#3", 3), ("number 2", 2), ("Number two", 2), ("candidate 3.", 3), ("it's 1", 1), ("It’s 4!", 4),
    ("pick no. 4 please", 4), ("one", 1), ("region 12", 12), ("show me 5", 5), ("the 2", 2),
    ("the one", None), ("the one on the left", None), ("2 buildings", None), ("all 3 houses", None),
    ("the second one", None), ("the largest building", None), ("the three", None)])
def test_a_candidate_number_and_nothing_else(text, number):
    assert parse_candidate_number(text) == number
    assert not is_follow_up(text) or number is None


def test_a_number_keeps_that_candidate_alone_and_undo_brings_the_choice_back(session):
    first = session.text("the pond")
    assert first.offers_choice and np.array_equal(first.mask, first.candidates[1].mask)
    picked = session.text("3")
    assert np.array_equal(picked.mask, first.candidates[2].mask) and not picked.offers_choice
    turn = session.turns[-1]
    assert turn.kind == "pick" and turn.detail == {"candidate": 3} and session.state.text == "the pond"
    assert session.undo() is first
    assert np.array_equal(session.text("number one").mask, first.candidates[0].mask)
    # the pick is the prior of the next turn, and the sentence stays the one it disambiguates
    session.click(20, 40)
    assert session.turns[-1].used_prior and session.state.text == "the pond"


def test_a_number_with_nothing_to_pick_is_refused_without_a_turn(session):
    with pytest.raises(PromptError, match="none is outlined now"):
        session.text("2")  # the first turn: no candidates yet
    session.text("the pond")
    with pytest.raises(PromptError, match="there are 3 candidates, numbered 1 to 3"):
        session.text("4")
    session.text("2")
    with pytest.raises(PromptError, match="none is outlined now.*undo shows the candidates again"):
        session.text("1")  # after a pick the candidates are no longer outlined
    assert [t.kind for t in session.turns] == ["text", "pick"]


def test_a_pick_is_logged_with_the_sentence_it_disambiguates(session, tmp_path):
    store = open_store(tmp_path / "sessions.db")
    logger = store.start_session(session.image, client="cli", model_version="fake-1")
    session.subscribe(logger)
    first = session.text("the pond")
    session.text("1")
    session.accept()
    assert logger.status.pending == 0 and logger.status.state == "ok"
    rec = store.list_annotations(status="accepted")[0]
    assert rec.expressions == ["the pond"] and np.array_equal(rec.mask, first.candidates[0].mask)
    assert [(t.kind, t.text) for t in rec.turns] == [("text", "the pond"), ("pick", "the pond")]
    logger.close()
    store.close()


def test_a_follow_up_sentence_is_given_the_candidates_outlined_before_it(session):
    first = session.text("the pond")
    session.text("the one on the left")
    seen = session.predictor.previous_candidates_seen
    assert seen[0] == []  # the first turn: nothing outlined before it
    assert len(seen[1]) == 3 and all(np.array_equal(a, c.mask) for a, c in zip(seen[1], first.candidates, strict=True))
    session.click(20, 40)  # a click is no follow-up sentence; after a turn that offers no choice there is none either
    session.text("the pond, the one in the middle")
    assert seen[2] == [] and seen[3] == []


@pytest.mark.parametrize("words, centre", [("the one on the left", 0), ("the right one", 2), ("no, the bigger one", 1),
                                           ("the smallest one", 0)])
def test_a_follow_up_picks_among_the_candidates_by_its_words(words, centre):
    radii = (5, 9, 7)
    candidates = [fake_predictor.disk(H, W, x, y, r) for (x, y), r in zip(CENTRES, radii, strict=True)]
    pick = parse_followup(words, "water")
    picked = picked_candidate(pick, candidates, np.zeros((H, W, 3), np.uint8))
    assert np.array_equal(picked, candidates[centre])
