"""config.click_prior_radius: clicks painted into the mask prior give a click a local effect on the mask,
even before training; off (the default), nothing changes and the config JSON / model hash stay as before."""

import dataclasses

import torch


def test_paint_clicks_draws_disks_and_leaves_unclicked_samples_alone():
    from rrsis_engine.model.prompts import paint_clicks

    prior = torch.full((2, 1, 16, 16), -3.0)
    points = torch.tensor([[[10.0, 10.0], [42.0, 42.0]], [[0.0, 0.0], [0.0, 0.0]]])  # model-frame (x, y)
    labels = torch.tensor([[1, 0], [-1, -1]])  # sample 1 has only padding
    has = torch.tensor([True, False])
    painted, has_after = paint_clicks(prior, has, points, labels, grid=16, stride=4, radius=1.5, logit=10.0)
    assert painted[0, 0, 2, 2] == 10.0 and painted[0, 0, 10, 10] == -10.0  # row, col of the clicked cells
    assert painted[0, 0, 2, 10] == -3.0 and painted[0, 0, 15, 0] == -3.0  # elsewhere: the prior
    assert torch.equal(painted[1], prior[1]) and has_after.tolist() == [True, False]
    fresh, has_fresh = paint_clicks(None, None, points, labels, grid=16, stride=4, radius=1.5, logit=10.0)
    assert has_fresh.tolist() == [True, False] and fresh[0, 0, 0, 15] == 0.0  # no prior: "unknown" around


def test_click_prior_is_wired_into_decode_and_absent_from_the_json_when_off(tiny_model):
    base_cfg = tiny_model.config
    assert "click_prior_radius" not in base_cfg.to_dict()  # old configs and model hashes are unchanged
    s = tiny_model.image_size
    with torch.no_grad():
        feats = tiny_model.encode_image(torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(0)))
        txt, tmask = tiny_model.encode_text(*tiny_model.text_embed(["the pond"]))
        vd, tg = tiny_model.fuse(feats.vd, txt, tmask)
        prior, has = torch.zeros(1, 1, s // 4, s // 4), torch.tensor([True])
        point, label = torch.tensor([[[s * 0.25, s * 0.75]]]), torch.tensor([[1]])
        plain, _, _ = tiny_model.decode(vd, tg, feats, points=point, labels=label, mask_input=prior, has_mask=has)
        reference, _, _ = tiny_model.decode(vd, tg, feats, mask_input=prior, has_mask=has)
        try:
            tiny_model.config = dataclasses.replace(base_cfg, click_prior_radius=2.0)
            assert tiny_model.config.to_dict()["click_prior_radius"] == 2.0
            painted, _, _ = tiny_model.decode(vd, tg, feats, points=point, labels=label, mask_input=prior,
                                              has_mask=has)
            unclicked, _, _ = tiny_model.decode(vd, tg, feats, mask_input=prior, has_mask=has)
        finally:
            tiny_model.config = base_cfg
    assert not torch.allclose(plain, painted)  # the painted prior reaches the mask
    assert torch.equal(unclicked, reference)  # without clicks: exactly the model without the switch
