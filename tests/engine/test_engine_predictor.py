import math

import numpy as np
import pytest
import torch

from rrsis_engine.errors import NoImageError, PromptError
from rrsis_engine.predictor import Predictor
from rrsis_engine.session import AcceptEvent, HistoryEvent, RefinementSession, TurnEvent


def test_prediction_is_in_the_image_frame(predictor, rgb_image):
    predictor.set_image(rgb_image)
    pred = predictor.predict("the red roof")
    assert pred.mask.shape == (120, 200) and pred.mask.dtype == bool
    assert pred.logits.shape == (120, 200)
    assert pred.uncertainty.shape == (120, 200) and 0 <= pred.uncertainty.min() <= pred.uncertainty.max() <= 1
    s = predictor.image_size // 4
    assert tuple(pred.low_res_logits.shape) == (1, 1, s, s)
    assert 0 <= pred.iou_score <= 1 and 0 <= pred.object_score <= 1
    assert pred.latency_ms > 0 and {"decode_ms", "text_fuse_ms"} <= set(pred.timings)
    for c in pred.candidates:
        assert c.mask.shape == (120, 200) and c.mask[int(c.point[1]), int(c.point[0])]


def test_click_turn_reuses_image_and_text_work(predictor, rgb_image, monkeypatch):
    predictor.set_image(rgb_image)
    first = predictor.predict("the red roof")
    calls = {"encode_image": 0, "fuse": 0, "text_embed": 0}
    for name in calls:
        original = getattr(predictor.model, name)

        def counted(*a, _n=name, _o=original, **k):
            calls[_n] += 1
            return _o(*a, **k)

        monkeypatch.setattr(predictor.model, name, counted)
    second = predictor.predict("the red roof", points=[[60, 50]], labels=[1], mask_input=first.low_res_logits)
    assert calls == {"encode_image": 0, "fuse": 0, "text_embed": 0}
    assert not np.array_equal(first.logits, second.logits)  # the click and the prior change the result
    predictor.predict("the car with a roof box")  # a sentence the spatial words leave to the model: one fusion
    assert calls == {"encode_image": 0, "fuse": 1, "text_embed": 1}


def test_embedding_disk_cache_survives_a_new_predictor(tiny_model, rgb_image, tmp_path):
    a = Predictor(tiny_model, cache_dir=tmp_path)
    a.set_image(rgb_image)
    assert a.stats["embed_computed"] == 1 and len(list(tmp_path.glob("*.safetensors"))) == 1
    b = Predictor(tiny_model, cache_dir=tmp_path)
    b.set_image(rgb_image)
    assert b.stats == {"embed_computed": 0, "embed_disk_hits": 1, "embed_memory_hits": 0}
    assert np.array_equal(a.predict("x").logits, b.predict("x").logits)
    # a corrupt cache file is recomputed, not fatal
    next(tmp_path.glob("*.safetensors")).write_bytes(b"garbage")
    c = Predictor(tiny_model, cache_dir=tmp_path)
    c.set_image(rgb_image)
    assert c.stats["embed_computed"] == 1


def test_disk_cache_is_bounded(tiny_model, tmp_path):
    p = Predictor(tiny_model, cache_dir=tmp_path, disk_cache_bytes=1)
    for seed in range(3):
        p.set_image((np.random.default_rng(seed).random((32, 32, 3)) * 255).astype(np.uint8))
    assert len(list(tmp_path.glob("*.safetensors"))) <= 1


def test_two_images_share_one_predictor(predictor, rgb_image):
    other = np.ascontiguousarray(rgb_image[::-1])
    a = predictor.set_image(rgb_image)
    b = predictor.set_image(other)
    pa = predictor.predict("the red roof", image=a)
    pb = predictor.predict("the red roof", image=b)
    assert not np.array_equal(pa.logits, pb.logits)
    assert np.array_equal(pa.logits, predictor.predict("the red roof", image=a).logits)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"text": ""}, "Nothing to segment"),
        ({"text": "x" * 100_000}, "100000 characters"),
        ({"text": b"\xff\xfe bad"}, "UTF-8"),
        ({"text": "a", "points": [[math.nan, 3]], "labels": [1]}, "finite"),
        ({"text": "a", "points": [[500, 3]], "labels": [1]}, "outside the 200×120 image"),
        ({"text": "a", "points": [[5, 3]], "labels": [7]}, "1 \\(positive\\) or 0"),
        ({"text": "a", "points": [[5, 3], [6, 6]], "labels": [1]}, "2 clicks but 1 labels"),
        ({"text": "a", "box": [300, 300, 400, 400]}, "does not overlap"),
        ({"text": "a", "box": [1, 2, 3]}, "four numbers"),
    ],
)
def test_bad_prompts_get_clear_errors(predictor, rgb_image, kwargs, message):
    predictor.set_image(rgb_image)
    with pytest.raises(PromptError, match=message):
        predictor.predict(**kwargs)


