"""Bad input gets a clear StoreError and nothing is stored half-way; the logger keeps working after."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import text

from rrsis_engine.errors import StoreError
from rrsis_engine.session import AcceptEvent, PromptState, Turn, TurnEvent
from rrsis_engine.store import open_store

from .conftest import blob, make_prediction


def counts(store) -> tuple[int, int, int]:
    with store.engine.connect() as c:
        return tuple(c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                     for t in ("turns", "annotations", "annotation_turns"))


def turn(i, state, mask=None, kind="text"):
    return Turn(i, kind, state, make_prediction(blob(64, 80, 20, 20, 5) if mask is None else mask), i > 0)


@pytest.fixture
def logged(db_url, image):
    store = open_store(db_url)
    lg = store.start_session(image, client="cli")
    lg(TurnEvent(lg.id, turn(0, PromptState("a good one"))))
    yield store, lg
    lg.close()
    store.close()


BAD_TURNS = {
    "non-utf8 bytes": (PromptState(b"caf\xe9 roof"), "not valid UTF-8"),
    "lone surrogate": (PromptState("roof \udcff"), "not valid Unicode"),
    "100000 chars": (PromptState("x" * 100_000), "100000 characters"),
    "NUL": (PromptState("a\x00b"), "NUL"),
    "NaN point": (PromptState("a", ((math.nan, 3.0),), (1,)), "not a finite number"),
    "inf point": (PromptState("a", ((3.0, math.inf),), (1,)), "not a finite number"),
    "point outside": (PromptState("a", ((81.0, 3.0),), (1,)), "outside the 80×64 image"),
    "negative point": (PromptState("a", ((-1.0, 3.0),), (1,)), "outside"),
    "bad label": (PromptState("a", ((1.0, 3.0),), (2,)), "positive"),
    "label count": (PromptState("a", ((1.0, 3.0),), ()), "labels"),
    "box outside": (PromptState("a", box=(0.0, 0.0, 90.0, 10.0)), "not inside"),
    "box reversed": (PromptState("a", box=(10.0, 0.0, 5.0, 10.0)), "x0 ≤ x1"),
    "NaN box": (PromptState("a", box=(0.0, math.nan, 5.0, 10.0)), "not a finite number"),
}


@pytest.mark.parametrize("case", list(BAD_TURNS))
def test_bad_turn_is_refused_and_nothing_stored(logged, case):
    store, lg = logged
    state, msg = BAD_TURNS[case]
    before = counts(store)
    with pytest.raises(StoreError, match=msg):
        lg(TurnEvent(lg.id, turn(1, state, kind="click")))
    assert counts(store) == before and lg.status.pending == 0
    lg(TurnEvent(lg.id, turn(1, PromptState("fine"))))  # the logger still works, and numbering is intact
    assert counts(store)[0] == before[0] + 1


@pytest.mark.parametrize("shape", [(63, 80), (80, 64), (64, 80, 3)])
def test_wrong_size_masks(logged, shape):
    store, lg = logged
    before = counts(store)
    with pytest.raises(StoreError, match="session image is 64×80"):
        lg(TurnEvent(lg.id, turn(1, PromptState("a"), mask=np.zeros(shape, bool))))
    good = lg  # an accept with a wrong-size mask stores neither the annotation nor its trace
    t0 = turn(0, PromptState("a good one"))
    with pytest.raises(StoreError, match="accepted mask"):
        good(AcceptEvent(lg.id, np.zeros(shape, bool), ["a good one"], [t0]))
    assert counts(store) == before
    good(AcceptEvent(lg.id, blob(64, 80, 20, 20, 5), ["a good one"], [t0]))
    assert counts(store) == (before[0], 1, 1)


def test_bad_accept_expression_stores_nothing(logged):
    store, lg = logged
    t0 = turn(0, PromptState("a good one"))
    with pytest.raises(StoreError, match="100000 characters"):
        lg(AcceptEvent(lg.id, blob(64, 80, 20, 20, 5), ["y" * 100_000], [t0]))
    with pytest.raises(StoreError, match="never logged"):
        lg(AcceptEvent(lg.id, blob(64, 80, 20, 20, 5), ["ok"], [t0, turn(5, PromptState("x"))]))
    assert counts(store)[1:] == (0, 0)


def test_nan_scores_are_stored_as_null_not_refused(logged):
    store, lg = logged
    t = turn(1, PromptState("b"))
    t.prediction.iou_score = float("nan")
    lg(TurnEvent(lg.id, t))
    with store.engine.connect() as c:
        assert c.execute(text("SELECT iou_score FROM turns WHERE seq = 1")).scalar_one() is None


def test_bad_session_arguments(db_url, image):
    store = open_store(db_url)
    with pytest.raises(StoreError, match="Unknown client"):
        store.start_session(image, client="emacs")
    with pytest.raises(StoreError, match="annotator"):
        store.start_session(image, client="web", annotator=b"\xff\xfe")
    with pytest.raises(StoreError, match="RasterImage"):
        store.start_session(np.zeros((4, 4)), client="web")
    with pytest.raises(StoreError, match="Unknown status"):
        store.list_annotations(status="maybe")
    with store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 0
    store.close()
