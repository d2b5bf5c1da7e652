"""Average the weights of rrsis checkpoints fine-tuned from the same parent (a "model soup"):

    python scripts/average_checkpoints.py OUT.safetensors A.safetensors B.safetensors [...]

All inputs must have the same config (architecture) and keys; floating-point tensors are averaged in float32 and
stored in the first input's dtype. Inputs may be sharded (exported) checkpoints; OUT is one file. The JSON beside
OUT is the first input's, with meta.parent naming the inputs.
Used for the shipped rsam-lite: the mean of two 55-minute runs from one parent, one with --distractor-loss
(MODEL_CARD.md)."""

import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from rrsis_engine.model.checkpoint import config_path_for, read_state


def average(out: Path, inputs: list[Path]) -> None:
    metas = [json.loads(config_path_for(p).read_text()) for p in inputs]
    if any(m["config"] != metas[0]["config"] for m in metas):
        sys.exit("the checkpoints have different configs; only models of one architecture can be averaged")
    states = [read_state(p) for p in inputs]
    if any(s.keys() != states[0].keys() for s in states):
        sys.exit("the checkpoints have different keys; only models of one architecture can be averaged")
    mean = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            mean[key] = (sum(s[key].float() for s in states) / len(states)).to(first.dtype)
        else:
            mean[key] = first
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(mean, out)
    meta = {k: v for k, v in metas[0].items() if k != "shards"}  # OUT is a single file
    meta["meta"] = {**meta["meta"], "parent": " + ".join(str(p) for p in inputs), "averaged": len(inputs)}
    config_path_for(out).write_text(json.dumps(meta, indent=2))
    print(f"wrote {out} (mean of {len(inputs)} checkpoints)")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    average(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
