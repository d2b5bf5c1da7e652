"""A model-free predictor for fast tests of the session, the store, the training sources, the evaluation loop and the
front ends (the slow tests use the real Predictor).

:class:`FakePredictor` has the engine Predictor's interface (``set_image`` / ``validate_*`` / ``predict`` /
``prediction_from_mask`` / ``model_name`` / ``model_version``) and validates prompts with the engine's own rules, so
front-end tests see the real error messages. What a turn returns is each test package's rule, checkable exactly: a
subclass implements :meth:`FakePredictor.answer`. One class, so that a change of ``predict``'s signature is made once.
"""

from __future__ import annotations

import time

import numpy as np

from rrsis_engine.imageio import RasterImage, read_image
from rrsis_engine.prediction import Prediction
from rrsis_engine.predictor import Predictor


def fake_prediction(mask: np.ndarray, logit: float = 5.0, low_res: bool = True, **fields) -> Prediction:
    """A Prediction of ``mask`` (H×W bool): logits ±``logit``; the mask itself as ``low_res_logits`` (what the session
    hands back as the next turn's prior), or None with ``low_res=False``; ``fields``: any other Prediction field."""
    mask = np.asarray(mask, bool)
    fields = {"iou_score": 0.9, "object_score": 0.9, "latency_ms": 0.0, **fields}
    return Prediction(mask=mask, logits=np.where(mask, logit, -logit).astype(np.float32),
                      low_res_logits=mask.copy() if low_res else None, **fields)


class FakePredictor:
    """The engine Predictor's interface without a model. ``predict`` validates nothing (as the engine's does not:
    front ends call ``validate_*`` first), resolves the image, records it in ``predict_images`` and returns
    :meth:`answer`'s prediction with its latency."""

    model_name = "fake"
    model_version = "fake-1"

    # the engine's validation, borrowed: they need only ``_image_or_raise``
    validate_text = staticmethod(Predictor.validate_text)
    validate_point = Predictor.validate_point
    validate_box = Predictor.validate_box
    _image_or_raise = Predictor._image_or_raise

    def __init__(self):
        self.image: RasterImage | None = None
        self.set_image_calls = 0
        self.predict_images: list[RasterImage] = []
        self.previous_candidates_seen: list[list[np.ndarray]] = []

    def set_image(self, image, bands=None) -> RasterImage:
        self.image = read_image(image, bands=bands)
        self.set_image_calls += 1
        return self.image

    def predict(self, text="", points=None, labels=None, box=None, mask_input=None, image=None, previous_mask=None,
                previous_text="", previous_candidates=()) -> Prediction:
        """The engine's signature; points N×2 (x, y) = (col, row) pixels, labels N (1 positive, 0 negative), box
        (x0, y0, x1, y1). The candidates passed with each turn are kept in ``previous_candidates_seen``."""
        t0 = time.perf_counter()
        image = self._image_or_raise(image)
        self.predict_images.append(image)
        self.previous_candidates_seen.append(list(previous_candidates))
        prediction = self.answer(image, text, points, labels, box)
        prediction.latency_ms = (time.perf_counter() - t0) * 1000
        return prediction

    def answer(self, image: RasterImage, text: str, points, labels, box) -> Prediction:
        """What the turn returns; each test package's rule."""
        raise NotImplementedError

    def prediction_from_mask(self, mask, image=None) -> Prediction:
        return fake_prediction(mask, iou_score=1.0, object_score=1.0)


def disk(h: int, w: int, x: float, y: float, r: float) -> np.ndarray:
    """H×W bool disc of radius ``r`` centred at (x, y) = (col, row)."""
    rows, cols = np.ogrid[:h, :w]
    return (cols - x) ** 2 + (rows - y) ** 2 <= r * r
