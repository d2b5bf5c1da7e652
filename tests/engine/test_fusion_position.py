"""TWGM input normalisation + 2-D position (use_twgm_input) and the ambiguity head (use_ambiguity_head):
optional modules of rsam-tiny with random weights."""

import numpy as np
import pytest
import torch

from rrsis_engine.errors import CheckpointError
from rrsis_engine.model import build_rsam, get_config, load_checkpoint, save_checkpoint
from rrsis_engine.model.twgm import sincos_2d


def _build(tiny_model, **switches):
    torch.manual_seed(0)
    return build_rsam(get_config("rsam-tiny").with_overrides(**switches), text_encoder=tiny_model.text_encoder).eval()


def test_sincos_table_tells_every_cell_apart():
    table = sincos_2d(16, 128)
    assert table.shape == (256, 128) and table.abs().max() <= 1
    assert torch.allclose(table.norm(dim=1), torch.full((256,), 8.0), atol=1e-4)  # √(128/2)
    d = torch.cdist(table, table) + torch.eye(256) * 1e3
    assert d.min() > 0.5  # no two cells share an embedding


def _linear_probe_r2(tokens: np.ndarray, grid: int) -> float:
    """R² of a ridge probe for the column index, fitted on half the tokens and scored on the other half."""
    x = np.tile(np.arange(grid), grid).astype(np.float64)
    order = np.random.default_rng(0).permutation(len(x))
    fit, test = order[: len(x) // 2], order[len(x) // 2:]
    a = np.c_[tokens, np.ones(len(tokens))]
    w = np.linalg.solve(a[fit].T @ a[fit] + 1e-2 * np.eye(a.shape[1]), a[fit].T @ x[fit])
    pred = a[test] @ w
    return 1 - ((pred - x[test]) ** 2).sum() / ((x[test] - x[test].mean()) ** 2).sum()


def test_fused_tokens_know_where_they_are_only_with_the_input_module(tiny_model):
    """Identical image tokens at the scale a from-scratch encoder reaches (norm ≈ 800): without the module the
    fused tokens carry no usable position; with it a linear probe reads the column off them."""
    grid = tiny_model.image_size // 16
    vd = torch.randn(1, tiny_model.config.d_model, 1, 1).expand(1, -1, grid, grid) * 70
    hidden, mask = tiny_model.text_embed(["the leftmost house"])
    r2 = {}
    for on in (False, True):
        model = _build(tiny_model, use_twgm_input=on)
        with torch.no_grad():
            txt, txt_mask = model.encode_text(hidden, mask)
            fused, _ = model.fuse(vd, txt, txt_mask)
        r2[on] = _linear_probe_r2(fused[0].flatten(1).T.numpy(), grid)
    assert r2[True] > 0.9 and r2[False] < 0.5, r2


@pytest.mark.parametrize("module", ["twgm_input", "ambiguity_head", "text_position"])
def test_fine_tuning_adds_the_module_to_a_checkpoint_without_it(tiny_model, tmp_path, module):
    path = save_checkpoint(tiny_model, tmp_path / "old.safetensors")
    model = load_checkpoint(path, text_encoder=tiny_model.text_encoder, add_modules=[module])
    assert getattr(model.config, f"use_{module}") and model.added_modules == (module,)
    old = tiny_model.state_dict()
    assert all(torch.equal(v, old[k]) for k, v in model.state_dict().items() if not k.startswith(module))
    again = load_checkpoint(save_checkpoint(model, tmp_path / "new.safetensors"), text_encoder=tiny_model.text_encoder)
    assert getattr(again.config, f"use_{module}") and again.added_modules == ()


def test_ambiguity_head_scores_once_per_image_and_text(tiny_model, rgb_image, tmp_path):
    from rrsis_engine.predictor import Predictor

    model = _build(tiny_model, use_ambiguity_head=True)
    calls = []
    model.ambiguity_head.register_forward_hook(lambda *a: calls.append(1))
    predictor = Predictor(model, device="cpu", cache_dir=tmp_path)
    predictor.set_image(rgb_image)
    # a sentence the spatial words leave to the model (theirs would also score the category's sentence)
    first = predictor.predict("the roof with solar panels")
    again = predictor.predict("the roof with solar panels", points=[[5, 5]], labels=[1],
                              mask_input=first.low_res_logits)
    assert len(calls) == 1  # the click turn reused the cached score
    assert 0 < first.ambiguity_cues["head_score"] < 1
    assert again.ambiguity_cues["head_score"] == first.ambiguity_cues["head_score"]
    assert predictor.predict("", points=[[5, 5]], labels=[1]).ambiguity_cues["head_score"] == 0.0  # no text


def test_pre_norm_layer_is_the_identity_when_its_sub_layers_are_silent(tiny_model):
    """x + f(LN(x)): with every sub-layer's output projection at zero a pre-norm TWGT layer passes both streams
    through unchanged (nothing can wash the text out of the residual stream); a post-norm one renormalises."""
    from rrsis_engine.model.twgm import TWGTLayer

    torch.manual_seed(0)
    img, txt = torch.randn(1, 16, 32) * 50, torch.randn(1, 5, 32)
    pe_img, pe_txt, mask = torch.randn(1, 16, 32), torch.randn(1, 5, 32), torch.ones(1, 5, dtype=torch.bool)
    for pre_norm in (True, False):
        layer = TWGTLayer(32, 4, 64, pre_norm=pre_norm)
        with torch.no_grad():
            for attn in (layer.img_self, layer.txt_self, layer.img_to_txt, layer.txt_to_img):
                attn.out_proj.weight.zero_()
                attn.out_proj.bias.zero_()
            for mlp in (layer.img_mlp, layer.txt_mlp):
                mlp[2].weight.zero_()
                mlp[2].bias.zero_()
            out_img, out_txt = layer(img, txt, pe_img, pe_txt, mask)
        assert torch.allclose(out_img, img) == pre_norm and torch.allclose(out_txt, txt) == pre_norm


def test_fine_tuning_can_rebuild_twgm_as_pre_norm(tiny_model, tmp_path):
    path = save_checkpoint(tiny_model, tmp_path / "old.safetensors")
    model = load_checkpoint(path, text_encoder=tiny_model.text_encoder, rebuild={"twgm": {"twgm_pre_norm": True}})
    assert model.config.twgm_pre_norm and model.rebuilt_modules == ("twgm",)
    old = tiny_model.state_dict()
    new = model.state_dict()
    assert all(torch.equal(v, old[k]) for k, v in new.items() if not k.startswith("twgm."))
    assert any(not torch.equal(new[k], old[k]) for k in old if k.startswith("twgm.layers"))
    assert "twgm.img_out_norm.weight" in new
    same = load_checkpoint(save_checkpoint(model, tmp_path / "new.safetensors"), text_encoder=tiny_model.text_encoder,
                           rebuild={"twgm": {"twgm_pre_norm": True}})
    assert same.rebuilt_modules == ()  # already pre-norm: its weights load
    assert all(torch.equal(v, new[k]) for k, v in same.state_dict().items())


def test_text_position_is_neutral_at_init_and_learns_where_a_sentence_points(tiny_model):
    from rrsis_engine.model.twgm import TextPosition

    torch.manual_seed(0)
    plain = _build(tiny_model)
    with_prior = _build(tiny_model, use_text_position=True)
    with_prior.load_state_dict(plain.state_dict(), strict=False)
    g = tiny_model.image_size // 16
    vd = torch.randn(1, tiny_model.config.d_model, g, g)
    txt, mask = plain.encode_text(*plain.text_embed(["the house in the upper left"]))
    with torch.no_grad():
        assert torch.equal(plain.fuse(vd, txt, mask)[0], with_prior.fuse(vd, txt, mask)[0])
    # alone, it learns a text-dependent spatial map: sentence A → left half, sentence B → right half
    grid, dim = 8, 32
    module = TextPosition(dim, grid)
    readout = torch.nn.Linear(dim, 1)
    sentences = torch.randn(2, dim)
    cols = torch.arange(grid * grid) % grid
    target = torch.stack([(cols < grid // 2).float(), (cols >= grid // 2).float()])
    opt = torch.optim.Adam([*module.parameters(), *readout.parameters()], lr=1e-2)
    for _ in range(300):
        logits = readout(module(sentences))[..., 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ((readout(module(sentences))[..., 0] > 0).float() == target).float().mean() > 0.95


def test_grid_parameters_resize_as_a_row_major_grid():
    """A table that varies only along columns (channel 0) or rows (channel 1) keeps doing so on the new grid."""
    from rrsis_engine.model.checkpoint import resize_grid_parameter

    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    table = torch.stack([cols.reshape(-1), rows.reshape(-1)], dim=1)[None]  # 1×16×2
    out = resize_grid_parameter(table, 6).reshape(6, 6, 2)
    assert torch.allclose(out[..., 0], out[:1, :, 0].expand(6, 6))  # same column → same value on every row
    assert torch.allclose(out[..., 1], out[:, :1, 1].expand(6, 6))
    assert (out[0, 1:, 0] > out[0, :-1, 0]).all() and (out[1:, 0, 1] > out[:-1, 0, 1]).all()


def test_a_checkpoint_loads_at_another_input_size(tiny_model, tmp_path, rgb_image):
    """Fine-tuning at another size: the token-grid parameters are interpolated, every other weight loads
    unchanged, and the model predicts at the new size."""
    from rrsis_engine.model.checkpoint import GRID_PARAMETERS
    from rrsis_engine.predictor import Predictor

    model = _build(tiny_model, use_twgm_input=True)
    path = save_checkpoint(model, tmp_path / "small.safetensors")
    size = model.config.image_size
    big = load_checkpoint(path, text_encoder=tiny_model.text_encoder, image_size=size + 64)
    assert big.config.image_size == size + 64 and big.resized_from == size
    grid = (size + 64) // 16
    old, new = model.state_dict(), big.state_dict()
    for k, v in new.items():
        if k in GRID_PARAMETERS:
            assert v.shape == (1, grid * grid, old[k].shape[-1])
        else:
            assert torch.equal(v, old[k]), k
    assert load_checkpoint(path, text_encoder=tiny_model.text_encoder, image_size=size).resized_from is None
    pred = Predictor(big.eval(), device="cpu", disk_cache=False)
    pred.set_image(rgb_image)
    assert pred.predict("the red roof").mask.shape == rgb_image.shape[:2]
    with pytest.raises(CheckpointError, match="multiple of 32"):
        load_checkpoint(path, text_encoder=tiny_model.text_encoder, image_size=size + 16)
