"""scripts/pack_text_encoder.py: the MiniLM packed for a lent GPU machine is small and gives the same features."""

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pack_text_encoder.py"


def _load():
    spec = importlib.util.spec_from_file_location("pack_text_encoder", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packed_encoder_is_small_and_matches_the_original(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    pack = _load()
    packed = tmp_path / "packed"
    pack.pack(packed, jsonl=[], n_scenes=10)
    assert sum(f.stat().st_size for f in packed.iterdir()) < 14e6  # the fp32 original is 91 MB
    folder = pack.unpack(packed, tmp_path / "site")
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    ref = AutoModel.from_pretrained(str(pack.source_folder()), local_files_only=True).eval()
    new = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    texts = pack.drawn_expressions(5, first=11)
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        a, b = ref(**batch).last_hidden_state, new(**batch).last_hidden_state
    keep = batch["attention_mask"].bool()
    cos = torch.nn.functional.cosine_similarity(a[keep], b[keep], dim=-1)
    assert cos.min() > 0.99, cos.min()
    # a word no expression uses was dropped: its row unpacks as zeros
    unused = tok("zeppelin", add_special_tokens=False)["input_ids"]
    assert new.embeddings.word_embeddings.weight[unused].abs().sum() == 0
