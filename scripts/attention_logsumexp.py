"""How extreme are the attention logits during training? Runs ``rrsis train`` with its arguments and, for every
``F.scaled_dot_product_attention`` call, records the calling modules, the shapes, whether a mask and gradients were
involved, the largest
|score| and the smallest per-query-row logsumexp (masked keys left out). Rows below −88.7 (ln of float32's largest
number) with a mask are the regime where cuDNN's Hopper attention backward returns NaN (pytorch/pytorch#196678,
NVIDIA/cudnn-frontend#1072); ``rrsis train`` therefore keeps cuDNN attention off on CUDA
(:func:`rrsis_train.trainer.avoid_cudnn_attention`).

    .venv/bin/python scripts/attention_logsumexp.py --init rrsis_engine/weights/rsam-lite.safetensors \
        --image-size 384 --steps 3 --batch 2 --device cpu --out out/lse-probe ...   # any `rrsis train` options
"""

import math
import sys
from collections import defaultdict

import torch
import torch.nn.functional as F

from rrsis_engine.cli import main

#: ln(float32 max): a row whose logsumexp is below this makes exp(0 − lse) overflow
LSE_LIMIT = -88.7
original_sdpa = F.scaled_dot_product_attention
#: (modules, query rows, head dim, key rows, masked, with gradient) → [calls, min row logsumexp, max |score|,
#: rows < LSE_LIMIT]
stats: dict[tuple, list] = defaultdict(lambda: [0, math.inf, 0.0, 0])
#: class names of the modules whose forward is running, outermost first
running: list[str] = []


def enter(module, args):
    running.append(type(module).__name__)


def leave(module, args, output):
    running.pop()


def recording_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kwargs):
    """F.scaled_dot_product_attention, recording the logits' extremes first (q, k: …×L×d)."""
    with torch.no_grad():
        scores = (q.float() @ k.float().transpose(-1, -2)) * (scale if scale is not None else q.shape[-1] ** -0.5)
        if attn_mask is not None:
            scores = (scores.masked_fill(~attn_mask, -math.inf) if attn_mask.dtype == torch.bool
                      else scores + attn_mask.float())
        lse = torch.logsumexp(scores, -1)
        where = " › ".join(running[-3:])
        entry = stats[(where, q.shape[-2], q.shape[-1], k.shape[-2], attn_mask is not None, q.requires_grad)]
        entry[0] += 1
        finite = lse[torch.isfinite(lse)]
        if finite.numel():
            entry[1] = min(entry[1], finite.min().item())
        entry[2] = max(entry[2], scores[torch.isfinite(scores)].abs().max().item())
        entry[3] += int((lse < LSE_LIMIT).sum())
    return original_sdpa(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale,
                         **kwargs)


def report() -> None:
    print("| modules | query rows × head dim | key rows | mask | grad | calls | min row logsumexp | max abs score | "
          f"rows < {LSE_LIMIT} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (where, lq, d, lk, masked, grad), (n, low, high, bad) in sorted(stats.items(), key=lambda kv: kv[1][1])[:16]:
        print(f"| {where} | {lq} × {d} | {lk} | {'yes' if masked else 'no'} | {'yes' if grad else 'no'} | {n} | "
              f"{low:.1f} | {high:.0f} | {bad} |")


if __name__ == "__main__":
    F.scaled_dot_product_attention = recording_sdpa  # also reaches nn.MultiheadAttention and sam2's attention
    torch.nn.modules.module.register_module_forward_pre_hook(enter)
    torch.nn.modules.module.register_module_forward_hook(leave, always_call=True)
    try:
        code = main(["train", *sys.argv[1:]])
    finally:
        report()
    sys.exit(code)
