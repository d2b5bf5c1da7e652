"""Export a trained checkpoint for shipping: float16 weights (half the size; rsam-lite 47 MB → 23 MB) plus
its JSON config, split into files of at most ``max_shard_bytes`` (15 MiB: the repository refuses files over
16 MiB). ``load_checkpoint`` loads it unchanged (weights are cast back to float32 on load).

    python -m rrsis_train.export runs/demo-lite/model.safetensors rrsis_engine/weights/rsam-lite.safetensors
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from rrsis_engine.model.checkpoint import checkpoint_files, save_state_shards

MAX_SHARD_BYTES = 15 * 2**20


def export_half(src: str | Path, dst: str | Path, meta: dict | None = None,
                max_shard_bytes: int | None = MAX_SHARD_BYTES) -> Path:
    """Write ``dst`` (.safetensors, floating tensors as float16; further ``dst.shard-K`` files beyond
    ``max_shard_bytes``) and ``dst``'s .json (``meta`` merged in, the shards listed)."""
    from safetensors import safe_open

    src, dst = Path(src), Path(dst)
    state, file_meta = {}, {}
    for part in checkpoint_files(src):
        with safe_open(str(part), framework="pt") as f:
            file_meta = f.metadata() or {}
            state.update({k: f.get_tensor(k) for k in f.keys()})
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    for k, v in half.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ValueError(f"{k} overflows float16; keep this checkpoint in float32.")
    dst.parent.mkdir(parents=True, exist_ok=True)
    info = json.loads(src.with_suffix(".json").read_text())
    for stale in checkpoint_files(dst)[1:]:  # shards of an earlier export to the same name
        stale.unlink(missing_ok=True)
    info["shards"] = save_state_shards(half, dst, file_meta, max_shard_bytes)
    if not info["shards"]:
        del info["shards"]
    info.setdefault("meta", {}).update({"exported_from": src.name, "dtype": "float16", **(meta or {})})
    dst.with_suffix(".json").write_text(json.dumps(info, indent=2))
    return dst


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) != 3:
        sys.exit("usage: python -m rrsis_train.export SRC.safetensors DST.safetensors")
    print(export_half(sys.argv[1], sys.argv[2]))
