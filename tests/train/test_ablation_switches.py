"""--no-twgm / --no-mmmd: the ablation variants build the right architecture, survive --resume, and refuse
to change an --init checkpoint."""

import argparse

import pytest


def _parse(argv):
    from rrsis_train.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["train", *argv])


def test_switches_build_the_ablation_and_survive_resume(tmp_path):
    from rrsis_train.cli import run

    from rrsis_engine.model.checkpoint import read_checkpoint_config

    out = tmp_path / "run"
    # no calibration after training (300 scenes, text and three clicks each: 150 of this test's 154 s, and not what
    # it checks)
    common = ["--config", "rsam-tiny", "--image-size", "64", "--batch", "1", "--source", "easy:1", "--no-progress",
              "--calibrate-size", "0"]
    assert run(_parse([*common, "--steps", "1", "--ckpt-every", "1", "--out", str(out), "--no-twgm", "--no-mmmd"])) == 0
    cfg, _ = read_checkpoint_config(out / "model.safetensors")
    assert (cfg.use_twgm, cfg.use_mmmd) == (False, False)
    # the ablation flags not repeated
    assert run(_parse(["--out", str(out), "--resume", "--steps", "2", "--no-progress", "--calibrate-size", "0"])) == 0
    cfg, _ = read_checkpoint_config(out / "model.safetensors")
    assert (cfg.use_twgm, cfg.use_mmmd) == (False, False)


def test_switches_refuse_an_init_checkpoint(tmp_path):
    from rrsis_train.trainer import Trainer, TrainOptions

    from rrsis_engine.errors import RRSISError

    with pytest.raises(RRSISError, match="ablation"):
        Trainer(TrainOptions(out=str(tmp_path / "x"), init=str(tmp_path / "any.safetensors"), twgm=False))
