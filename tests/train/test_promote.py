"""Promotion: a better model is promoted and registered; a worse one is refused and the current one stays."""

import json

import numpy as np
import pytest
import torch
from rrsis_train.easy import easy_sample
from rrsis_train.promote import evaluate_and_promote, load_registry

from rrsis_engine.model import build_rsam, save_checkpoint


def _constant_model(text_encoder, positive: bool):
    """rsam-tiny at 64² whose mask logits are a constant: > 0 everywhere (mask = whole image, IoU = target
    share) or exactly 0 (empty mask, IoU 0)."""
    from rrsis_engine.model import get_config

    m = build_rsam(get_config("rsam-tiny").with_overrides(image_size=64), text_encoder=text_encoder)
    dec = m.mask_decoder
    with torch.no_grad():
        last = dec.output_hypernetworks_mlps[0].layers[-1]
        last.weight.zero_()
        last.bias.fill_(1.0 if positive else 0.0)
        dec.output_upscaling[3].weight.zero_()
        dec.output_upscaling[3].bias.zero_()
        dec.conv_s0.weight.zero_()
        dec.conv_s0.bias.fill_(3.0)
    return m


@pytest.fixture
def val_sets():
    return {"easy": [easy_sample(n, size=64) for n in range(4)]}


def test_worse_model_is_not_promoted(tmp_path, tiny_text_encoder, val_sets):
    models = tmp_path / "models"
    good = save_checkpoint(_constant_model(tiny_text_encoder, True), tmp_path / "good" / "model.safetensors")
    bad = save_checkpoint(_constant_model(tiny_text_encoder, False), tmp_path / "bad" / "model.safetensors")

    first = evaluate_and_promote(good, models, "rsam-tiny", sets=val_sets, sources=["easy:1"])
    assert first["promoted"], first["message"]
    assert first["entry"]["score"] > 0
    assert (models / "rsam-tiny.safetensors").read_bytes() == good.read_bytes()

    second = evaluate_and_promote(bad, models, "rsam-tiny", sets=val_sets, sources=["easy:1"])
    assert not second["promoted"]
    assert "not promoted" in second["message"]
    assert second["entry"]["score"] < second["entry"]["current_score"]
    # the current model is unchanged, the refused candidate is registered with its metrics and parent
    assert (models / "rsam-tiny.safetensors").read_bytes() == good.read_bytes()
    reg = load_registry(models)
    assert reg["current"]["rsam-tiny"] == first["entry"]["id"]
    assert [m["promoted"] for m in reg["models"]] == [True, False]
    assert reg["models"][1]["parent"] == first["entry"]["id"]
    assert reg["models"][0]["sha256"] and reg["models"][0]["data"] == ["easy:1"]
    assert json.loads((models / "registry.json").read_text()) == reg
    # the promoted copy is loadable by the predictor
    from rrsis_engine.predictor import load_predictor

    p = load_predictor(str(models / "rsam-tiny.safetensors"), device="cpu")
    p.set_image(np.zeros((32, 32, 3), np.uint8))
    assert p.predict("the red square").mask.all()


def _fake_results(ious_per_record):
    """{"val": EvalResult} whose records have the given text-only IoUs (the one-click IoU equal to it)."""
    from rrsis_engine.evaluate import EvalResult, SampleResult

    samples = [SampleResult(f"r{i}", "", False, [v, v], None) for i, v in enumerate(ious_per_record)]
    rows = {"mIoU": float(np.mean(ious_per_record))}
    return {"val": EvalResult({"by_clicks": {"0": rows, "1": rows}, "n": len(samples)}, samples)}


def test_significant_promotion_refuses_a_gain_that_is_noise(tmp_path, tiny_text_encoder, monkeypatch):
    import rrsis_train.promote as promote

    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.6, 40)
    noisy = np.clip(base + rng.choice([0.3, -0.28], 40), 0, 1)  # higher on average, records split both ways
    consistent = base + 0.05
    by_file = {}
    for name, ious in (("current", base), ("noisy", noisy), ("consistent", consistent)):
        m = _constant_model(tiny_text_encoder, True)
        with torch.no_grad():
            m.mask_decoder.conv_s0.bias.fill_(len(by_file))  # three files with different hashes
        by_file[str(save_checkpoint(m, tmp_path / name / "model.safetensors"))] = ious
    monkeypatch.setattr(promote, "evaluate_model", lambda weights, sets: _fake_results(by_file[str(weights)]))
    files = list(by_file)

    def promote_in(models, candidate, **kw):
        result = promote.evaluate_and_promote(candidate, models, "rsam-tiny", sets={"val": []}, **kw)
        # the registry's copy of a promoted file scores as the file does
        by_file.update({str(p): by_file[str(candidate)] for p in (models / "versions").glob("*.safetensors")
                        if str(p) not in by_file})
        return result

    models = tmp_path / "models"
    assert promote_in(models, files[0])["promoted"]
    noise = promote_in(models, files[1], promote_when="significant")
    low, high = noise["entry"]["score_interval"]
    assert noise["entry"]["score"] > noise["entry"]["current_score"] and low < 0 < high
    assert not noise["promoted"] and "lower end" in noise["message"]
    steady = promote_in(models, files[2], promote_when="significant")
    assert steady["promoted"], steady["message"]
    assert steady["entry"]["score_interval"][0] > 0
    # the plain rule takes the noisy candidate: its score is higher
    other = tmp_path / "models-plain"
    assert promote_in(other, files[0])["promoted"] and promote_in(other, files[1])["promoted"]
