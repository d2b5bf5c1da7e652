"""--compile: the compiled parts train exactly as the plain ones and save the same weights under the same names."""

from rrsis_train.trainer import COMPILED_PARTS, Trainer, TrainOptions
from safetensors.torch import load_file

from rrsis_engine.model import load_checkpoint


def _run(out, compile_backend):
    opts = TrainOptions(out=str(out), config="rsam-tiny", steps=3, batch=2, image_size=128, sources=["easy:1.0"],
                        click_share=0.5, click_rounds=2, warmup=2, ckpt_every=0, log_every=1, threads=1,
                        progress=False, lr=1e-3, compile=compile_backend)
    trainer = Trainer(opts)
    trainer.fit()
    return trainer


def test_compiled_parts_train_like_the_plain_ones(tmp_path):
    # aot_eager traces forward and backward through dynamo and AOTAutograd as inductor does, without generating kernels
    # (seconds instead of minutes on CPU)
    plain, compiled = _run(tmp_path / "plain", ""), _run(tmp_path / "compiled", "aot_eager")
    for name in COMPILED_PARTS:
        assert getattr(compiled.model, name)._compiled_call_impl is not None, name
    assert [round(r["loss"], 4) for r in compiled.history] == [round(r["loss"], 4) for r in plain.history]
    a = load_file(str(tmp_path / "plain" / "model.safetensors"))
    b = load_file(str(tmp_path / "compiled" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all((a[k] - b[k]).abs().max() < 1e-4 for k in a)
    load_checkpoint(tmp_path / "compiled" / "model.safetensors")  # loads as any checkpoint
