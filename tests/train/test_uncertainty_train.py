"""Training with the CroBIM-U modules: --rus/--ugf/--udlr, the RUS loss in TrainStep (warm-up ramp, CSV
column), --init from a checkpoint without the modules."""

import argparse
import csv
import json

import pytest
import torch
from rrsis_train.trainer import CSV_FIELDS, REDUCED_KEYS, Trainer, TrainOptions
from safetensors.torch import load_file


def _opts(out, **kw):
    base = dict(out=str(out), config="rsam-tiny", image_size=64, steps=2, batch=2, sources=["easy:1.0"],
                click_share=0.5, click_rounds=1, dialogue_share=0.5, warmup=1, ckpt_every=0, log_every=1,
                threads=1, progress=False)
    base.update(kw)
    return TrainOptions(**base)


def test_cli_flags_set_the_options():
    from rrsis_train.cli import options_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    opts = options_from_args(parser.parse_args(["train", "--out", "x", "--ugf", "--udlr"]))
    assert (opts.rus, opts.ugf, opts.udlr) == (False, True, True)
    opts = options_from_args(parser.parse_args(["train", "--out", "x"]))
    assert (opts.rus, opts.ugf, opts.udlr) == (False, False, False)


def test_training_from_scratch_with_all_modules_logs_the_rus_loss(tmp_path):
    assert "rus" in CSV_FIELDS and "rus" in REDUCED_KEYS
    out = tmp_path / "run"
    tr = Trainer(_opts(out, ugf=True, udlr=True))  # --ugf/--udlr imply --rus
    cfg = tr.model.config
    assert cfg.use_rus and cfg.use_ugf and cfg.use_udlr
    tr.fit()
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2"] and all(float(r["rus"]) > 0 for r in rows)
    saved = json.loads((out / "model.json").read_text())["config"]
    assert saved["use_rus"] and saved["use_ugf"] and saved["use_udlr"]
    assert any(k.startswith("udlr.") for k in load_file(str(out / "model.safetensors")))


def test_rus_loss_is_added_with_the_warm_up_ramp(tmp_path):
    tr = Trainer(_opts(tmp_path / "run", rus=True, click_share=0.0, dialogue_share=0.0))
    warm = tr.model.config.rus_warmup_steps
    samples = tr.micro_batch(0, 0)
    text, fol = tr._texts(samples)
    step = tr.step_module
    losses = {}
    for s in (0, warm // 2, warm, 10 * warm):
        step.step = s
        torch.manual_seed(0)
        loss, stats = step(samples, text, fol, 0)
        losses[s] = (float(loss), stats["rus"])
    rus = losses[0][1]
    assert rus > 0 and all(v[1] == pytest.approx(rus) for v in losses.values())
    w = tr.model.config.rus_loss_weight
    assert losses[warm // 2][0] - losses[0][0] == pytest.approx(0.5 * w * rus, rel=1e-4)
    assert losses[warm][0] - losses[0][0] == pytest.approx(w * rus, rel=1e-4)
    assert losses[10 * warm][0] == pytest.approx(losses[warm][0], rel=1e-6)
    # without RUS there is no such column value
    plain = Trainer(_opts(tmp_path / "plain", click_share=0.0, dialogue_share=0.0))
    _, stats = plain.step_module(plain.micro_batch(0, 0), *plain._texts(plain.micro_batch(0, 0)), 0)
    assert stats["rus"] is None


def test_init_from_a_checkpoint_without_the_modules_adds_them(tmp_path):
    old = tmp_path / "old"
    Trainer(_opts(old, steps=1)).fit()
    before = load_file(str(old / "model.safetensors"))
    tr = Trainer(_opts(tmp_path / "ft", init=str(old / "model.safetensors"), udlr=True, image_size=None))
    cfg = tr.model.config
    assert cfg.use_rus and cfg.use_udlr and not cfg.use_ugf
    state = tr.model.state_dict()
    for k, v in before.items():
        assert torch.equal(state[k], v), k
    assert {k.split(".")[0] for k in set(state) - set(before)} == {"rus", "udlr"}
    summary = tr.fit()
    assert summary["step"] == 2
    # a checkpoint of another architecture is still refused, naming keys
    from rrsis_engine.errors import CheckpointError

    cfg_json = json.loads((old / "model.json").read_text())
    cfg_json["config"]["twgm_layers"] = 1
    (old / "model.json").write_text(json.dumps(cfg_json))
    with pytest.raises(CheckpointError, match="unexpected keys: twgm.layers.1"):
        Trainer(_opts(tmp_path / "bad", init=str(old / "model.safetensors"), rus=True, image_size=None))


def test_init_at_another_image_size_fine_tunes_there(tmp_path):
    old = tmp_path / "old"
    Trainer(_opts(old, steps=1)).fit()
    tr = Trainer(_opts(tmp_path / "big", init=str(old / "model.safetensors"), image_size=96))
    assert tr.model.config.image_size == 96 and tr.model.resized_from == 64
    assert tr.fit()["step"] == 2
    assert json.loads((tmp_path / "big" / "model.json").read_text())["config"]["image_size"] == 96
