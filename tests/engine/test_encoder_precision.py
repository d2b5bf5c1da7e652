"""The image encoder's precision: bf16 autocast where the hardware has it, float32 features either way."""

import numpy as np
import pytest
import torch

from rrsis_engine.errors import PromptError
from rrsis_engine.predictor import Predictor, resolve_encoder_precision


def test_auto_follows_the_cpus_bf16_support(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert resolve_encoder_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_encoder_precision("auto", cpu) == "fp32"
    assert resolve_encoder_precision("bf16", cpu) == "bf16"  # explicit settings win
    with pytest.raises(PromptError, match="auto, bf16 or fp32"):
        resolve_encoder_precision("half", cpu)


def test_bf16_encoder_gives_float32_features_close_to_fp32_and_its_own_cache_files(tiny_model, rgb_image, tmp_path):
    fp32 = Predictor(tiny_model, device="cpu", cache_dir=tmp_path, encoder_precision="fp32")
    bf16 = Predictor(tiny_model, device="cpu", cache_dir=tmp_path, encoder_precision="bf16")
    a = fp32._features(fp32.set_image(rgb_image))
    b = bf16._features(bf16.set_image(rgb_image))
    for name in ("vd", "v1", "v2"):
        x, y = getattr(a, name), getattr(b, name)
        assert y.dtype == torch.float32
        assert not torch.equal(x, y)  # really computed in bf16 ...
        assert float((x - y).norm() / x.norm()) < 0.05  # ... and only rounded
    # the two precisions never read each other's embeddings from the disk cache
    assert bf16.stats["embed_computed"] == 1 and bf16.stats["embed_disk_hits"] == 0
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    # and the rest of a turn runs on the float32 features
    pred = bf16.predict("the red square", points=np.array([[60.0, 50.0]]), labels=np.array([1]))
    assert pred.mask.shape == (120, 200)
