"""--resume continues bit-exactly: N+M steps in one go == N steps, resume, M steps."""

import csv

import torch
from rrsis_train.trainer import TrainOptions, train
from safetensors.torch import load_file


def _opts(out, steps):
    return TrainOptions(out=str(out), config="rsam-tiny", steps=steps, batch=2, image_size=128,
                        sources=["easy:1.0"], click_share=0.5, click_rounds=2, warmup=2, ckpt_every=0,
                        log_every=1, threads=1, progress=False, lr=1e-3)


def _losses(out):
    with open(out / "log.csv") as f:
        return [(int(r["step"]), r["loss"]) for r in csv.DictReader(f)]


def test_resume_is_bit_exact(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_opts(straight, 4))
    train(_opts(split, 2))
    summary = train(_opts(split, 4), resume=True)
    assert summary["step"] == 4
    a = load_file(str(straight / "model.safetensors"))
    b = load_file(str(split / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _losses(straight) == _losses(split)
    # and training actually changed the weights
    first = load_file(str(sorted((split / "checkpoints").iterdir())[0] / "model.safetensors"))
    assert any(not torch.equal(first[k], b[k]) for k in b)


def test_resume_refuses_changed_settings(tmp_path):
    import pytest

    from rrsis_engine.errors import CheckpointError

    train(_opts(tmp_path / "r", 1))
    opts = _opts(tmp_path / "r", 2)
    opts.batch = 3
    with pytest.raises(CheckpointError, match="batch"):
        train(opts, resume=True)


def test_cli_resume_alone_continues_with_the_runs_settings(tmp_path):
    from rrsis_engine.cli import main

    out = tmp_path / "cli"
    args = ["train", "--config", "rsam-tiny", "--image-size", "64", "--batch", "3", "--source", "easy:1",
            "--steps", "2", "--threads", "1", "--no-progress", "--ckpt-every", "0", "--calibrate-size", "0",
            "--out", str(out)]
    assert main(args) == 0
    # only --out, --resume and a new step count: config, input size, batch and sources come from the run
    assert main(["train", "--out", str(out), "--resume", "--steps", "3", "--threads", "1", "--no-progress",
                 "--calibrate-size", "0"]) == 0
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["samples"] for r in rows][-1] == "9"


def _ema_opts(out, steps):
    opts = _opts(out, steps)
    opts.ema = 0.99
    return opts


def test_ema_resume_is_bit_exact_and_keeps_both_weights(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_ema_opts(straight, 4))
    train(_ema_opts(split, 2))
    train(_ema_opts(split, 4), resume=True)
    for name in ("model.safetensors", "model-live.safetensors"):
        a, b = load_file(str(straight / name)), load_file(str(split / name))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
    average, live = load_file(str(straight / "model.safetensors")), load_file(str(straight / "model-live.safetensors"))
    assert any(not torch.equal(average[k], live[k]) for k in live)


def test_ema_is_the_warmed_up_average_of_the_optimizer_steps(tmp_path):
    """OUT/model.safetensors = e_3 with e_1 = w_1, e_t = d_t·e_{t−1} + (1 − d_t)·w_t, d_t = min(0.99, 1 − t^(−2/3))
    (timm's warm-up), w_t the optimizer's weights after step t (the per-step checkpoints)."""
    opts = _ema_opts(tmp_path / "r", 3)
    opts.ckpt_every, opts.keep_checkpoints = 1, 3
    train(opts)
    steps = [load_file(str(tmp_path / "r" / "checkpoints" / f"step-{t:07d}" / "model.safetensors")) for t in (1, 2, 3)]
    expected = {k: v.clone() for k, v in steps[0].items()}
    for t, w in ((2, steps[1]), (3, steps[2])):
        decay = min(0.99, 1 - t ** (-2 / 3))
        for k in expected:
            if expected[k].is_floating_point():
                expected[k] = decay * expected[k] + (1 - decay) * w[k]
    got = load_file(str(tmp_path / "r" / "model.safetensors"))
    assert got.keys() == expected.keys()
    changed = 0
    for k in got:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-6, msg=k)
        changed += not torch.equal(steps[2][k], steps[0][k])
    assert changed  # the steps moved the weights, so the average is not trivially w_1


def test_ema_decay_outside_zero_one_is_refused(tmp_path):
    import pytest

    from rrsis_engine.errors import RRSISError

    opts = _opts(tmp_path / "r", 1)
    opts.ema = 1.5
    with pytest.raises(RRSISError, match="--ema"):
        train(opts)
