"""--workers: micro-batches prepared in forked processes train exactly as those prepared in the training process."""

import csv

import torch
from rrsis_train.trainer import TrainOptions, train
from safetensors.torch import load_file


def _opts(out, steps, workers):
    return TrainOptions(out=str(out), config="rsam-tiny", steps=steps, batch=2, image_size=128, expressions=2,
                        sources=["synth:1.0", "easy:0.5"], click_share=0.5, click_rounds=2, warmup=2, ckpt_every=0,
                        log_every=1, threads=1, progress=False, lr=1e-3, workers=workers)


def _losses(out):
    with open(out / "log.csv") as f:
        return [(int(r["step"]), r["loss"]) for r in csv.DictReader(f)]


def test_workers_train_bit_exactly_like_the_training_process(tmp_path):
    inline, forked = tmp_path / "inline", tmp_path / "forked"
    train(_opts(inline, 4, 0))
    train(_opts(forked, 2, 2))
    summary = train(_opts(forked, 4, 2), resume=True)  # the workers start at the resumed step
    assert summary["step"] == 4
    a, b = load_file(str(inline / "model.safetensors")), load_file(str(forked / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _losses(inline) == _losses(forked)


def test_a_non_finite_gradient_skips_the_update_instead_of_poisoning_the_weights(tmp_path):
    from rrsis_train.trainer import Trainer

    trainer = Trainer(_opts(tmp_path / "run", 3, 0))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    forward = trainer.wrapped.forward
    trainer.wrapped.forward = lambda *a, **k: (lambda loss, stats: (loss * float("nan"), stats))(*forward(*a, **k))
    row = trainer.train_step()  # NaN loss → NaN gradients
    assert trainer.skipped_steps == 1 and row["grad_norm"] != row["grad_norm"]
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    trainer.wrapped.forward = forward
    trainer.train_step()  # the next batch trains as usual
    assert trainer.skipped_steps == 1
    after = trainer.model.state_dict()
    assert all(v.isfinite().all() for v in after.values() if v.is_floating_point())
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_workers_default_to_none_on_cpu_and_most_cores_beside_a_gpu(monkeypatch):
    from rrsis_train.trainer import resolve_workers

    cpu, gpu = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    assert resolve_workers(None, cpu) == 0
    assert resolve_workers(3, cpu) == 3 and resolve_workers(-1, gpu) == 0
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert resolve_workers(None, gpu) == 14
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two GPU processes on the machine share its cores
    assert resolve_workers(None, gpu) == 7
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert resolve_workers(None, gpu) == 1


def test_detect_anomaly_names_the_operation_that_made_the_nan(tmp_path):
    import pytest
    from rrsis_train.trainer import Trainer

    opts = _opts(tmp_path / "run", 2, 0)
    opts.detect_anomaly = True
    trainer = Trainer(opts)
    decode = trainer.model.decode

    def nan_gradient(*a, **k):  # finite forward, NaN backward (sqrt of a negative in the unused branch), as on the GPU
        out = decode(*a, **k)
        return torch.where(out[0] < -1e9, (out[0] - 1e9).sqrt(), out[0]), *out[1:]

    trainer.model.decode = nan_gradient
    with pytest.raises(RuntimeError, match="SqrtBackward0"):
        trainer.fit()
    assert not torch.is_anomaly_enabled()  # switched off again
