"""Checkpoints: safetensors weights + a JSON config beside them (never pickle).

``model.safetensors`` holds the trainable state dict (the frozen text backbone is not stored; the JSON
names where it comes from). ``model.json`` holds ``{"format": 1, "config": RSAMConfig, "meta": {...}}`` and,
for a checkpoint split into several files (shipped weights stay under the repository's per-file limit),
``"shards": ["model.shard-1.safetensors", ...]``: further files beside it, holding the rest of the keys.
Official SAM 2 / 2.1 checkpoints (``{"model": state_dict}`` .pt files) are read with
``torch.load(weights_only=True)`` and imported into the image encoder, prompt encoder and the shared
parts of the decoder.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch

from rrsis_engine.errors import CheckpointError
from rrsis_engine.model.component_ranker import upgrade_state as upgrade_ranker_state

FORMAT_VERSION = 1
SHARD_MARK = ".shard-"  # NAME.shard-K.safetensors: a further part of NAME.safetensors, never a checkpoint alone


def is_shard(path: Path) -> bool:
    return SHARD_MARK in Path(path).name


def checkpoint_files(path: str | Path) -> list[Path]:
    """The weights file and the further shards its JSON lists (all beside it)."""
    path = Path(path)
    cfg_path = config_path_for(path)
    shards = json.loads(cfg_path.read_text()).get("shards", []) if cfg_path.is_file() else []
    return [path] + [path.parent / name for name in shards]


def save_state_shards(state: dict[str, torch.Tensor], path: Path, metadata: dict, max_bytes: int | None) -> list[str]:
    """Write ``state`` to ``path`` and, beyond ``max_bytes`` per file, to ``NAME.shard-K.safetensors`` files
    (keys in sorted order, greedily). Returns the further shards' file names (empty when one file suffices)."""
    from safetensors.torch import save_file

    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k in sorted(state):
        n = state[k].numel() * state[k].element_size()
        if max_bytes and groups[-1] and size + n > max_bytes:
            groups.append({})
            size = 0
        groups[-1][k] = state[k]
        size += n
    names = [path.name] + [f"{path.stem}{SHARD_MARK}{i}.safetensors" for i in range(1, len(groups))]
    for group, name in zip(groups, names, strict=True):
        tmp = path.parent / (name + ".tmp")
        save_file(group, str(tmp), metadata=metadata)
        tmp.replace(path.parent / name)
    return names[1:]


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}


