"""The fake predictor the fast tests use keeps the engine's interface."""

import inspect

import numpy as np
import pytest
from fake_predictor import FakePredictor, fake_prediction

from rrsis_engine.errors import NoImageError, PromptError
from rrsis_engine.predictor import Predictor


def test_the_fake_keeps_the_predictors_signatures():
    for name in ("set_image", "predict", "validate_text", "validate_point", "validate_box", "prediction_from_mask"):
        real = list(inspect.signature(getattr(Predictor, name)).parameters)
        fake = list(inspect.signature(getattr(FakePredictor, name)).parameters)
        assert fake == real, name


class _Square(FakePredictor):
    def answer(self, image, text, points, labels, box):
        mask = np.zeros((image.height, image.width), bool)
        mask[:4, :4] = bool(text)
        return fake_prediction(mask)


def test_the_fake_validates_and_answers_as_the_engine_does():
    fake = _Square()
    with pytest.raises(NoImageError):
        fake.predict("the roof")
    with pytest.raises(NoImageError):
        fake.validate_point(1, 1)
    image = fake.set_image(np.zeros((8, 10, 3), np.uint8))
    assert (image.height, image.width) == (8, 10) and fake.set_image_calls == 1
    assert fake.validate_text("  the   red\\u0000 roof ") == Predictor.validate_text("  the   red\\u0000 roof ")
    with pytest.raises(PromptError, match="outside the 10×8 image"):
        fake.validate_point(10, 3)
    with pytest.raises(PromptError, match="empty"):
        fake.validate_box((2, 2, 2, 5))
    prediction = fake.predict("the roof")
    assert prediction.mask.sum() == 16 and fake.predict_images == [image] and prediction.latency_ms >= 0
    assert fake.prediction_from_mask(np.ones((8, 10))).mask.all()
