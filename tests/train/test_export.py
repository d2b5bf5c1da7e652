import numpy as np
from rrsis_train.export import export_half

from rrsis_engine.model import build_rsam, get_config, load_checkpoint, save_checkpoint
from rrsis_engine.predictor import Predictor


def test_half_precision_export_loads_and_predicts_the_same_mask(tmp_path, tiny_text_encoder):
    import torch

    torch.manual_seed(0)  # random weights: a fixed draw
    model = build_rsam(get_config("rsam-tiny").with_overrides(image_size=64), text_encoder=tiny_text_encoder)
    src = save_checkpoint(model, tmp_path / "full.safetensors")
    dst = export_half(src, tmp_path / "ship" / "rsam-tiny.safetensors")
    assert dst.stat().st_size < 0.6 * src.stat().st_size
    half = load_checkpoint(dst, text_encoder=tiny_text_encoder)
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    # the model's own logits, both encoders in fp32: the edge snap turns them into ±10 steps, so a weight rounded to
    # float16 near the 0.5 contour of its filtered mask moved a "logit" by up to 10 (a flaky comparison); so does the
    # choice of the likeliest of a random model's look-alikes for "the roof" (stop 46), whose means nearly tie
    a, b = (Predictor(m, device="cpu", disk_cache=False, encoder_precision="fp32", edge_refine=False,
                      spatial_words=False) for m in (model, half))
    a.set_image(image)
    b.set_image(image)
    la, lb = a.predict("the roof").logits, b.predict("the roof").logits
    assert np.abs(la - lb).max() < 0.01 * (np.abs(la).max() + 1)  # float16 rounding: ≈ 2e-4 here


def test_export_splits_into_shards_that_load_as_one_checkpoint(tmp_path, tiny_text_encoder):
    import json

    import pytest
    import torch

    from rrsis_engine.errors import CheckpointError
    from rrsis_engine.model.checkpoint import model_hash
    from rrsis_engine.predictor import resolve_model_path

    model = build_rsam(get_config("rsam-tiny").with_overrides(image_size=64), text_encoder=tiny_text_encoder)
    src = save_checkpoint(model, tmp_path / "full.safetensors")
    ship = tmp_path / "ship"
    whole = load_checkpoint(export_half(src, ship / "one.safetensors"), text_encoder=tiny_text_encoder)
    dst = export_half(src, ship / "tiny.safetensors", max_shard_bytes=1_000_000)
    shards = json.loads(dst.with_suffix(".json").read_text())["shards"]
    files = [dst] + [ship / s for s in shards]
    assert len(files) >= 3 and all(f.stat().st_size <= 1_000_000 + 64_000 for f in files)
    sharded = load_checkpoint(dst, text_encoder=tiny_text_encoder)
    assert model_hash(sharded) == model_hash(whole)
    for k, v in whole.state_dict().items():
        assert torch.equal(v, sharded.state_dict()[k])
    # a folder holding one checkpoint resolves to its main file, not to a shard
    (ship / "one.safetensors").unlink()
    (ship / "one.json").unlink()
    assert resolve_model_path(ship) == dst
    (ship / shards[-1]).unlink()
    with pytest.raises(CheckpointError, match="every file its JSON lists"):
        load_checkpoint(dst, text_encoder=tiny_text_encoder)
    # exporting again to the same name in one file removes the old shards
    export_half(src, dst, max_shard_bytes=None)
    assert sorted(p.name for p in ship.iterdir()) == ["tiny.json", "tiny.safetensors"]
    assert model_hash(load_checkpoint(dst, text_encoder=tiny_text_encoder)) == model_hash(whole)