def config_path_for(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_checkpoint(model, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``path`` (.safetensors) and its .json config; returns the weights path."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = _trainable_state(model)
    tmp = path.with_suffix(".safetensors.tmp")
    save_file(state, str(tmp), metadata={"format": str(FORMAT_VERSION), "config": model.config.name})
    tmp.replace(path)
    info = {"format": FORMAT_VERSION, "config": model.config.to_dict(), "meta": meta or {}}
    config_path_for(path).write_text(json.dumps(info, indent=2))
    return path


def read_checkpoint_config(path: str | Path):
    from rrsis_engine.model.config import RSAMConfig

    path = Path(path)
    cfg_path = config_path_for(path)
    if not cfg_path.is_file():
        raise CheckpointError(
            f"{path.name} has no config file beside it ({cfg_path.name}); rrsis checkpoints are a .safetensors "
            "plus a .json written by save_checkpoint / rrsis train."
        )
    try:
        info = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON ({exc}).") from None
    if info.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path} has checkpoint format {info.get('format')!r}; this rrsis reads {FORMAT_VERSION}.")
    return RSAMConfig.from_dict(info["config"]), info.get("meta", {})


def load_state_strict(model, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; any missing, unexpected or mis-shaped key is an error naming them."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shape:
        def show(keys):
            return ", ".join(keys[:8]) + (f" … (+{len(keys) - 8} more)" if len(keys) > 8 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {show(unexpected)}")
        if shape:
            parts.append("shape mismatch: " + show([f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in shape]))
        raise CheckpointError(
            f"{source} does not match the {model.config.name} architecture ({'; '.join(parts)}). "
            "Pick the config it was trained with (rrsis models lists them) or a checkpoint of this config."
        )
    model.load_state_dict(state, strict=True)


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint: ``path`` and the shards its JSON lists."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for part in checkpoint_files(path):
        try:
            part_state = load_file(str(part))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{part} is not a readable safetensors file ({exc}); a checkpoint split into "
                                  "shards needs every file its JSON lists, beside it.") from None
        twice = sorted(set(state) & set(part_state))
        if twice:
            raise CheckpointError(f"{part} repeats keys of an earlier shard: {', '.join(twice[:8])}.")
        state.update(part_state)
    return state


# optional parts that fine-tuning may switch on for a checkpoint trained without them: config use_NAME, keys NAME.*
OPTIONAL_MODULES = ("rus", "ugf", "udlr", "click_refiner", "semantic_head", "ambiguity_head", "twgm_input",
                    "text_position", "error_head", "click_gain_head", "click_policy_head", "component_ranker",
                    "boundary_refiner")


#: Parameters laid out on the S/16 token grid, 1×(g²)×d with g = image_size / 16: the only weights whose shape
#: depends on the input size (Hiera interpolates its own position embedding).
GRID_PARAMETERS = ("twgm.img_pe", "twgm_input.pos")


def resize_grid_parameter(param: torch.Tensor, grid: int) -> torch.Tensor:
    """1×(g²)×d (row-major g×g token grid) → 1×(grid²)×d by bicubic interpolation over the grid."""
    _, n, dim = param.shape
    g = math.isqrt(n)
    if g * g != n:
        raise CheckpointError(f"A token-grid parameter of {n} cells is not square.")
    square = param.float().reshape(1, g, g, dim).permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(square, size=(grid, grid), mode="bicubic", align_corners=False)
    return resized.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(param.dtype)


def load_checkpoint(path: str | Path, text_encoder=None, add_modules=(), rebuild: dict | None = None,
                    image_size: int | None = None, twgm_kv_grid: int | None = None,
                    ranker_context: bool | None = None):
    """Build the model named by ``path``'s JSON config and load its weights strictly. ``path`` is the
    ``.safetensors`` file (or the ``.json`` beside it).

    image_size: build for this input size instead of the checkpoint's (fine-tuning at another size, a multiple
    of 32); the token-grid parameters (:data:`GRID_PARAMETERS`) are interpolated to the new grid,
    ``model.resized_from`` keeps the checkpoint's size (None when unchanged).

    add_modules: optional parts (:data:`OPTIONAL_MODULES`) to switch on although the checkpoint was trained
    without them (fine-tuning); they keep their fresh initialisation, every other key must match exactly.
    ``model.added_modules`` names those actually added.
    rebuild: ``{part: {config field: value}}`` — build ``part`` (a top-level submodule, e.g. ``"twgm"``) with
    changed config fields and keep it freshly initialised instead of loading its weights (fine-tuning that
    replaces a part); ``model.rebuilt_modules`` names them.
    twgm_kv_grid: TWGM attends to the image through keys/values averaged to this grid side instead of the
    checkpoint's setting (:mod:`rrsis_engine.model.twgm`; no weights change).
    ranker_context: True gives the component ranker the context around each region (config ``ranker_context``;
    the new inputs start with zero weights, so its scores are unchanged until it is trained)."""
    from rrsis_engine.model import build_rsam

    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise CheckpointError(f"Checkpoint not found: {path}.")
    cfg, meta = read_checkpoint_config(path)
    state = read_state(path)
    unknown = sorted(set(add_modules) - set(OPTIONAL_MODULES))
    if unknown:
        raise CheckpointError(f"Cannot add {unknown}: optional parts are {', '.join(OPTIONAL_MODULES)}.")
    new = [n for n in OPTIONAL_MODULES if n in add_modules and not getattr(cfg, f"use_{n}")]
    cfg = cfg.with_overrides(**{f"use_{n}": True for n in new})
    rebuild = {part: fields for part, fields in (rebuild or {}).items()
               if any(getattr(cfg, k) != v for k, v in fields.items())}
    for fields in rebuild.values():
        cfg = cfg.with_overrides(**fields)
    if twgm_kv_grid is not None:
        cfg = cfg.with_overrides(twgm_kv_grid=int(twgm_kv_grid))
    if ranker_context is not None:
        cfg = cfg.with_overrides(ranker_context=bool(ranker_context))
    state = upgrade_ranker_state(state, cfg.ranker_context)  # older rankers load with unchanged scores
    resized_from = None
    if image_size and int(image_size) != cfg.image_size:
        if int(image_size) % 32:
            raise CheckpointError(f"Image size {image_size} must be a multiple of 32 (e.g. 256, 384, 512).")
        resized_from = cfg.image_size
        cfg = cfg.with_overrides(image_size=int(image_size))
        state = {k: resize_grid_parameter(v, cfg.image_size // 16) if k in GRID_PARAMETERS else v
                 for k, v in state.items()}
    model = build_rsam(cfg, text_encoder=text_encoder)
    if rebuild:
        parts = tuple(f"{n}." for n in rebuild)
        state = {k: v for k, v in state.items() if not k.startswith(parts)}
        state.update({k: v for k, v in model.state_dict().items() if k.startswith(parts)})
    prefixes = tuple(f"{n}." for n in new)
    if prefixes:
        stale = sorted(k for k in state if k.startswith(prefixes))
        if stale:
            raise CheckpointError(f"{path} already has weights for {', '.join(stale[:4])} although its config "
                                  "has the module off; the checkpoint is inconsistent.")
        state = {**state, **{k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}}
    load_state_strict(model, state, str(path))
    model.checkpoint_meta = meta
    model.checkpoint_path = str(path)
    model.added_modules = tuple(new)
    model.rebuilt_modules = tuple(rebuild)
    model.resized_from = resized_from
    return model


def weights_hash(model, h=None, skip: tuple[str, ...] = ()) -> str:
    """Short sha256 (16 hex digits) over the model's weights, names included, those starting with ``skip`` left out;
    ``h``: a hashlib object already fed with something else (the config)."""
    h = h or hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        if not k.startswith(skip):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()[:16]


def model_hash(model) -> str:
    """Short sha256 over config and weights: identifies a model version (cache keys, store)."""
    cached = getattr(model, "_rrsis_hash", None)
    if cached is not None:
        return cached
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    digest = weights_hash(model, h)
    object.__setattr__(model, "_rrsis_hash", digest)
    return digest


# ---- official SAM 2 / SAM 2.1 checkpoints ---------------------------------------------------------------

def _sam2_key_map(official: dict[str, torch.Tensor], own: dict[str, torch.Tensor]):
    """Yield (our_key, tensor, how) for every official tensor that has a place in RSAM."""
    for key, value in official.items():
        if key.startswith("image_encoder."):
            yield key, value, "copied"
        elif key.startswith("sam_prompt_encoder."):
            yield "prompt_encoder." + key[len("sam_prompt_encoder."):], value, "copied"
        elif key.startswith("sam_mask_decoder."):
            ours = "mask_decoder." + key[len("sam_mask_decoder."):]
            if ours == "mask_decoder.mask_tokens.weight":
                yield ours, value[:1], "token 0 of 4 (single-mask output)"
            elif ours.startswith("mask_decoder.output_hypernetworks_mlps."):
                idx = ours.split(".")[2]
                if idx == "0":
                    yield ours, value, "copied (single-mask hypernetwork)"
            elif ours in own and own[ours].shape != value.shape and ours.startswith("mask_decoder.iou_prediction_head."):
                yield ours, value[:1], "row 0 of 4 (single-mask IoU)"
            else:
                yield ours, value, "copied"


def import_sam2_checkpoint(model, path: str | Path) -> dict[str, str]:
    """Initialise ``model`` from an official SAM 2/2.1 ``.pt`` (``{"model": state_dict}``).

    Returns a report ``{our_key: how}`` for every initialised tensor; keys of ours not in the report keep
    their fresh initialisation (text projection, TWGM, empty sparse embedding, ...). Raises
    :class:`CheckpointError` naming the keys when shapes do not fit (e.g. a Hiera-B+ file into ``rsam-t``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"SAM 2 checkpoint not found: {path}.")
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors of many kinds
        raise CheckpointError(f"{path} is not a SAM 2 checkpoint readable with weights_only=True ({exc}).") from None
    official = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(official, dict) or not any(k.startswith("image_encoder.") for k in official):
        raise CheckpointError(f"{path} has no image_encoder.* weights; it is not a SAM 2 checkpoint.")
    own = model.state_dict()
    report: dict[str, str] = {}
    bad = []
    new_state = {}
    for ours, tensor, how in _sam2_key_map(official, own):
        if ours not in own:
            continue  # memory encoder, object pointers etc. have no place in RSAM
        if own[ours].shape != tensor.shape:
            bad.append(f"{ours} {tuple(tensor.shape)} vs {tuple(own[ours].shape)}")
            continue
        new_state[ours] = tensor.to(own[ours].dtype)
        report[ours] = how
    if bad:
        raise CheckpointError(
            f"{path.name} does not fit {model.config.name}: shape mismatch for {', '.join(bad[:6])}"
            + (f" (+{len(bad) - 6} more)" if len(bad) > 6 else "")
            + ". Use the RSAM config with the same Hiera size (rsam-t for hiera_t, rsam-b+ for hiera_b+)."
        )
    model.load_state_dict(new_state, strict=False)
    object.__setattr__(model, "_rrsis_hash", None)
    return report
