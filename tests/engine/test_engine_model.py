import json

import numpy as np
import pytest
import torch

from rrsis_engine.errors import CheckpointError
from rrsis_engine.model import (
    build_rsam,
    get_config,
    import_sam2_checkpoint,
    load_checkpoint,
    model_hash,
    save_checkpoint,
)
from rrsis_engine.model.loss import rsam_loss


def test_forward_shapes_follow_the_paper(tiny_model):
    s = tiny_model.image_size
    images = torch.randn(2, 3, s, s)
    hidden, mask = tiny_model.text_embed(["the red square", "the blue circle on the left"])
    points = torch.tensor([[[10.0, 20.0], [0.0, 0.0]], [[30.0, 40.0], [50.0, 60.0]]])
    labels = torch.tensor([[1, -1], [1, 0]])
    prior = torch.randn(2, 1, s // 4, s // 4)
    with torch.no_grad():
        feats = tiny_model.encode_image(images)
        d = tiny_model.config.d_model
        assert feats.vd.shape == (2, d, s // 16, s // 16)
        assert feats.v2.shape == (2, d // 4, s // 8, s // 8)
        assert feats.v1.shape == (2, d // 8, s // 4, s // 4)
        txt, txt_mask = tiny_model.encode_text(hidden, mask)
        assert txt.shape[1] == hidden.shape[1] + 1 and txt_mask[:, 0].all()  # [GT] at position 0
        masks, iou, obj = tiny_model(images, hidden, mask, points, labels, prior, torch.tensor([True, False]))
    assert masks.shape == (2, 1, s // 4, s // 4) and iou.shape == (2, 1) and obj.shape == (2, 1)
    assert ((iou >= 0) & (iou <= 1)).all()


def test_text_encoder_is_frozen_and_not_in_checkpoints(tiny_model):
    assert all(not p.requires_grad for p in tiny_model.text_encoder.bert.parameters())
    assert not any(k.startswith("text_encoder.bert") for k in tiny_model.state_dict())
    assert "text_encoder.global_token" in tiny_model.state_dict()


def test_empty_prompt_and_null_mask_embeddings_are_used(tiny_model):
    pe = tiny_model.prompt_encoder
    sparse, dense = pe.encode(None, None, None, batch_size=1)
    assert torch.equal(sparse[0, 0], pe.empty_sparse_embed.weight[0])
    assert torch.equal(dense[0, :, 0, 0], pe.no_mask_embed.weight[0])
    sparse2, _ = pe.encode(torch.tensor([[[5.0, 5.0]]]), torch.tensor([[1]]), None)
    assert not torch.equal(sparse2[0, 0], pe.empty_sparse_embed.weight[0])


def test_loss_weights_and_terms():
    logits = torch.zeros(1, 1, 8, 8, requires_grad=True)
    target = torch.zeros(1, 1, 8, 8)
    target[..., :4, :4] = 1
    out = rsam_loss(logits, torch.tensor([[0.5]]), torch.tensor([[0.0]]), target)
    expected = 20 * out["focal"] + out["dice"] + out["obj"] + out["iou"]
    assert torch.allclose(out["loss"], expected)
    out["loss"].backward()
    assert logits.grad.abs().sum() > 0


def test_checkpoint_roundtrip_is_exact(tiny_model, tmp_path):
    path = save_checkpoint(tiny_model, tmp_path / "m.safetensors", meta={"trained": "test"})
    info = json.loads((tmp_path / "m.json").read_text())
    assert info["config"]["name"] == "rsam-tiny"
    loaded = load_checkpoint(path, text_encoder=tiny_model.text_encoder)
    assert model_hash(loaded) == model_hash(tiny_model)
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert loaded.checkpoint_meta == {"trained": "test"}
    by_json = load_checkpoint(tmp_path / "m.json", text_encoder=tiny_model.text_encoder)  # the JSON names it too
    assert model_hash(by_json) == model_hash(tiny_model)


def test_wrong_architecture_is_refused_with_key_names(tiny_model, tmp_path):
    path = save_checkpoint(tiny_model, tmp_path / "m.safetensors")
    cfg = json.loads((tmp_path / "m.json").read_text())
    lite = get_config("rsam-lite").to_dict()
    cfg["config"] = lite
    (tmp_path / "m.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"shape mismatch: .*(twgm|image_encoder|mask_decoder)") as err:
        load_checkpoint(path)
    assert "rsam-lite" in str(err.value)


def test_pickle_and_garbage_are_refused(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="config file"):
        load_checkpoint(bad)
    (tmp_path / "x.json").write_text(json.dumps({"format": 1, "config": get_config("rsam-tiny").to_dict()}))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(bad)


@pytest.fixture(scope="module")
def official_sam2_t(tmp_path_factory):
    """An official-format SAM 2.1 Hiera-T checkpoint made from sam2's own builder ({"model": state_dict})."""
    from sam2.build_sam import build_sam2

    torch.manual_seed(123)
    sam = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu", mode="eval")
    state = sam.state_dict()
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": state}, path)
    return path, state


def test_official_sam2_import_is_bit_exact(official_sam2_t, tiny_model):
    path, official = official_sam2_t
    model = build_rsam("rsam-t", text_encoder=tiny_model.text_encoder)
    report = import_sam2_checkpoint(model, path)
    own = model.state_dict()
    # every image-encoder and prompt-encoder tensor, and the shared decoder parts
    expected = [k for k in official if k.startswith(("image_encoder.", "sam_prompt_encoder."))]
    assert expected and all(("prompt_encoder." + k[len("sam_prompt_encoder."):] if k.startswith("sam_") else k) in report
                            for k in expected)
    for ours, how in report.items():
        src = ours.replace("prompt_encoder.", "sam_prompt_encoder.", 1) if ours.startswith("prompt_encoder.") else (
            ours.replace("mask_decoder.", "sam_mask_decoder.", 1) if ours.startswith("mask_decoder.") else ours)
        ref = official[src]
        if how.startswith(("token 0", "row 0")):
            ref = ref[:1]
        assert torch.equal(own[ours], ref), ours
    assert "mask_decoder.transformer.layers.0.self_attn.q_proj.weight" in report
    assert report["mask_decoder.mask_tokens.weight"].startswith("token 0")
    assert not any(k.startswith(("twgm.", "text_encoder.")) for k in report)


def test_official_import_into_wrong_size_names_the_keys(official_sam2_t, tiny_model):
    path, _ = official_sam2_t
    model = build_rsam("rsam-lite", text_encoder=None if tiny_model.config.d_model == 256 else None)
    with pytest.raises(CheckpointError, match=r"shape mismatch for image_encoder\.trunk"):
        import_sam2_checkpoint(model, path)


def test_hf_bert_folder_is_accepted(tmp_path):
    """Any local Hugging Face BERT folder works as the text encoder (tiny random one made here)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "red", "square", "blue", "circle"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    tok = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    tok.save_pretrained(tmp_path / "bert")
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(tmp_path / "bert")
    cfg = get_config("rsam-tiny").with_overrides(text_encoder=str(tmp_path / "bert"))
    model = build_rsam(cfg)
    hidden, mask = model.text_embed(["the red square"])
    assert hidden.shape[-1] == 32 and mask.sum() == 5  # [CLS] the red square [SEP]
    with pytest.raises(CheckpointError, match="config.json"):
        build_rsam(cfg.with_overrides(text_encoder=str(tmp_path / "missing")))
    assert np.isfinite(model.encode_text(hidden, mask)[0].detach().numpy()).all()


def test_loss_counts_small_objects_and_upsamples_logits():
    """A target covering a fraction of one low-res pixel is present; full-res targets are accepted."""
    logits = torch.zeros(1, 1, 8, 8)
    tiny = torch.zeros(1, 1, 8, 8)
    tiny[..., 3, 3] = 0.2  # an object smaller than one logit pixel after downsampling
    out = rsam_loss(logits, torch.tensor([[0.5]]), torch.tensor([[-5.0]]), tiny)
    assert out["obj"] > 1.0  # "absent" predicted for a present object is penalised
    full = torch.zeros(1, 1, 32, 32)
    full[..., 12:14, 12:14] = 1
    assert torch.isfinite(rsam_loss(logits, torch.tensor([[0.5]]), torch.tensor([[0.0]]), full)["loss"])
