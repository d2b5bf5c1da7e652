"""bf16 autocast training (--precision), float32 losses inside it, and `rrsis bench train`'s step measurements."""

import csv
import math

import pytest
import torch
from rrsis_train.trainer import TrainOptions, resolve_precision, train

from rrsis_engine.errors import RRSISError
from rrsis_engine.model.loss import distractor_loss, rsam_loss


def _opts(out, precision):
    return TrainOptions(out=str(out), config="rsam-tiny", steps=6, batch=2, image_size=128, sources=["easy:1.0"],
                        click_share=0.5, click_rounds=2, warmup=2, ckpt_every=0, log_every=1, threads=1,
                        progress=False, lr=1e-3, precision=precision)


def _losses(out):
    with open(out / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_bf16_training_tracks_fp32_and_keeps_float32_weights(tmp_path):
    train(_opts(tmp_path / "fp32", "fp32"))
    summary = train(_opts(tmp_path / "bf16", "bf16"))
    fp32, bf16 = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert len(bf16) == 6 and all(math.isfinite(v) for v in bf16)
    # the same samples and initial weights: the first step's loss differs by bf16 rounding only, and the run
    # does not drift away from the float32 one within a few steps
    assert abs(bf16[0] - fp32[0]) < 0.05 * fp32[0]
    assert abs(sum(bf16) - sum(fp32)) < 0.1 * sum(fp32)
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "bf16" / "model.safetensors"))
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    assert summary["step"] == 6


def test_losses_run_in_float32_under_autocast():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 16, 16) * 3
    target = (torch.rand(2, 1, 16, 16) > 0.5).float()
    iou, obj = torch.rand(2, 1), torch.randn(2, 1)
    ref = rsam_loss(logits, iou, obj, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = rsam_loss(logits.bfloat16(), iou.bfloat16(), obj.bfloat16(), target)
        d = distractor_loss(logits.bfloat16(), target)
    assert got["loss"].dtype == torch.float32 and d.dtype == torch.float32
    # only the inputs' rounding to bf16 differs (no bf16 arithmetic inside the loss)
    assert torch.allclose(got["loss"], ref["loss"], rtol=2e-2)


def test_precision_auto_is_fp32_on_cpu_and_names_are_checked():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(RRSISError, match="precision"):
        resolve_precision("fp16", torch.device("cpu"))


class _Queue(list):
    put = list.append


def test_bench_train_measures_every_step_kind_in_one_process():
    """Each row of `rrsis bench train` really runs (a broken row would only show up as 'error' in the table), the
    kinds interleaved in one process (one row each, in order)."""
    from rrsis_train.bench import KINDS, _measure

    q = _Queue()
    _measure(KINDS, "rsam-tiny", 128, 1, 2, 1, "cpu", 1, q)
    assert [row["kind"] for row in q] == KINDS == ["sam2", "rsam", "rsam+clicks"]
    for row in q:
        assert "error" not in row, row.get("error")
        assert row["s_per_step"] > 0 and row["trainable_params"] > 0
    assert q[1]["trainable_params"] > q[0]["trainable_params"]  # TWGM, text projection, MMMD's extra parts


def test_bench_table_says_when_bf16_is_emulated():
    from rrsis_train.bench import to_markdown

    result = {"host": "h", "torch": "t", "threads": 1, "device": "cpu", "native_bf16": False, "steps": [], "data": []}
    assert "bf16 rows are emulated" in to_markdown(result)
    assert "emulated" not in to_markdown({**result, "native_bf16": True})
