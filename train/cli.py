"""``rrsis train``: train / resume / fine-tune an RSAM model, then evaluate and promote it.

Examples::

    rrsis train --config rsam-lite --steps 20000 --batch 2 --out runs/lite --source synth:1.0
    rrsis train --out runs/lite --steps 20000 --resume            # continue where it stopped
    rrsis train --config rsam-lite --init models/rsam-lite.safetensors --source db:sessions.db:1 \\
        --source synth:0.5 --steps 2000 --out runs/ft --promote --models-dir models
    rrsis train --since-last --db sessions.db --min-new 200 --models-dir models   # periodic (cron)
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from rrsis_engine.errors import RRSISError

log = logging.getLogger("rrsis.train")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train an RSAM model (synthetic, data sets, session DB); evaluate; promote",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default="rsam-lite", help="registry config (rsam-tiny, rsam-lite, rsam-t, rsam-b+)")
    p.add_argument("--out", default=None, help="run directory (checkpoints, log.csv, model.safetensors)")
    p.add_argument("--steps", type=int, default=1000, help="optimisation steps in total (resume counts on)")
    p.add_argument("--batch", type=int, default=2, help="samples per micro-batch and process")
    p.add_argument("--accum", type=int, default=1, help="gradient accumulation micro-batches per step")
    p.add_argument("--image-size", type=int, default=None,
                   help="model input side (default: the config's, or the --init checkpoint's; with --init, fine-tune "
                        "at another size: its token-grid position parameters are interpolated)")
    p.add_argument("--scene-size", type=int, default=None, help="draw synthetic scenes at this size (default: input)")
    p.add_argument("--source", action="append", default=None, metavar="KIND[:PATH][:WEIGHT]",
                   help="synth:1.0, small:W (synthetic, about ships, cars, pools, car parks only), easy:1.0, "
                        "jsonl:PATH:W, refsegrs:PATH:W, rrsisd:PATH:W, risbench:PATH:W, db:PATH_OR_URL:W "
                        "(repeatable; default synth:1.0)")
    p.add_argument("--db", default=None, help="session database (adds source db:DB:1 unless --source names it)")
    p.add_argument("--db-image-root", default=None, help="folder relative image paths in the DB are resolved against")
    p.add_argument("--db-holdout", type=float, default=0.1,
                   help="share of logged sessions held out of training for the promotion comparison")
    p.add_argument("--since", default=None, help="only DB annotations created at or after this date")
    p.add_argument("--init", default=None, help="start from this checkpoint (fine-tune) instead of random weights")
    p.add_argument("--sam2-checkpoint", default=None, help="initialise from an official sam2.1_hiera_*.pt")
    p.add_argument("--teacher", default=None, help="distil from this larger rrsis checkpoint (e.g. rsam-b+)")
    p.add_argument("--distill-weight", type=float, default=1.0, help="weight of the distillation BCE")
    p.add_argument("--loss-weights", type=_loss_weights, default=(20.0, 1.0, 1.0, 1.0), metavar="F,D,O,I",
                   help="weights of focal, dice, object-score BCE and IoU L1 (the paper's: 20,1,1,1)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--click-share", type=float, default=0.5, help="share of samples with simulated click rounds")
    p.add_argument("--click-rounds", type=int, default=3, help="at most this many correction clicks per sample")
    p.add_argument("--click-only-share", type=float, default=0.0,
                   help="share of click samples without text, starting from a positive click (SAM style)")
    p.add_argument("--click-refiner", action="store_true",
                   help="train the local click-refinement head (added fresh to an --init checkpoint without one)")
    p.add_argument("--boundary-refiner", action="store_true",
                   help="add a fresh boundary refiner (the full-resolution outline head) to an --init checkpoint without "
                        "one; train it with --train-only boundary_refiner --refiner-cache N")
    p.add_argument("--fresh-lr-mult", type=float, default=10.0,
                   help="learning-rate factor for parts added (--click-refiner, --rus …) or --reset on an --init model")
    p.add_argument("--reset", default="", metavar="PART[,PART]",
                   help="with --init: re-initialise these parts, e.g. mask_decoder,prompt_encoder")
    p.add_argument("--dialogue-share", type=float, default=0.6, help="share of samples with a follow-up turn")
    p.add_argument("--freeze-image-encoder", action="store_true", help="train only text projection, TWGM, decoder")
    p.add_argument("--no-twgm", action="store_true",
                   help="ablation: no two-way guidance module (V_d reaches the decoder unfused)")
    p.add_argument("--no-mmmd", action="store_true",
                   help="ablation: plain SAM 2 decoder with the text global token as one more sparse prompt")
    p.add_argument("--rus", action="store_true",
                   help="CroBIM-U: learn an uncertainty map (RUS, its own loss; the predictor shows it)")
    p.add_argument("--ugf", action="store_true", help="CroBIM-U: uncertainty-gated post-fusion (implies --rus)")
    p.add_argument("--udlr", action="store_true",
                   help="CroBIM-U: uncertainty-driven refinement of the mask logits (implies --rus); with --init, "
                        "modules the checkpoint lacks start freshly initialised")
    p.add_argument("--aux-semantic", type=float, default=0.0, metavar="W",
                   help="weight of a dense category loss on the image features (synthetic scenes' category maps; "
                        "adds the training-only semantic head)")
    p.add_argument("--ambiguity-head", type=float, default=0.0, metavar="W",
                   help="weight of the ambiguity head's BCE against the data's 'ambiguous' labels (adds the head, "
                        "one cue of the ambiguity score)")
    p.add_argument("--error-head", type=float, default=0.0, metavar="W",
                   help="weight of the turn-error head's loss (adds the head: where each turn's mask is likely wrong, "
                        "given its clicks and prior: the prediction's uncertainty map, which then follows the clicks)")
    p.add_argument("--click-gain-head", type=float, default=0.0, metavar="W",
                   help="weight of the click-gain head's loss (adds the head: the IoU gain one click at each place "
                        "would bring, learned from clicks decoded during training; the suggested click follows it)")
    p.add_argument("--gain-candidates", type=int, default=4, metavar="N",
                   help="clicks decoded per click-round state for the click-gain loss (default 4): the standard click, "
                        "random error pixels and random cells the turn-error head marks as likely wrong (8 → 4 and 3)")
    p.add_argument("--click-policy-head", type=float, default=0.0, metavar="W",
                   help="weight of the click-policy head's loss (adds the head: which of the error regions' centres "
                        "a click gains the most at, learned from clicks decoded in training; the suggested click "
                        "follows it)")
    p.add_argument("--component-ranker", type=float, default=0.0, metavar="W",
                   help="weight of the component ranker's loss (adds it: which of the text turn's candidate regions "
                        "the sentence refers to; the text turn's mask is then made of the regions it selects)")
    p.add_argument("--train-only", default="", metavar="PART[,PART]",
                   help="train only these parts and keep every other weight as it is, e.g. error_head (a head added "
                        "to an --init checkpoint; the masks stay exactly the parent's)")
    p.add_argument("--ranker-cache", type=int, default=0, metavar="N",
                   help="with --component-ranker W --train-only component_ranker: compute the ranker's inputs for N "
                        "text turns once (OUT/ranker-cache.pt) and train on batches of --batch turns drawn from them "
                        "(steps of milliseconds instead of a pass through the frozen model each)")
    p.add_argument("--ranker-cache-also", action="append", default=None, metavar="PATH",
                   help="with --ranker-cache: also train on the turns cached by another run of the same model and "
                        "sources with another --seed (its OUT/ranker-cache.pt; repeatable)")
    p.add_argument("--refiner-cache", type=int, default=0, metavar="N",
                   help="with --train-only boundary_refiner: play the first N records of the sources through the engine "
                        "(text turn and two simulated clicks, OUT/refiner-cache.pt) and train on crops of their outlines")
    p.add_argument("--ambiguous-target", choices=("skip", "union"), default="skip",
                   help="text turn of an ambiguous expression: no loss (skip) or every look-alike it matches (union: "
                        "the model shows all candidates, and clicks or a follow-up pick one)")
    p.add_argument("--distractor-loss", type=float, default=0.0, metavar="W",
                   help="weight of a loss on the text turn's mask over the look-alikes the expression rules out "
                        "(objects of the target's category it does not mean)")
    p.add_argument("--twgm-input", action="store_true",
                   help="LayerNorm + 2-D position embedding for the image tokens entering TWGM (added fresh to an "
                        "--init checkpoint without it)")
    p.add_argument("--twgm-pre-norm", action="store_true",
                   help="TWGM layers with the LayerNorm before each sub-layer (an --init checkpoint without them gets "
                        "a freshly initialised TWGM)")
    p.add_argument("--twgm-kv-grid", type=int, default=None, metavar="G",
                   help="TWGM attends to the image through keys/values averaged to a G×G grid (0: full resolution; "
                        "no weights change, so an --init checkpoint loads as it is; default: the config's)")
    p.add_argument("--ranker-context", action="store_true",
                   help="with --component-ranker: the ranker also reads what lies around each region, west, east, north "
                        "and south of it (for relation expressions; an --init ranker gets the new inputs with zero "
                        "weights, so it starts with unchanged scores)")
    p.add_argument("--text-position", action="store_true",
                   help="a text × position term on the fused image tokens (added fresh to an --init checkpoint)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--synth-reuse", type=int, default=2, help="uses per drawn synthetic scene (CPU saving)")
    p.add_argument("--expressions", type=int, default=1,
                   help="expressions about different targets per synthetic scene and step (the image is encoded "
                        "once for all; --batch counts images)")
    p.add_argument("--ckpt-every", type=int, default=500, help="checkpoint every N steps (0: off)")
    p.add_argument("--ckpt-minutes", type=float, default=0.0, help="also checkpoint every M minutes")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop training (with a checkpoint) after M minutes; the calibrations (--calibrate-size, "
                        "three simulated clicks a scene) and --promote's evaluation run after it")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the weights (timm ModelEmaV3, warm-up on: the decay "
                        "grows towards DECAY, e.g. 0.999); OUT/model.safetensors is then the average, "
                        "OUT/model-live.safetensors the optimizer's weights (default 0: off)")
    p.add_argument("--compile", nargs="?", const="inductor", default="", metavar="BACKEND",
                   help="torch.compile the image encoder, TWGM and mask decoder (backend: inductor unless given); "
                        "meant for GPUs: inductor compiles for minutes (389 s for rsam-tiny on a 2-core CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=None,
                   help="processes preparing micro-batches ahead of the training step (0: in the training process; "
                        "default: 0 on CPU, all cores but two on a GPU machine)")
    p.add_argument("--detect-anomaly", action="store_true",
                   help="autograd anomaly mode (slow): the first NaN in a backward pass stops training with the "
                        "forward operation that made it")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="profile N training steps (after two unprofiled ones) with torch.profiler; their operators "
                        "by self time go to profile.txt in the run folder")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="bf16: bfloat16 autocast for the forward passes (float32 weights and losses); "
                        "auto: fp32 (TF32 matrix products on a GPU; bf16 gave NaN gradients on an H200: docs/training.md)")
    p.add_argument("--no-progress", action="store_true")
    # evaluation / promotion
    p.add_argument("--promote", action="store_true", help="after training: evaluate, compare, promote if better")
    p.add_argument("--models-dir", default="models", help="promoted models and registry.json live here")
    p.add_argument("--name", default=None, help="registry name of the promoted model (default: the config)")
    p.add_argument("--val-size", type=int, default=64, help="synthetic validation samples for promotion")
    p.add_argument("--calibrate-size", type=int, default=CALIBRATION_SIZE,
                   help="after training: fit the ambiguity flag and the mask-quality estimate on this many synthetic "
                        f"validation scenes (synthetic:val:N:{CALIBRATION_SCENE}, as `rrsis calibrate`) and store them "
                        "with the weights; 0 = skip")
    p.add_argument("--promote-when", choices=("better", "significant"), default="better",
                   help="better: a higher validation score than the current model; significant: the whole 95%% "
                        "paired-bootstrap interval of the score difference above zero (refuses gains that are noise)")
    p.add_argument("--val", action="append", default=None, metavar="KIND:PATH",
                   help="extra validation set(s) (jsonl:PATH, ...)")
    p.add_argument("--since-last", action="store_true",
                   help="train only when --min-new accepted pairs arrived in --db since the last registered run")
    p.add_argument("--min-new", type=int, default=100)
    p.set_defaults(func=run)
    _DEFAULTS.update({a.dest: a.default for a in p._actions})


_DEFAULTS: dict = {}

#: the calibrations after training: synthetic validation scenes, their size and the flag's precision (the
#: shipped model's: `rrsis calibrate --data synthetic:val:300:256 --precision 0.8`, scripts/evaluate-model.sh)
CALIBRATION_SIZE, CALIBRATION_SCENE, CALIBRATION_PRECISION = 300, 256, 0.8


def calibrate_run(weights: Path, n: int, val_sets=()) -> None:
    """Fit the ambiguity flag and the mask-quality estimate of the trained ``weights`` and store them in its JSON:
    both depend on the mask model, so a parent's calibrations do not carry over. The flag reads ``n`` synthetic
    validation scenes; the estimate also the ``--val`` sets ``val_sets`` (fitted on synthetic turns alone, the shipped
    model's read +0.13 too high on real images). One that cannot be fitted (too few ambiguous scenes) is reported and
    left out (the predictor then flags by candidate entropy, or shows no quality estimate)."""
    from rrsis_engine.calibration import calibrate_model, write_calibration

    fitted, failed, path = calibrate_model(weights, f"synthetic:val:{n}:{CALIBRATION_SCENE}", CALIBRATION_PRECISION,
                                           quality_data=val_sets)
    for part, why in failed.items():
        log.warning("%s calibration skipped: %s", part, why)
    if fitted:
        write_calibration(path, fitted)
    if "ambiguity" in fitted:
        cal = fitted["ambiguity"]
        print(f"ambiguity flag calibrated on {cal.n} synthetic validation scenes ({cal.n_ambiguous} ambiguous): "
              f"precision {cal.precision:.2f}, recall {cal.recall:.2f}")
    if "quality" in fitted:
        cal = fitted["quality"]
        print(f"mask quality estimate fitted on {cal.n} turns ({cal.data}): MAE {cal.mae:.3f}, rank correlation "
              f"{cal.rank_corr or 0:.2f}")


def _loss_weights(value: str) -> tuple[float, float, float, float]:
    try:
        w = tuple(float(v) for v in value.split(","))
    except ValueError:
        w = ()
    if len(w) != 4 or any(x < 0 for x in w):
        raise argparse.ArgumentTypeError(f"--loss-weights takes four non-negative numbers like 20,1,1,1, got {value!r}")
    return w


# options.json key -> argparse dest, restored on --resume when not given on the command line
_RESUMABLE = {"config": "config", "batch": "batch", "accum": "accum", "image_size": "image_size", "seed": "seed",
              "sources": "source", "synth_reuse": "synth_reuse", "expressions": "expressions", "scene_size": "scene_size", "lr": "lr",
              "warmup": "warmup", "weight_decay": "weight_decay", "click_share": "click_share",
              "click_rounds": "click_rounds", "click_only_share": "click_only_share", "click_refiner": "click_refiner", "fresh_lr_mult": "fresh_lr_mult", "dialogue_share": "dialogue_share",
              "freeze_image_encoder": "freeze_image_encoder", "rus": "rus", "ugf": "ugf", "udlr": "udlr",
              "aux_semantic": "aux_semantic", "ambiguity_head": "ambiguity_head", "twgm_input": "twgm_input", "twgm_pre_norm": "twgm_pre_norm", "text_position": "text_position",
              "twgm_kv_grid": "twgm_kv_grid", "ranker_context": "ranker_context",
              "error_head": "error_head", "click_gain_head": "click_gain_head", "component_ranker": "component_ranker",
              "click_policy_head": "click_policy_head",
              "gain_candidates": "gain_candidates", "train_only": "train_only", "ranker_cache": "ranker_cache",
              "ranker_cache_also": "ranker_cache_also", "refiner_cache": "refiner_cache",
              "boundary_refiner": "boundary_refiner",
              "ambiguous_target": "ambiguous_target",
              "distractor_loss": "distractor_loss", "init": "init", "teacher": "teacher",
              "distill_weight": "distill_weight", "loss_weights": "loss_weights", "db_holdout": "db_holdout", "ckpt_every": "ckpt_every",
              "ckpt_minutes": "ckpt_minutes", "steps": "steps",
              "precision": "precision", "ema": "ema", "compile": "compile"}


def _parts(value) -> tuple[str, ...]:
    """"a,b" (or a saved list) → ("a", "b")."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(n.strip() for n in items if n.strip())


def options_from_args(args):
    from rrsis_train.trainer import TrainOptions

    sources = list(args.source or [])
    if args.db and not any(s.startswith("db:") for s in sources):
        sources.append(f"db:{args.db}:1")
    if not sources:
        sources = ["synth:1.0"]
    if not args.out:
        raise RRSISError("--out is required: the run directory for checkpoints and logs (e.g. --out runs/lite).")
    return TrainOptions(
        out=args.out, config=args.config, steps=args.steps, batch=args.batch, accum=args.accum,
        image_size=args.image_size, scene_size=args.scene_size, init=args.init,
        sam2_checkpoint=args.sam2_checkpoint, teacher=args.teacher, distill_weight=args.distill_weight,
        loss_weights=tuple(args.loss_weights), sources=sources, synth_reuse=args.synth_reuse, expressions=args.expressions, lr=args.lr,
        warmup=args.warmup, weight_decay=args.weight_decay, seed=args.seed, click_share=args.click_share,
        click_rounds=args.click_rounds, click_only_share=args.click_only_share,
        click_refiner=args.click_refiner, fresh_lr_mult=args.fresh_lr_mult, reset=_parts(args.reset), dialogue_share=args.dialogue_share,
        freeze_image_encoder=args.freeze_image_encoder, rus=args.rus, ugf=args.ugf, udlr=args.udlr,
        aux_semantic=args.aux_semantic, ambiguity_head=args.ambiguity_head, twgm_input=args.twgm_input, twgm_pre_norm=args.twgm_pre_norm, text_position=args.text_position,
        twgm_kv_grid=args.twgm_kv_grid, ranker_context=args.ranker_context,
        error_head=args.error_head, click_gain_head=args.click_gain_head, component_ranker=args.component_ranker,
        click_policy_head=args.click_policy_head,
        gain_candidates=args.gain_candidates, train_only=_parts(args.train_only), ranker_cache=args.ranker_cache,
        ranker_cache_also=tuple(args.ranker_cache_also or ()), refiner_cache=args.refiner_cache,
        boundary_refiner=args.boundary_refiner,
        ambiguous_target=args.ambiguous_target, distractor_loss=args.distractor_loss, twgm=not args.no_twgm, mmmd=not args.no_mmmd,
        augment=not args.no_augment, ckpt_every=args.ckpt_every,
        ckpt_minutes=args.ckpt_minutes, max_minutes=args.max_minutes, log_every=args.log_every,
        threads=args.threads, workers=args.workers, detect_anomaly=args.detect_anomaly, profile=args.profile, since=args.since, db_image_root=args.db_image_root, db_holdout=args.db_holdout, progress=not args.no_progress,
        precision=args.precision, ema=args.ema, compile=args.compile,
    )


def run(args) -> int:
    if args.since_last:
        from rrsis_train.promote import since_last

        return since_last(args)
    if args.resume and args.out and (Path(args.out) / "options.json").is_file():
        # `rrsis train --out runs/x --resume` alone continues the run with its own settings; options given on
        # the command line win (e.g. a larger --steps to train on)
        saved = json.loads((Path(args.out) / "options.json").read_text())
        for key, dest in _RESUMABLE.items():
            if key in saved and getattr(args, dest) == _DEFAULTS.get(dest):
                setattr(args, dest, saved[key])
        args.no_twgm = args.no_twgm or saved.get("twgm") is False
        args.no_mmmd = args.no_mmmd or saved.get("mmmd") is False
    opts = options_from_args(args)
    from rrsis_train.trainer import Trainer

    trainer = Trainer(opts, device=args.device)
    summary = trainer.fit(resume=args.resume)
    if trainer.rank == 0:
        last = summary.get("last") or {}
        print(f"trained {trainer.model.config.name} to step {summary['step']} ({summary['samples']} samples); "
              f"last loss {last.get('loss', float('nan')):.4f}; weights: {Path(opts.out) / 'model.safetensors'}")
    if summary.get("stopped_by_signal"):
        # a SIGTERM asks the run to end: minutes of calibration or promotion evaluation are not what it asked for
        if trainer.rank == 0:
            skipped = "the calibrations and the promotion were" if args.promote else "the calibrations were"
            print(f"stopped by SIGTERM: resume with `rrsis train --out {opts.out} --resume`; {skipped} skipped "
                  f"(`rrsis calibrate --model {Path(opts.out) / 'model.safetensors'} --data "
                  f"synthetic:val:{CALIBRATION_SIZE}:{CALIBRATION_SCENE}` fits them by hand)")
        return 0
    if args.calibrate_size > 0 and trainer.rank == 0:
        # minutes after the training's own (--max-minutes does not bound them): a 512² run stopped at 70 minutes
        # calibrated for another 29 on two cores; say so before they start
        print(f"calibrating the ambiguity flag and the mask-quality estimate on {args.calibrate_size} synthetic "
              "validation scenes (a text turn and three clicks each; `--calibrate-size 0` skips this, and "
              f"`rrsis calibrate --model {Path(opts.out) / 'model.safetensors'}` fits them later)", flush=True)
        calibrate_run(Path(opts.out) / "model.safetensors", args.calibrate_size, args.val or [])
    if args.promote and trainer.rank == 0:
        from rrsis_train.promote import evaluate_and_promote

        result = evaluate_and_promote(Path(opts.out) / "model.safetensors", models_dir=args.models_dir,
                                      name=args.name or trainer.model.config.name, val_size=args.val_size,
                                      val_sets=args.val or [], db=args.db, sources=opts.sources,
                                      parent=trainer.parent, db_holdout=args.db_holdout,
                                      db_image_root=args.db_image_root, run_meta=trainer.meta(),
                                      promote_when=args.promote_when)
        print(result["message"])
    return 0
