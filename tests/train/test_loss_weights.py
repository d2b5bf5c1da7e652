"""--loss-weights: parsed, validated, and used by the training step's loss."""

import argparse

import pytest
import torch


def _parser():
    from rrsis_train.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser


def test_loss_weights_default_to_the_paper_and_parse():
    from rrsis_train.cli import options_from_args

    assert options_from_args(_parser().parse_args(["train", "--out", "x"])).loss_weights == (20.0, 1.0, 1.0, 1.0)
    opts = options_from_args(_parser().parse_args(["train", "--out", "x", "--loss-weights", "5,5,1,1"]))
    assert opts.loss_weights == (5.0, 5.0, 1.0, 1.0)
    for bad in ("5,5,1", "a,b,c,d", "5,-1,1,1"):
        with pytest.raises(SystemExit):
            _parser().parse_args(["train", "--out", "x", "--loss-weights", bad])


def test_train_step_uses_the_weights():
    from rrsis_train.trainer import TrainStep

    from rrsis_engine.model.loss import rsam_loss

    logits = torch.randn(2, 1, 8, 8)
    target = (torch.rand(2, 1, 32, 32) > 0.7).float()
    iou, obj = torch.rand(2, 1), torch.randn(2, 1)
    paper = rsam_loss(logits, iou, obj, target)
    dice_heavy = rsam_loss(logits, iou, obj, target, weights=(5.0, 5.0, 1.0, 1.0))
    expected = 5 * paper["focal"] + 5 * paper["dice"] + paper["obj"] + paper["iou"]
    assert torch.allclose(dice_heavy["loss"], expected) and not torch.allclose(dice_heavy["loss"], paper["loss"])
    step = TrainStep(torch.nn.Linear(1, 1), loss_weights=(5, 5, 1, 1))
    assert step.loss_weights == (5.0, 5.0, 1.0, 1.0)
