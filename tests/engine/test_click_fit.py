"""Click fitting (rrsis_engine.model.click_fit): a click the decoder left on the wrong side ends on its side, the
correction stays around it and follows the decoder's features, and clicks already respected change nothing."""

import numpy as np
import torch

from rrsis_engine.model.click_fit import SIGMA_CELLS, click_values, fit_to_clicks
from rrsis_engine.predictor import Predictor

SIZE = 256  # model input; the grid is 64² cells of 4 pixels


def _blob_logits():
    low = torch.full((1, 1, 64, 64), -6.0)
    low[..., 10:30, 10:30] = 6.0
    return low


def _two_textures(channels: int = 8):
    """Features: the left half of the grid is one material (channel 0), the right half another (channel 1), plus noise."""
    g = torch.Generator().manual_seed(0)
    feats = 0.05 * torch.randn(1, channels, 64, 64, generator=g)
    feats[:, 0, :, :32] += 1.0
    feats[:, 1, :, 32:] += 1.0
    return feats


def test_a_positive_click_outside_the_mask_ends_inside_and_only_its_surroundings_change():
    low, feats = _blob_logits(), _two_textures()
    point = torch.tensor([[4 * 48.0, 4 * 48.0]])  # (x, y) model pixels: cell (48, 48), far from the blob
    fitted = fit_to_clicks(low, feats, point, torch.tensor([1]), SIZE)
    assert click_values(fitted, point, SIZE).item() > 0.5
    change = (fitted - low).abs()[0, 0]
    far = 5 * SIGMA_CELLS
    rows, cols = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    outside = (rows - 48) ** 2 + (cols - 48) ** 2 > far ** 2
    assert change[outside].max() < 1e-3
    assert torch.equal(fitted[..., 10:30, 10:30] > 0, low[..., 10:30, 10:30] > 0)  # the blob is untouched


def test_a_negative_click_inside_the_mask_ends_outside():
    low, feats = _blob_logits(), _two_textures()
    point = torch.tensor([[4 * 20.0, 4 * 20.0]])
    fitted = fit_to_clicks(low, feats, point, torch.tensor([0]), SIZE)
    assert click_values(fitted, point, SIZE).item() < -0.5


def test_the_correction_follows_the_features_of_the_clicked_pixel():
    """A positive click one cell left of the texture boundary: the pixels of its own material gain more than those
    of the other at the same distance."""
    low, feats = torch.full((1, 1, 64, 64), -3.0), _two_textures()
    point = torch.tensor([[4 * 31.5, 4 * 32.0]])  # cell column 31 (left material), 0.5 cell from the boundary
    delta = (fit_to_clicks(low, feats, point, torch.tensor([1]), SIZE) - low)[0, 0]
    same, other = delta[28:36, 29], delta[28:36, 34]  # 2.5 cells either side of the click
    assert (same > other + 0.5).all()


def test_clicks_on_their_side_change_nothing_and_box_corners_are_ignored():
    low, feats = _blob_logits(), _two_textures()
    points = torch.tensor([[80.0, 80.0], [200.0, 200.0], [4.0, 4.0], [250.0, 250.0]])
    labels = torch.tensor([1, 0, 2, 3])  # positive inside, negative outside, then a box's corners
    assert fit_to_clicks(low, feats, points, labels, SIZE) is low


def test_the_predictor_fits_click_turns_and_the_next_turn_gets_the_fitted_prior(tiny_model, monkeypatch):
    """Decode patched to a fixed blob that ignores the clicks: with click fitting the shown mask holds the positive
    click outside the blob and the prior of the next turn too; without it neither does."""
    image = np.full((256, 256, 3), 120, np.uint8)
    image[:, 128:] = 60
    on = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False)
    off = Predictor(tiny_model, device="cpu", disk_cache=False, zoom_in=False, edge_refine=False, click_fit=False)
    grid = on.image_size // 4
    low = torch.full((1, 1, grid, grid), -6.0)
    low[..., grid // 8:grid // 4, grid // 8:grid // 4] = 6.0
    decode = tiny_model.mask_decoder.decode_with_features

    def blob_decoder(*args):
        _, iou, obj, features = decode(*args)
        return low.clone(), iou, obj, features

    monkeypatch.setattr(tiny_model.mask_decoder, "decode_with_features", blob_decoder)
    monkeypatch.setattr(tiny_model, "click_refiner", None)
    monkeypatch.setattr(tiny_model, "udlr", None)
    preds = {}
    for name, p in (("on", on), ("off", off)):
        p.set_image(image)
        preds[name] = p.predict("the roof", points=[[192, 192]], labels=[1])
    assert preds["on"].mask[192, 192] and not preds["off"].mask[192, 192]
    assert preds["on"].mask[40, 40] and preds["off"].mask[40, 40]  # the blob stays
    prior_at_click = click_values(preds["on"].low_res_logits, torch.tensor([[192.0, 192.0]]) * on.image_size / 256,
                                  on.image_size)
    assert prior_at_click.item() > 0
