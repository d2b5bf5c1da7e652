"""Training keeps cuDNN's fused attention off on CUDA (docs/training.md, "On a lent GPU": its Hopper backward
returns NaN for masked rows with logsumexp below −88.7, and rsam-lite's UGF and TWGM have such rows)."""

import torch
import torch.nn.functional as F
from rrsis_train.trainer import avoid_cudnn_attention


def test_avoid_cudnn_attention_turns_the_cudnn_kernel_off_and_leaves_attention_working():
    before = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        avoid_cudnn_attention()
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() or torch.backends.cuda.mem_efficient_sdp_enabled()
        # the regime of the bug: a masked row far below ln(float32 max), gradients finite on this device
        q = torch.zeros(1, 1, 4, 8)
        q[..., 0] = 1.0
        k = torch.zeros(1, 1, 11, 8)
        k[..., 0] = -400.0
        q.requires_grad_()
        mask = torch.ones(1, 1, 1, 11, dtype=torch.bool)
        mask[..., 9:] = False
        F.scaled_dot_product_attention(q, k, torch.randn(1, 1, 11, 8), attn_mask=mask).sum().backward()
        assert torch.isfinite(q.grad).all()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)
