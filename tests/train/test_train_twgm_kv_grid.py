"""rrsis train --twgm-kv-grid: a fresh model is built with it, --resume keeps it, and it overrides an --init
checkpoint's setting (no weights change)."""

import argparse


def _parse(argv):
    from rrsis_train.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["train", *argv])


def test_kv_grid_is_built_resumed_and_overrides_an_init_checkpoint(tmp_path):
    from rrsis_train.cli import run

    from rrsis_engine.model.checkpoint import read_checkpoint_config

    out, ft = tmp_path / "run", tmp_path / "ft"
    common = ["--image-size", "64", "--batch", "1", "--source", "easy:1", "--no-progress", "--calibrate-size", "0"]
    assert run(_parse(["--config", "rsam-tiny", *common, "--steps", "1", "--ckpt-every", "1", "--out", str(out),
                       "--twgm-kv-grid", "2"])) == 0
    assert read_checkpoint_config(out / "model.safetensors")[0].twgm_kv_grid == 2
    assert run(_parse(["--out", str(out), "--resume", "--steps", "2", "--no-progress", "--calibrate-size", "0"])) == 0
    assert read_checkpoint_config(out / "model.safetensors")[0].twgm_kv_grid == 2  # restored from the run
    assert run(_parse([*common, "--steps", "1", "--init", str(out / "model.safetensors"), "--twgm-kv-grid", "0",
                       "--out", str(ft)])) == 0
    assert read_checkpoint_config(ft / "model.safetensors")[0].twgm_kv_grid == 0  # full resolution again
