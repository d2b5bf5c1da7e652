"""Distillation from a larger teacher checkpoint (different input size): the soft-target loss is logged and
pulls the student's text-turn masks towards the teacher's."""

import csv

from rrsis_train.easy import easy_sample
from rrsis_train.trainer import TrainOptions, train

from rrsis_engine.model import build_rsam, get_config, load_checkpoint, save_checkpoint
from rrsis_engine.predictor import Predictor


def test_student_learns_from_a_teacher_at_another_input_size(tmp_path, tiny_text_encoder):
    import torch

    teacher = build_rsam(get_config("rsam-tiny").with_overrides(image_size=128), text_encoder=tiny_text_encoder)
    dec = teacher.mask_decoder
    with torch.no_grad():  # a teacher that says "everything" (logits ≫ 0): the student must move towards it
        last = dec.output_hypernetworks_mlps[0].layers[-1]
        last.weight.zero_()
        last.bias.fill_(1.0)
        dec.output_upscaling[3].weight.zero_()
        dec.output_upscaling[3].bias.zero_()
        dec.conv_s0.weight.zero_()
        dec.conv_s0.bias.fill_(3.0)
    path = save_checkpoint(teacher, tmp_path / "teacher" / "model.safetensors")
    def run(name, teacher):
        opts = TrainOptions(out=str(tmp_path / name), config="rsam-tiny", image_size=64, steps=6, batch=2,
                            sources=["easy:1"], teacher=teacher, distill_weight=5.0, click_share=0.0,
                            lr=2e-3, warmup=1, ckpt_every=0, log_every=1, threads=1, progress=False)
        train(opts)
        with open(tmp_path / name / "log.csv") as f:
            rows = list(csv.DictReader(f))
        model = load_checkpoint(tmp_path / name / "model.safetensors", text_encoder=tiny_text_encoder)
        p = Predictor(model, device="cpu", disk_cache=False, edge_refine=False)  # the model's own soft logits
        p.set_image(easy_sample(10**6, size=64)["image"])
        return rows, float(torch.sigmoid(torch.from_numpy(p.predict("the red square").logits)).mean())

    rows, with_teacher = run("student", str(path))
    assert all(float(r["loss_distill"]) > 0 for r in rows)
    plain_rows, without = run("plain", None)
    assert all(r["loss_distill"] == "" for r in plain_rows)
    # the teacher says "everything": its student predicts far more foreground than the same run without it
    assert with_teacher > without + 0.2, (with_teacher, without)
