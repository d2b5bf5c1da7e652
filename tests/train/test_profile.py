"""rrsis train --profile N: torch.profiler over N steps, the operators by self time in profile.txt."""

import pytest
from rrsis_train.trainer import TrainOptions, train

from rrsis_engine.errors import RRSISError


def _opts(out, steps, profile):
    return TrainOptions(out=str(out), config="rsam-tiny", steps=steps, batch=1, image_size=64, expressions=1,
                        sources=["synth:1.0"], warmup=1, ckpt_every=0, log_every=1, threads=1, progress=False,
                        profile=profile)


def test_profile_writes_the_profiled_steps_operators(tmp_path):
    train(_opts(tmp_path / "run", 5, 2))
    text = (tmp_path / "run" / "profile.txt").read_text()
    assert text.startswith("torch.profiler over 2 training steps")
    assert "Self CPU" in text and "aten::" in text
    # the optimiser step and the backward pass of the profiled steps are in it, not only the forward
    assert "Optimizer.step" in text or "aten::_fused_adamw_" in text
    assert "autograd::engine::evaluate_function" in text


def test_a_run_shorter_than_the_profile_ends_normally(tmp_path):
    summary = train(_opts(tmp_path / "short", 2, 3))
    assert summary["step"] == 2
    assert (tmp_path / "short" / "model.safetensors").exists()


def test_a_negative_profile_is_refused_with_what_to_give(tmp_path):
    with pytest.raises(RRSISError, match="number of steps to profile"):
        train(_opts(tmp_path / "bad", 2, -1))
