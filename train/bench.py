"""``rrsis bench train``: training throughput and peak memory, RSAM next to a plain SAM 2 step, and the data
pipeline. Writes ``benchmarks/train.json`` and ``benchmarks/train.md``.

For each config (default rsam-lite, rsam-t, rsam-b+ at their native input size):
- ``rsam``: our training step, text turn only (image encoder + frozen-BERT features from the cache + TWGM +
  MMMD, the paper's loss, AdamW);
- ``rsam+clicks``: the full recipe step (text turn + 2 click rounds for every sample);
- ``sam2``: a plain SAM 2 step with the *same* Hiera+FPN: image encoder + SAM 2 prompt encoder (one point) +
  SAM 2 mask decoder (high-res features), focal+dice loss, AdamW.
The three are timed in one fresh process with their steps interleaved, round after round, so drift of a shared
machine hits all alike; ratio = rsam s/step ÷ sam2 s/step (goal ≤ 1.25). Peak memory of each kind alone: on CPU the
RSS of a fresh process per kind (one step), on a GPU the allocator's peak of one step with only that kind built.
``--precision`` (one or more of fp32, bf16; default bf16 on GPU, fp32 on CPU) runs every row under that autocast;
all rows use the trainer's fused AdamW.
Data pipeline: samples/s of drawing + augmenting + tensorising synthetic samples (the training source),
which must exceed the training step's samples/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

DEFAULT_CONFIGS = ["rsam-lite", "rsam-t", "rsam-b+"]
KINDS = ["sam2", "rsam", "rsam+clicks"]  # sam2 first: the baseline of the ratios


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _build_step(kind: str, cfg, size: int, batch: int, dev, amp):
    """One training step of ``kind`` on fixed random inputs → (step() returning the loss, trainable parameters)."""
    import numpy as np
    import torch

    from rrsis_engine.model import build_rsam
    from rrsis_engine.model.loss import dice_loss, sigmoid_focal_loss

    torch.manual_seed(0)
    images = torch.randn(batch, 3, size, size, device=dev)
    s = size // 4
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    target = (((xx - s / 2) ** 2 + (yy - s / 2) ** 2) < (s / 6) ** 2).float()[None, None].expand(batch, 1, s, s)
    target = target.to(dev)
    if kind == "sam2":
        from sam2.modeling.sam.mask_decoder import MaskDecoder
        from sam2.modeling.sam.prompt_encoder import PromptEncoder
        from sam2.modeling.sam.transformer import TwoWayTransformer

        from rrsis_engine.model.image_encoder import build_image_encoder

        d = cfg.d_model
        enc = build_image_encoder(cfg)
        pe = PromptEncoder(embed_dim=d, image_embedding_size=(size // 16, size // 16),
                           input_image_size=(size, size), mask_in_chans=16)
        dec = MaskDecoder(transformer_dim=d, transformer=TwoWayTransformer(
            depth=cfg.decoder_depth, embedding_dim=d, mlp_dim=cfg.decoder_mlp_dim, num_heads=cfg.decoder_heads),
            num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=256, use_high_res_features=True,
            iou_prediction_use_sigmoid=True, pred_obj_scores=True, pred_obj_scores_mlp=True)
        mods = torch.nn.ModuleList([enc, pe, dec]).to(dev)
        params = [p for p in mods.parameters() if p.requires_grad]
        pts = torch.full((batch, 1, 2), size / 2.0, device=dev)
        lbl = torch.ones(batch, 1, dtype=torch.long, device=dev)

        def step():
            with amp:
                out = enc(images)
                v1, v2, vd = out["backbone_fpn"][:3]
                hr = [dec.conv_s0(v1), dec.conv_s1(v2)]
                sparse, dense = pe(points=(pts, lbl), boxes=None, masks=None)
                masks, iou, _, obj = dec(vd, pe.get_dense_pe(), sparse, dense, multimask_output=False,
                                         repeat_image=False, high_res_features=hr)
                loss = 20 * sigmoid_focal_loss(masks.float(), target).mean() + dice_loss(masks.float(), target).mean()
                loss = loss + (iou.float() - 0.5).abs().mean() + torch.nn.functional.binary_cross_entropy_with_logits(
                    obj.float(), torch.ones_like(obj.float()))
            return loss
        return step, params
    from rrsis_train.trainer import Sample, TextFeatureCache, TrainStep

    model = build_rsam(cfg).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    texts = ["the red roof next to the pool", "the largest building on the left"]
    text = TextFeatureCache(model).batch([texts[i % 2] for i in range(batch)], dev)
    rng = np.random.default_rng(0)
    valid = np.ones((s, s), bool)
    samples = [Sample(image=images[i].cpu(), target=target[i].cpu(), valid=valid, expression=texts[i % 2],
                      ambiguous=False, followup=None, followup_target=None, dialogue=False,
                      clicks=kind == "rsam+clicks", click_only=False, semantic=None, ambiguous_label=False,
                      distractors=None, rng=rng, id=str(i)) for i in range(batch)]
    ts = TrainStep(model, click_rounds=2)

    def step():
        with amp:
            loss, _ = ts(samples, text, None, 2 if kind == "rsam+clicks" else 0)
        return loss
    return step, params


def _measure(kinds: list[str], config: str, size: int, batch: int, steps: int, warmup: int, device: str,
             threads: int, q, precision: str = "fp32") -> None:
    """Time ``kinds`` in this process, one step of each in turn per round (the same machine state for all), and
    put one row per kind on ``q``; peak memory is the process's (per kind only when ``kinds`` has one)."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    try:
        from rrsis_engine.model import get_config

        cfg = get_config(config).with_overrides(image_size=size)
        dev = torch.device(device)
        if dev.type == "cuda":
            from rrsis_train.trainer import avoid_cudnn_attention

            avoid_cudnn_attention()  # the attention kernels `rrsis train` uses, for every row alike
        amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")
        runs = {}
        for kind in kinds:
            step, params = _build_step(kind, cfg, size, batch, dev, amp)
            runs[kind] = (step, params, torch.optim.AdamW(params, lr=1e-4, fused=True))  # as the trainer's
        times = {kind: [] for kind in kinds}
        for i in range(warmup + steps):
            for kind, (step, _, opt) in runs.items():
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                step().backward()
                opt.step()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    times[kind].append(time.perf_counter() - t0)
        rows = [{"kind": kind, "config": config, "size": size, "batch": batch, "device": device,
                 "precision": precision, "s_per_step": float(np.median(times[kind])),
                 "samples_per_s": batch / float(np.median(times[kind])), "peak_rss_mb": round(_peak_rss_mb(), 1),
                 "trainable_params": sum(p.numel() for p in params)} for kind, (_, params, _) in runs.items()]
        if dev.type == "cuda":  # the allocator's peak of each kind alone: built, stepped once and freed in turn
            del runs, step, params, opt
            for row in rows:
                try:
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                    step, params = _build_step(row["kind"], cfg, size, batch, dev, amp)
                    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
                    step().backward()
                    opt.step()
                    torch.cuda.synchronize()
                    row["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
                    del step, params, opt
                except Exception as exc:  # the row keeps its timing
                    row["peak_gpu_mb"] = f"error: {type(exc).__name__}: {exc}"[:60]
        for row in rows:
            q.put(row)
    except Exception as exc:  # reported in the table, not fatal for the other rows
        for kind in kinds:
            q.put({"kind": kind, "config": config, "size": size, "precision": precision,
                   "error": f"{type(exc).__name__}: {exc}"})


def measure(kinds, config, size, batch, steps, warmup, device, threads, precision="fp32") -> list[dict]:
    """:func:`_measure` in a fresh process → one row per kind."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_measure, args=(kinds, config, size, batch, steps, warmup, device, threads, q, precision))
    p.start()
    rows = [q.get() for _ in kinds]
    p.join()
    return rows


def data_throughput(size: int, n: int, reuse: int) -> dict:

    from rrsis_train.sources import MixedSource, SyntheticSource
    from rrsis_train.trainer import TrainOptions, prepare_group

    # blocks small enough that the measured samples span whole blocks, so reuse shows its real saving
    src = MixedSource([SyntheticSource("train", scene_size=size, reuse=reuse, block=max(1, n // (2 * reuse)))],
                      [1.0], seed=0)
    opts = TrainOptions(out="-")
    t0 = time.perf_counter()
    for i in range(n):
        rec, rng = src.get(i)
        prepare_group([rec], [rng], size, opts)
    dt = time.perf_counter() - t0
    return {"size": size, "reuse": reuse, "samples": n, "samples_per_s": n / dt, "ms_per_sample": 1e3 * dt / n}


def to_markdown(result: dict) -> str:
    lines = ["# rrsis bench train", "", f"Host: {result['host']}; torch {result['torch']}; "
             f"threads {result['threads']}; device {result['device']}"
             f"{'' if result.get('native_bf16', True) else ' (no native bf16: bf16 rows are emulated)'}.", "",
             "| config | input | precision | batch | step | s/step | samples/s | peak RSS MB | peak GPU MB | "
             "trainable params | vs sam2 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["steps"]:
        if "error" in r:
            lines.append(f"| {r['config']} | {r['size']}² | {r.get('precision', '')} | | {r['kind']} | "
                         f"error: {r['error'][:80]} | | | | | |")
            continue
        ratio = r.get("ratio_vs_sam2")
        lines.append(f"| {r['config']} | {r['size']}² | {r.get('precision', 'fp32')} | {r['batch']} | {r['kind']} | "
                     f"{r['s_per_step']:.3f} | "
                     f"{r['samples_per_s']:.2f} | {r['peak_rss_mb']:.0f} | {r.get('peak_gpu_mb', '')} | "
                     f"{r['trainable_params'] / 1e6:.1f} M | "
                     f"{'' if ratio is None else f'{ratio:.2f}×'} |")
    lines += ["", "Data pipeline (draw synthetic scene + augment + tensorise, one process):", "",
              "| scene size | reuse | samples/s | ms/sample |", "|---|---|---|---|"]
    for d in result["data"]:
        lines.append(f"| {d['size']} | {d['reuse']} | {d['samples_per_s']:.1f} | {d['ms_per_sample']:.1f} |")
    lines += ["", "`rsam` = text turn only; `rsam+clicks` = text turn + 2 simulated click rounds; `sam2` = plain SAM 2 "
              "image encoder + prompt encoder (1 point) + mask decoder with the same Hiera+FPN. Ratio = s/step ÷ "
              "sam2 s/step, the three kinds timed in one process with their steps interleaved (goal ≤ 1.25); peak "
              "RSS: each kind alone in a fresh process, one step (on a GPU: the process's, all kinds); peak GPU: "
              "the allocator's peak of one step with only that kind built.", ""]
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    import torch

    ap = argparse.ArgumentParser(prog="rrsis bench train", description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    ap.add_argument("--size", type=int, default=None, help="input side for all configs (default: each config's)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=max(1, torch.get_num_threads()))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data-samples", type=int, default=20)
    ap.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=None,
                    help="autocast of every row, one table block each (default: bf16 on GPU, fp32 on CPU)")
    ap.add_argument("--out", default="benchmarks")
    args = ap.parse_args(argv)
    from rrsis_train.trainer import resolve_precision

    from rrsis_engine.model import get_config
    from rrsis_engine.predictor import native_bf16

    precisions = args.precision or (["bf16"] if args.device.startswith("cuda") else ["fp32"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def write(rows: list[dict], data: list[dict]) -> str:
        """train.json and train.md in ``out`` → the markdown."""
        result = {"host": platform.node() or "?", "torch": torch.__version__, "threads": args.threads,
                  "device": args.device, "native_bf16": native_bf16(torch.device(args.device)), "steps": rows,
                  "data": data}
        (out / "train.json").write_text(json.dumps(result, indent=2))
        (out / "train.md").write_text(markdown := to_markdown(result))
        return markdown

    for precision in precisions:
        resolve_precision(precision, torch.device(args.device))  # warns about emulated bf16
    rows = []
    for config in args.configs:
        size = args.size or get_config(config).image_size
        for precision in precisions:
            # time: all kinds in one process, interleaved; memory: each kind alone (CPU: a fresh process, one step)
            timed = measure(KINDS, config, size, args.batch, args.steps, args.warmup, args.device, args.threads,
                            precision)
            base = timed[0].get("s_per_step")
            for r in timed:
                if "s_per_step" in r:
                    if "peak_gpu_mb" not in r:  # CPU: RSS cannot be reset, so a fresh process per kind
                        alone = measure([r["kind"]], config, size, args.batch, 1, 0, args.device, args.threads,
                                        precision)[0]
                        r["peak_rss_mb"] = alone.get("peak_rss_mb", r["peak_rss_mb"])
                    if base:
                        r["ratio_vs_sam2"] = r["s_per_step"] / base
                print(json.dumps(r))
                rows.append(r)
            write(rows, [])  # so far: a run cut short keeps the rows it has
    print(write(rows, [data_throughput(s, args.data_samples, reuse) for s in (384, 512) for reuse in (1, 2)]))
    return 0