def test_prompt_before_image(predictor):
    with pytest.raises(NoImageError, match="open an image"):
        predictor.predict("the red roof")
    with pytest.raises(NoImageError):
        RefinementSession(predictor).click(3, 4)


def test_text_is_normalised(predictor):
    assert predictor.validate_text("  the \t red\nroof\x00 ") == "the red roof"


def test_session_turns_undo_redo_and_accept(predictor, rgb_image):
    events = []
    s = RefinementSession(predictor, rgb_image, listeners=[events.append])
    t1 = s.text("the red roof")
    t2 = s.click(60, 50, positive=False)
    assert s.turns[1].used_prior and s.state.labels == (0,) and s.state.text == "the red roof"
    assert s.undo() is t1 and s.current is t1 and s.can_redo
    assert s.redo() is t2
    s.undo()
    s.box(30, 20, 120, 90)  # a new turn drops the redo branch
    assert not s.can_redo and s.state.box == (30.0, 20.0, 120.0, 90.0) and s.state.points == ()
    assert np.array_equal(s.undo().mask, t1.mask)
    s.redo()
    follow = s.text("no, the smaller one")
    assert s.state.box is not None and s.turns[-1].used_prior  # follow-up keeps prompts and the prior
    accepted = s.accept()
    assert np.array_equal(accepted.mask, follow.mask) and accepted.mask is not follow.mask
    assert accepted.expressions == ["the red roof", "no, the smaller one"]
    assert [t.kind for t in accepted.turns] == ["text", "box", "text"]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TurnEvent", "TurnEvent", "HistoryEvent", "HistoryEvent", "HistoryEvent", "TurnEvent",
                     "HistoryEvent", "HistoryEvent", "TurnEvent", "AcceptEvent"]
    assert isinstance(events[2], HistoryEvent) and events[2].action == "undo" and events[2].turn.prediction is t2
    assert isinstance(events[-1], AcceptEvent) and isinstance(events[0], TurnEvent)
    assert s.current is None and not s.turns  # ready for the next object


def test_a_follow_up_is_read_against_the_objects_latest_sentence_that_is_not_a_follow_up(predictor, rgb_image,
                                                                                        monkeypatch):
    """The predictor gets, with each text turn, the sentence its follow-up picks among (``previous_text``): the one
    before, or before a chain of follow-ups the sentence they all refine; nothing for a first sentence or after clear."""
    seen = []
    predict = predictor.predict
    monkeypatch.setattr(predictor, "predict", lambda *a, **k: seen.append(k.get("previous_text")) or predict(*a, **k))
    s = RefinementSession(predictor, rgb_image)
    s.text("the red roof")
    s.text("the one on the left")
    s.click(60, 50)
    s.text("no, the one further right")
    s.text("the pool")
    s.text("the larger of the two")
    s.text("no, the pool further right")
    s.text("also the one next to it")
    s.clear()
    s.text("the one on the left")
    assert seen == ["", "the red roof", "", "the red roof", "the red roof", "the pool", "the pool", "the pool", ""]


def test_undo_restores_the_exact_previous_prediction(predictor, rgb_image):
    s = RefinementSession(predictor, rgb_image)
    first = s.text("the red roof")
    snapshot = (first.mask.copy(), first.logits.copy(), first.low_res_logits.clone())
    s.click(10, 10)
    s.click(100, 100, positive=False)
    s.undo()
    back = s.undo()
    assert back is first
    assert np.array_equal(back.mask, snapshot[0]) and np.array_equal(back.logits, snapshot[1])
    assert torch.equal(back.low_res_logits, snapshot[2])
    # and the next turn is predicted from that prior again
    again = s.click(10, 10)
    assert s.turns[-1].used_prior and again.mask.shape == first.mask.shape


def test_clear_and_edit_mask(predictor, rgb_image):
    s = RefinementSession(predictor, rgb_image)
    s.text("the red roof")
    s.clear()
    assert s.current is None and s.state.text == ""
    s.undo()
    assert s.current is not None
    edited = np.zeros((120, 200), bool)
    edited[30:70, 40:90] = True
    pred = s.edit_mask(edited)
    assert np.array_equal(pred.mask, edited)
    with pytest.raises(PromptError, match="edited mask"):
        s.edit_mask(np.zeros((5, 5), bool))
    with pytest.raises(PromptError, match="Nothing to accept"):
        RefinementSession(predictor, rgb_image).accept()
