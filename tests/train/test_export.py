import numpy as np
from rrsis_train.export import export_half

from rrsis_engine.model import build_rsam, get_config, load_checkpoint, save_checkpoint
from rrsis_engine.predictor import Predictor


def test_half_precision_export_loads_and_predicts_the_same_mask(tmp_path, tiny_text_encoder):
    model = build_rsam(get_config("rsam-tiny").with_overrides(image_size=64), text_encoder=tiny_text_encoder)
    src = save_checkpoint(model, tmp_path / "full.safetensors")
    dst = export_half(src, tmp_path / "ship" / "rsam-tiny.safetensors")
    assert dst.stat().st_size < 0.6 * src.stat().st_size
    half = load_checkpoint(dst, text_encoder=tiny_text_encoder)
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    a, b = Predictor(model, device="cpu", disk_cache=False), Predictor(half, device="cpu", disk_cache=False)
    a.set_image(image)
    b.set_image(image)
    la, lb = a.predict("the roof").logits, b.predict("the roof").logits
    assert np.abs(la - lb).max() < 0.05 * (np.abs(la).max() + 1)
