"""The ambiguity flag on a controlled case: rsam-tiny trained on the easy task (fixture ``easy_task_model``)
where some scenes hold two identical red squares ("the red square" then matches both). On unseen scenes the
flag must fire for the twin scenes and stay off for scenes with one red square — the model's own masks and
candidates, the engine's uncalibrated flag (candidate entropy ≥ 0.5), no hand-made predictions."""

import numpy as np
import pytest


@pytest.mark.slow
def test_flag_fires_on_two_identical_objects_and_not_on_one(easy_task_model):
    from rrsis_train.easy import easy_sample

    from rrsis_engine.predictor import Predictor

    size = 128
    predictor = Predictor(easy_task_model, device="cpu", disk_cache=False)

    def flags(twins: bool) -> tuple[list[bool], list[int]]:
        fired, n_candidates = [], []
        for n in range(10**6, 10**6 + 12):  # item numbers never used in training
            rec = easy_sample(n, size=size, twins=twins)
            if twins and not rec["ambiguous"]:
                continue  # no room for the second square in this scene
            predictor.set_image(rec["image"])
            pred = predictor.predict("the red square")
            fired.append(bool(pred.ambiguous))
            n_candidates.append(len(pred.candidates))
        return fired, n_candidates

    twin_flags, twin_counts = flags(True)
    single_flags, single_counts = flags(False)
    assert len(twin_flags) >= 8
    # the flag fires on (nearly) every twin scene and (nearly) never on a single square
    assert np.mean(twin_flags) >= 0.75, (twin_flags, twin_counts)
    assert np.mean(single_flags) <= 0.25, (single_flags, single_counts)
