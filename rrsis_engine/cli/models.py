"""``rrsis models``: the registry of named configs and which weights are installed."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list model configs and installed weights")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def describe_models() -> list[dict]:
    from rrsis_engine.model import DEFAULT_MODEL, REGISTRY
    from rrsis_engine.model.checkpoint import checkpoint_files, read_checkpoint_config
    from rrsis_engine.predictor import find_weights

    rows = []
    for name, cfg in REGISTRY.items():
        path = find_weights(name)
        meta = {}
        size = cfg.image_size
        if path is not None:
            try:
                installed, meta = read_checkpoint_config(path)
                size = installed.image_size  # weights may be trained at another input size than the config's
            except Exception as exc:  # a broken install is reported, not fatal for listing
                meta = {"error": str(exc)}
        rows.append({
            "name": name,
            "default": name == DEFAULT_MODEL,
            "image_encoder": cfg.hiera.base + ("" if cfg.hiera.embed_dim is None else f" (reduced: width {cfg.hiera.embed_dim}, stages {list(cfg.hiera.stages)})"),
            "input": size,
            "d_model": cfg.d_model,
            "text_encoder": cfg.text_encoder,
            "weights": str(path) if path else None,
            "size_mb": round(sum(p.stat().st_size for p in checkpoint_files(path)) / 2**20, 1) if path else None,
            "trained": meta.get("trained"),
            "metrics": meta.get("metrics"),
        })
    return rows


def run(args) -> int:
    rows = describe_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<11} {'input':>5}  {'weights':<10} image encoder")
    for r in rows:
        installed = f"{r['size_mb']} MB" if r["weights"] else "not installed"
        star = "*" if r["default"] else " "
        print(f"{r['name'] + star:<11} {r['input']:>5}  {installed:<10} {r['image_encoder']}")
    print("* default. Weights are looked up as NAME.safetensors in rrsis_engine/weights, ~/.cache/rrsis/models "
          "and $RRSIS_MODELS_DIR; any checkpoint path works with --model.")
    return 0
