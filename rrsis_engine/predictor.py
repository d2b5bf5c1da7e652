"""Encode once, predict many (SAM 2 style predictor for RSAM).

Caches, so that a click turn runs only the prompt encoder and the MMMD:
- image embedding (V_d, V1, V2): in memory (LRU) and on disk, keyed by image content hash + model hash;
- text features ([GT] + projected BERT tokens): per sentence;
- TWGM output (fused V_d, T_G) and, for models with RUS, the uncertainty logits U: per (image, sentence).

Frames: points N×2 and boxes (x0, y0, x1, y1) are (x, y) = (col, row) pixels of the full-resolution image;
returned masks/logits are H×W in that frame; ``low_res_logits`` are 1×1×(S/4)×(S/4) in the model frame.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from rrsis_engine import ambiguity as A
from rrsis_engine import click_regions, edges, postprocess, spatial_language
from rrsis_engine import quality as Q
from rrsis_engine.errors import CheckpointError, NoImageError, NoTrainedWeightsError, PromptError
from rrsis_engine.imageio import RasterImage, read_image
from rrsis_engine.model import (
    DEFAULT_MODEL,
    REGISTRY,
    ImageFeatures,
    boundary_refiner,
    load_checkpoint,
    model_hash,
)
from rrsis_engine.model import transforms as T
from rrsis_engine.model.checkpoint import is_shard
from rrsis_engine.model.component_ranker import SELECTED_LOGIT
from rrsis_engine.prediction import Prediction
from rrsis_engine.zoom import MAX_ENCODE_MS, ZOOM_MIN_CLICKS, ZOOM_WEIGHT, zoom_box

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 1000
WEIGHTS_DIR = Path(__file__).parent / "weights"


def default_cache_dir() -> Path:
    root = os.environ.get("RRSIS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rrsis"
    )
    return Path(root)


def model_search_dirs() -> list[Path]:
    dirs = [WEIGHTS_DIR, default_cache_dir() / "models"]
    if os.environ.get("RRSIS_MODELS_DIR"):
        dirs.insert(0, Path(os.environ["RRSIS_MODELS_DIR"]))
    return dirs


def find_weights(name: str) -> Path | None:
    """Installed weights for a registry name (``NAME.safetensors`` in the model folders), or None."""
    for d in model_search_dirs():
        p = d / f"{name}.safetensors"
        if p.is_file():
            return p
    return None


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """A registry name or a checkpoint path → the weights file. Raises with what to do when absent."""
    name = str(model) if model is not None else DEFAULT_MODEL
    if name in REGISTRY:
        path = find_weights(name)
        if path is None:
            raise NoTrainedWeightsError(
                f"No trained weights for {name!r} are installed (looked in "
                f"{', '.join(str(d) for d in model_search_dirs())}). rrsis does not predict with random weights: "
                f"train one with `rrsis train --config {name}` or pass --model PATH/TO/model.safetensors."
            )
        return path
    path = Path(name).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.glob("*.safetensors") if not is_shard(p))
        if len(files) != 1:
            raise CheckpointError(f"{path} should contain exactly one .safetensors checkpoint, found {len(files)}.")
        path = files[0]
    if not path.exists():
        raise CheckpointError(
            f"Model {name!r} is neither a known config ({', '.join(REGISTRY)}) nor an existing checkpoint file."
        )
    return path


def load_predictor(model: str | os.PathLike | None = None, device: str | None = None, **kwargs) -> Predictor:
    """Predictor for a registry name (its installed weights) or a checkpoint path (.safetensors + .json)."""
    path = resolve_model_path(model)
    return Predictor(load_checkpoint(path), device=device, **kwargs)


#: ``encoder_precision`` / ``rrsis train --precision`` values
PRECISIONS = ("auto", "bf16", "fp32")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU with bf16, or a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        except AttributeError:  # torch without these probes
            return False
    return False


def resolve_encoder_precision(precision: str, device: torch.device) -> str:
    """``auto`` / ``bf16`` / ``fp32`` → the image encoder's precision on ``device``: auto is bf16 where
    :func:`native_bf16` (the encoder runs about 2× faster on such a CPU, benchmarks/engine.md), else fp32."""
    if precision not in PRECISIONS:
        raise PromptError(f"Encoder precision {precision!r}: choose auto, bf16 or fp32.")
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


class _LRU(OrderedDict):
    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity

    def get(self, key):
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)

    def put(self, key, value):
        self[key] = value


def _largest_label(labels: np.ndarray, excluded=()) -> int:
    """The label of ``labels`` (H×W int, 0 = none) with the most pixels, the ``excluded`` ones left out (the first of
    equals); 0 when none is left."""
    sizes = np.bincount(labels.ravel())
    sizes[[0, *excluded]] = 0
    return int(np.argmax(sizes)) if sizes.any() else 0


def _cached_mask(cache: _LRU, cache_key, shape: tuple[int, int], compute) -> tuple | None:
    """``compute()`` — None, or a tuple of an H×W bool mask (``shape``) and any extras — cached in ``cache`` as the
    mask's bounding box and the pixels in it (a road's region is a sliver of a large image); returns the tuple with
    the mask at full size again, or None."""
    if cache_key in cache:
        cached = cache.get(cache_key)
    else:
        found = compute()
        cached = None
        if found is not None:
            box = ndimage.find_objects(found[0].astype(np.uint8))[0]
            cached = (box, found[0][box], *found[1:])
        cache.put(cache_key, cached)
    if cached is None:
        return None
    mask = np.zeros(shape, dtype=bool)
    mask[cached[0]] = cached[1]
    return (mask, *cached[2:])


class Predictor:
    """RSAM inference with caching. Thread-safe: one model call at a time.

    model: an :class:`rrsis_engine.model.RSAM`. disk_cache: store image embeddings under
    ``$RRSIS_CACHE_DIR/embeddings`` (bounded to ``disk_cache_bytes``, oldest evicted first). zoom_in: from the
    second click on, also predict on a magnified crop around the object (:mod:`rrsis_engine.zoom`); None (auto): only
    while an image-encoder pass takes at most :data:`rrsis_engine.zoom.MAX_ENCODE_MS` here, since each zoomed turn
    encodes its crop (rsam-lite on CPU: yes; rsam-t / rsam-b+ on CPU, 2–5 s a pass: no). encoder_precision: "bf16"
    runs the image encoder under bfloat16 autocast (features are stored as float32; the text, fusion and decoder
    stay float32), "fp32" does not, "auto" (default) picks bf16 where the hardware computes it natively (a CUDA
    GPU with bf16, a CPU with AVX512-BF16 or AMX) — see :func:`resolve_encoder_precision`. edge_refine: the mask of
    every turn is the model's upsampled mask snapped to the image's colour edges (:mod:`rrsis_engine.edges`); the
    next turn's prior stays the model's own S/4 logits (``low_res_logits``). remove_negated_regions: a separate part
    of the shown mask that one of the turn's negative clicks (the session's so far) lies on, and no positive click,
    is removed whole unless such parts outweigh the rest of the mask (:func:`postprocess.negated_regions`); so is
    the branch of a strip (a road crossing the target) such a click lies on (:func:`postprocess.negated_strips`), and
    what is left of a part of the previous turn's mask such a click lies deep in
    (:func:`postprocess.negated_previous_parts`), and the straight stretch of the long, thin colour region (a road)
    such a click lies on, with the kerbs beside it (:func:`postprocess.negated_strip_regions`). Before any positive
    click, the compact object a sentence's spatial words chose goes whole, from the next turn's prior too, when the new
    negative click lies deep in it and the model's answer kept it (:func:`postprocess.rejected_choice`).
    click_fit: a click turn's logits are corrected around clicks the decoder left on the wrong side, until each lies
    on its side (:mod:`rrsis_engine.model.click_fit`). grow_clicks: the long, thin colour region (a road) each positive
    click lies on is added to the model's mask before the snap, cut where negative clicks lie on it
    (:mod:`rrsis_engine.click_regions`). spatial_words: a text turn whose sentence is a category with spatial words
    only ("the leftmost building", "the second largest lake") asks the model for the whole category and picks the object
    by geometry (:mod:`rrsis_engine.spatial_language`); other sentences, or when the words pick none, keep the model's.
    Ships, cars and car parks, which the model hardly finds, are read off the water and the roads it finds, for those
    sentences and for sentences that name only them ("the ship", "all the cars", "the car park":
    :func:`spatial_language.read_off_sentence`).
    rim_clicks: a click on the rim of the mask shown before it (``predict``'s ``previous_mask``) whose answer changes far
    more than that rim (the model dropped the object, or flooded the roads it meets) changes the mask only on its rim
    around the click (:func:`postprocess.rim_click_zone`). A text turn of a sentence about one object whose mask shows
    several look-alikes shows the likeliest alone (with ``spatial_words``; :func:`spatial_language.ranked_objects`), and
    those look-alikes, whole, likeliest first, are its candidates.
    inclusion_clicks: a negative click on a small blob of its own colour that the mask shown covers (a car on the road,
    :func:`click_regions.inclusion_at`), which the model and the negation rules answered by dropping the mask around it
    ("not this road"), cuts that blob and nothing else; once its blob is cut from the mask shown, later turns hide the
    click from the model and the rules and keep the blob cut.
    complete_roofs: a roof the model's mask covers in part is completed to its colour region, before spatial words
    choose among the buildings and in the turns of a sentence about all the buildings
    (:func:`spatial_language.completed_objects`).
    """

    def __init__(self, model, device: str | None = None, disk_cache: bool = True,
                 disk_cache_bytes: int = 2 * 1024**3, memory_images: int = 8, cache_dir: str | Path | None = None,
                 zoom_in: bool | None = None, encoder_precision: str = "auto", edge_refine: bool = True,
                 remove_negated_regions: bool = True, click_fit: bool = True, grow_clicks: bool = True,
                 spatial_words: bool = True, rim_clicks: bool = True, inclusion_clicks: bool = True,
                 boundary_refine: bool = True, complete_roofs: bool = True):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.encoder_precision = resolve_encoder_precision(encoder_precision, self.device)
        self.model = model.to(self.device).eval()
        self.model_name = model.config.name
        self.model_version = model_hash(model)
        self.image_size = model.config.image_size
        self.disk_cache = disk_cache
        self.disk_cache_bytes = disk_cache_bytes
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir() / "embeddings"
        self._images: _LRU = _LRU(memory_images)  # image hash -> ImageFeatures
        self._crops: _LRU = _LRU(4)  # "image hash@x0,y0,x1,y1" -> ImageFeatures of a zoom crop (never on disk)
        self.zoom_in = zoom_in
        self.edge_refine = edge_refine
        self.remove_negated_regions = remove_negated_regions
        self.click_fit = click_fit
        self.grow_clicks = grow_clicks
        self.spatial_words = spatial_words
        self.rim_clicks = rim_clicks
        self.inclusion_clicks = inclusion_clicks
        self.boundary_refine = boundary_refine
        self.complete_roofs = complete_roofs
        # (image hash, x, y) -> the colour region grown from that pixel: (its box, the region's pixels in it) or None
        self._grown: _LRU = _LRU(64)
        # (image hash, x, y) -> that region's straight stretch through the pixel: (its box, its pixels, half-width) or None
        self._strips: _LRU = _LRU(64)
        # (image hash, text, complete_roofs) -> the object the text's spatial words chose: (spec, H×W logits,
        # model-frame logits) or None
        self._spatial: _LRU = _LRU(8)
        # (image hash, spec) -> Predictor._spatial_masks: the masks its words choose among, the logits, the read-off
        self._spatial_masks_of: _LRU = _LRU(8)
        # (image hash, text, complete_roofs) -> the objects its words fit and leave several of, likeliest first (H×W)
        self._look_alikes: _LRU = _LRU(8)
        self._smoothed: _LRU = _LRU(2)  # image hash -> click_regions.smoothed(pixels), H×W×3 uint8
        # image hash -> (a roof's box and pixels -> its colour region, spatial_language.completed_objects' regions)
        self._roof_regions: _LRU = _LRU(2)
        # (image hash, category) -> Predictor._read_off_ground: the ships, cars or car parks and their labels (H×W each)
        self._off_ground: _LRU = _LRU(8)
        self.encode_ms: float | None = None  # the last image-encoder pass (full image or zoom crop) on this device
        self._texts: _LRU = _LRU(256)  # text -> (tokens 1×L×d, mask 1×L)
        # (image hash, text) -> (vd 1×d×h×w, T_G 1×d, U 1×1×h×w or None, σ(ambiguity logit) float or None)
        self._fused: _LRU = _LRU(32)
        self._uncertainty_maps: _LRU = _LRU(8)  # (image hash, text) -> σ(U) H×W and on its S/16 grid (read-only)
        self._lock = threading.RLock()
        self.image: RasterImage | None = None
        self.stats = {"embed_computed": 0, "embed_disk_hits": 0, "embed_memory_hits": 0}
        cal = getattr(model, "checkpoint_meta", {}).get("ambiguity_calibration")
        #: fitted by ``rrsis calibrate``; None: the baseline score (candidate entropy) and threshold
        self.ambiguity_calibration = A.AmbiguityCalibration.from_dict(cal) if cal else None
        cal = getattr(model, "checkpoint_meta", {}).get("quality_calibration")
        #: fitted by ``rrsis calibrate``; None: predictions carry no quality estimate
        self.quality_calibration = Q.QualityCalibration.from_dict(cal) if cal else None

    # ---- validation ------------------------------------------------------------------------------
    @staticmethod
    def validate_text(text) -> str:
        """Normalise an expression; PromptError when it is not usable text."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise PromptError("The expression is not valid UTF-8 text; retype it.") from None
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise PromptError(f"The expression must be text, got {type(text).__name__}.")
        text = "".join(ch if ch.isspace() or unicodedata.category(ch)[0] != "C" else ""
                       for ch in unicodedata.normalize("NFC", text))
        text = " ".join(text.split())
        if len(text) > MAX_TEXT_CHARS:
            raise PromptError(
                f"The expression is {len(text)} characters long; keep it under {MAX_TEXT_CHARS} "
                "(one sentence about one object works best)."
            )
        return text

    def _image_or_raise(self, image: RasterImage | None) -> RasterImage:
        image = image or self.image
        if image is None:
            raise NoImageError("No image is set: call set_image (open an image) before prompting.")
        return image

    def validate_point(self, x, y, image: RasterImage | None = None) -> tuple[float, float]:
        image = self._image_or_raise(image)
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            raise PromptError(f"Click coordinates must be numbers, got ({x!r}, {y!r}).") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PromptError(f"Click coordinates must be finite, got ({x}, {y}).")
        if not (0 <= x < image.width and 0 <= y < image.height):
            raise PromptError(
                f"Click ({x:.0f}, {y:.0f}) is outside the {image.width}×{image.height} image; click on the image."
            )
        return x, y

    def validate_box(self, box, image: RasterImage | None = None) -> tuple[float, float, float, float]:
        image = self._image_or_raise(image)
        try:
            x0, y0, x1, y1 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise PromptError(f"A box is four numbers x0, y0, x1, y1; got {box!r}.") from None
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise PromptError("Box coordinates must be finite numbers.")
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        x0, x1 = max(0.0, x0), min(float(image.width), x1)
        y0, y1 = max(0.0, y0), min(float(image.height), y1)
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise PromptError("The box does not overlap the image or is empty; drag a box over the object.")
        return x0, y0, x1, y1

    # ---- image -----------------------------------------------------------------------------------
    def set_image(self, image, bands: tuple[int, ...] | None = None) -> RasterImage:
        """Read and embed an image (cached); it becomes the default image for ``predict``."""
        raster = read_image(image, bands=bands)
        with self._lock:
            self._features(raster)
        self.image = raster
        return raster

    def _key(self, image: RasterImage) -> str:
        key = image.meta.get("_rrsis_hash")
        if key is None:
            key = image.meta["_rrsis_hash"] = image.content_hash()
        return key

    def _features(self, image: RasterImage) -> ImageFeatures:
        key = self._key(image)
        feats = self._images.get(key)
        if feats is not None:
            self.stats["embed_memory_hits"] += 1
            return feats
        feats = self._read_disk(key)
        if feats is None:
            feats = self._encode(image.pixels)
            self.stats["embed_computed"] += 1
            self._write_disk(key, feats)
        else:
            self.stats["embed_disk_hits"] += 1
        self._images.put(key, feats)
        return feats

    def _encode(self, pixels: np.ndarray) -> ImageFeatures:
        """Run the image encoder on H×W×3 uint8 pixels (resized and padded to S×S), timing it (``encode_ms``)."""
        t = time.perf_counter()
        x = T.image_to_tensor(pixels, self.image_size).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                    enabled=self.encoder_precision == "bf16"):
            feats = self.model.encode_image(x)
        feats = ImageFeatures(vd=feats.vd.float(), v1=feats.v1.float(), v2=feats.v2.float())
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.encode_ms = (time.perf_counter() - t) * 1e3
        return feats

    def zoom_enabled(self) -> bool:
        """Whether click turns get the zoom-in pass now: ``zoom_in`` if set, else whether the last encoder pass took
        at most MAX_ENCODE_MS (True before any was timed)."""
        if self.zoom_in is not None:
            return bool(self.zoom_in)
        return self.encode_ms is None or self.encode_ms <= MAX_ENCODE_MS

    def _disk_path(self, key: str) -> Path:
        precision = "" if self.encoder_precision == "fp32" else f":{self.encoder_precision}"  # fp32: names as before
        digest = hashlib.sha256(f"{key}:{self.model_version}{precision}".encode()).hexdigest()[:40]
        return self.cache_dir / f"{digest}.safetensors"

    def _read_disk(self, key: str) -> ImageFeatures | None:
        if not self.disk_cache:
            return None
        path = self._disk_path(key)
        if not path.is_file():
            return None
        from safetensors.torch import load_file

        try:
            t = load_file(str(path), device=str(self.device))
            os.utime(path)
            return ImageFeatures(vd=t["vd"], v1=t["v1"], v2=t["v2"])
        except Exception as exc:  # a truncated/corrupt cache file is simply recomputed
            log.warning("ignoring unreadable embedding cache file %s (%s)", path, exc)
            path.unlink(missing_ok=True)
            return None

    def _write_disk(self, key: str, feats: ImageFeatures) -> None:
        if not self.disk_cache:
            return
        from safetensors.torch import save_file

        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            path = self._disk_path(key)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            save_file({"vd": feats.vd.contiguous().cpu(), "v1": feats.v1.contiguous().cpu(),
                       "v2": feats.v2.contiguous().cpu()}, str(tmp))
            tmp.replace(path)
            self._trim_disk()
        except OSError as exc:
            log.warning("embedding disk cache disabled for this write: %s", exc)

    def _trim_disk(self) -> None:
        files = sorted(self.cache_dir.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        while files and total > self.disk_cache_bytes:
            p = files.pop(0)
            total -= p.stat().st_size
            p.unlink(missing_ok=True)

    # ---- text + fusion ---------------------------------------------------------------------------
    def _text(self, text: str):
        cached = self._texts.get(text)
        if cached is None:
            hidden, mask = self.model.text_embed([text])
            cached = self.model.encode_text(hidden, mask)
            self._texts.put(text, cached)
        return cached

    def _fuse(self, key: str, feats: ImageFeatures, text: str):
        """→ (fused vd, T_G, U or None, ambiguity-head probability or None); U (RUS) and the ambiguity head depend on
        image and text only, so they are cached with them."""
        cached = self._fused.get((key, text))
        if cached is None:
            tokens, mask = self._text(text)
            vd, t_global, u = self.model.fuse_with_uncertainty(feats.vd, tokens, mask)
            amb = self.model.ambiguity(vd, t_global) if text else None
            cached = (vd, t_global, u, None if amb is None else float(torch.sigmoid(amb[0, 0])))
            self._fused.put((key, text), cached)
        return cached

    def _uncertainty(self, key: str, text: str, u: torch.Tensor, image: RasterImage):
        """σ(U) in the image frame (H×W, U logits upsampled bilinearly, padding cropped) and on its S/16 grid.
        U does not change with clicks, so the maps are cached with (image, text); they are read-only."""
        cached = self._uncertainty_maps.get((key, text))
        if cached is None:
            full = torch.sigmoid(T.logits_to_image(u, image.height, image.width, self.image_size))[0, 0]
            uh, uw = T.valid_shape(image.height, image.width, u.shape[-1])
            cached = (full.float().cpu().numpy(), torch.sigmoid(u[0, 0, :uh, :uw]).float().cpu().numpy())
            for a in cached:
                a.setflags(write=False)
            self._uncertainty_maps.put((key, text), cached)
        return cached

    # ---- predict ---------------------------------------------------------------------------------
    def predict(self, text: str = "", points=None, labels=None, box=None, mask_input=None,
                image: RasterImage | None = None, previous_mask: np.ndarray | None = None,
                previous_text: str = "", previous_candidates: Sequence[np.ndarray] = ()) -> Prediction:
        """One turn.

        text: the expression (may be empty when clicks or a box are given). points: N×2 (x, y) pixels;
        labels: N ints (1 positive, 0 negative); box: (x0, y0, x1, y1) pixels; mask_input: a previous
        prediction's ``low_res_logits`` (1×1×S/4×S/4) used as the prior. image: the RasterImage to predict
        on (default: the last ``set_image``). previous_mask: for a click turn whose new click is the last of
        ``points``, the mask shown before it (H×W bool): a click on its rim changes it only around the click
        (:func:`postprocess.rim_click_zone`; with ``rim_clicks``). previous_text: for a follow-up sentence (``text``
        with ``mask_input``), the sentence it refines: "the building" → "no, the one further left" picks among that
        sentence's look-alikes, "the leftmost road" → "no, the road further right" moves from its choice
        (:meth:`_followup_choice`). previous_candidates: the candidate regions outlined with the turn before (H×W bool
        each, numbered 1, 2, … in the front ends): a follow-up that picks one by an extreme, a size or a colour ("the one
        on the left", "the bigger one") picks among them.
        """
        t0 = time.perf_counter()
        image = self._image_or_raise(image)
        text = self.validate_text(text)
        pts, lbl = self._prompt_points(points, labels, box, image)
        clicks = np.asarray(points, dtype=np.float64).reshape(-1, 2) if points is not None else np.zeros((0, 2))
        # the clicks come first in the prompts, then box corners
        click_labels = lbl[0, :len(clicks)].cpu().numpy() if len(clicks) else np.zeros(0, dtype=np.int64)
        if not text and pts is None:
            raise PromptError("Nothing to segment: type an expression, click on the object or draw a box.")
        if previous_mask is not None and np.shape(previous_mask) != (image.height, image.width):
            raise PromptError(f"The previous mask is {np.shape(previous_mask)}, the image {image.height}×{image.width} "
                              "pixels: pass the mask shown on this image (rows × columns), or none.")
        previous_mask = None if previous_mask is None else np.asarray(previous_mask, bool)
        # a first click, negative, on a small blob the mask covers (a car on the road): as the new click it cuts its
        # blob when the model and the negation rules read it as "not this road" and dropped the road; at later turns,
        # once its blob is cut from the mask shown, it is settled and the model and the rules no longer see it
        cut = new_blob = None
        clicks_given = len(clicks)
        if self.inclusion_clicks and (click_labels == 0).any() and previous_mask is not None:
            cut, new_blob = self._inclusion(image, clicks, click_labels, previous_mask)
            if cut is not None:  # the first click is settled
                clicks, click_labels = clicks[1:], click_labels[1:]
                pts, lbl = self._prompt_points(clicks, click_labels, box, image)
        timings = {}
        with self._lock, torch.inference_mode():
            key = self._key(image)
            t = time.perf_counter()
            feats = self._features(image)
            timings["embed_ms"] = (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            # the object the sentence's spatial words pick by geometry, if they do: the text turn shows it; a click or
            # box turn on it is fused with the category's sentence, which agrees with the prior (the sentence itself
            # pointed the model elsewhere, and a click then let it jump there: synthetic validation 0.94 → 0.00)
            spatial = None
            if self.spatial_words and text:
                spatial = self._spatial_object(key, feats, image, text)
                timings["spatial_ms"] = (time.perf_counter() - t) * 1e3
                t = time.perf_counter()
            fused_text = spatial[0].class_query if spatial is not None and pts is not None else text
            vd, t_global, u, ambiguity_prob = self._fuse(key, feats, fused_text)
            timings["text_fuse_ms"] = (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            prior = None
            if mask_input is not None:
                prior = torch.as_tensor(mask_input, dtype=torch.float32, device=self.device).reshape(
                    1, 1, self.image_size // 4, self.image_size // 4)
            low, iou, obj = self.model.decode(vd, t_global, feats, pts, lbl, prior, uncertainty=u,
                                              fit_clicks=self.click_fit)
            timings["decode_ms"] = (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            # a text turn's logits before the component ranker chose among their regions; follow-up sentences ("the
            # one further left", the previous mask as the prior) are ranked too: synthetic validation follow-up IoU
            # 0.317 → 0.495 (docs/training.md, "Stop 35: ranking follow-up sentences"); click and box turns are not
            unranked = None
            if self.model.component_ranker is not None and text and pts is None:
                unranked, low = low, self._select_regions(low, vd, feats.v1, text, image)
                timings["rank_ms"] = (time.perf_counter() - t) * 1e3
                t = time.perf_counter()
            logits = T.logits_to_image(low, image.height, image.width, self.image_size)[0, 0].float().cpu().numpy()
            zoom = self.zoom_enabled() and len(clicks) >= ZOOM_MIN_CLICKS
            negating = self.remove_negated_regions and (click_labels == 0).any()
            # a follow-up sentence ("no, the one further left") is read against the sentence before it
            follow_up = spatial is None and pts is None and prior is not None and bool(previous_text) and \
                self.spatial_words
            # the previous turn's mask as the model drew it (the prior), H×W bool, for the zoom, the negative clicks,
            # the object the spatial words chose and the object a follow-up corrects
            previous = None if prior is None or not (zoom or negating or spatial is not None or follow_up) else \
                T.logits_to_image(prior, image.height, image.width, self.image_size)[0, 0].cpu().numpy() > 0
            others = None  # H×W bool: a click or box turn's pixels of objects the sentence does not mean
            on_top = None  # H×W float32: a click turn's logits when its clicks lie on ships or cars read off their ground
            followed = self._followup_choice(key, feats, image, text, previous_text, previous,
                                             previous_candidates) if follow_up else None
            if followed is not None:
                # a follow-up that picks one of the look-alikes the sentence before left, or corrects the object it chose,
                # by geometry (synthetic validation follow-ups 0.34 -> 0.82, docs/training.md "Follow-up sentences by
                # geometry")
                logits, low = followed
                unranked = None
            elif spatial is not None and pts is None:
                logits, low = spatial[1].copy(), spatial[2]
                unranked = None  # candidates and ambiguity cues read the chosen object, not the model's own guess
                named = spatial_language.read_off_sentence(text)
                if named is not None and named[1] == "one":  # "the ship": one is shown, every ship may be meant
                    every_one = np.where(self._read_off_ground(key, feats, image, named[0])[0], 10.0, -10.0).astype(
                        np.float32)
                    unranked = T.image_logits_to_model(every_one, self.image_size // 4).to(low.device, low.dtype)
            elif spatial is not None:
                # the category's other objects leave a click or box turn's mask: only those on the previous mask (or
                # on the chosen object, without a prior) or under a positive click stay
                chosen = spatial[1] > 0 if previous is None else previous
                if spatial[0].category in spatial_language.ON_TOP_CATEGORIES:  # a car park is trimmed, not rejected
                    on_top = self._clicked_off_ground(key, feats, image, text, spatial[0].category, chosen, clicks,
                                                      click_labels, logits)
                if on_top is not None:  # the ships or cars the clicks picked are the answer, rejected ones gone
                    logits = on_top
                    low = T.image_logits_to_model(logits, self.image_size // 4).to(low.device, low.dtype)
                elif spatial[0].category in spatial_language.READ_OFF_REGIONS and (regions := self._read_off_ground(
                        key, feats, image, spatial[0].category)[0]).any():
                    # the model's answer for car parks is the roads: the car parks read off them, the one shown before
                    # kept (the clicks' own rules below trim it), the others as the model answers at the clicks
                    logits = np.where(regions, np.where(chosen, 10.0, logits), np.minimum(logits, -10.0)).astype(
                        np.float32)
                    low = T.image_logits_to_model(logits, self.image_size // 4).to(low.device, low.dtype)
                else:
                    if (click_labels == 1).sum() == 1 and click_labels[-1] == 1 and \
                            spatial_language.picks_another_object(logits > 0, spatial[0].category, chosen, clicks[-1],
                                                                  image.pixels):
                        # the labeller's first positive click lies on another look-alike: not that one, this one; it
                        # had added the clicked field to the wrong one (synthetic validation "the largest yellow
                        # field": one click 0.44 → 0.94; docs/training.md, "Four engine fixes for the first click and
                        # for roads")
                        chosen = np.zeros_like(chosen)
                    others = spatial_language.other_objects(logits > 0, spatial[0].category, chosen,
                                                            clicks[click_labels == 1])
            elif self.spatial_words and text and (click_labels == 1).any() and \
                    (one_object := spatial_language.parse_object(text)) is not None:
                # a sentence about one object whose words did not pick it ("the farm plot" among three): a positive
                # click picks it, and the look-alikes no positive click lies on leave the mask
                others = spatial_language.unclicked_objects(
                    logits > 0, one_object.category, clicks[click_labels == 1], image.pixels,
                    previous_mask)
            if others is not None and others.any():
                logits = np.where(others, -10.0, logits).astype(np.float32)
                low = T.image_logits_to_model(logits, self.image_size // 4).to(low.device, low.dtype)
            zoomed = False
            if zoom:
                t_zoom = time.perf_counter()
                reference = logits > 0 if previous is None else previous
                zoomed = self._zoom_refine(image, key, logits, reference, clicks, click_labels, pts, lbl)
                if zoomed:
                    timings["zoom_ms"] = (time.perf_counter() - t_zoom) * 1e3
            unc, unc_low = self._uncertainty(key, fused_text, u, image) if u is not None else (None, None)
            error = gain = policy = None
            m = self.model
            if m.error_head is not None or m.click_gain_head is not None or m.click_policy_head is not None:
                # the turn's final (zoomed) logits: where they are likely wrong, where the best next click goes or
                # what one more click would gain
                final = T.image_logits_to_model(logits, self.image_size // 4).to(self.device) if zoomed else low
                error = m.turn_error(final, feats.v1, pts, lbl, prior, None, u)
                policy = m.click_policy(final, feats.v1, pts, lbl, prior, None, u)
                if policy is None:  # with the policy head the gain map places nothing
                    gain = m.click_gain(final, feats.v1, pts, lbl, prior, None, u)
            # candidates and ambiguity cues read the model's own map (the unranked one of a ranked text turn), as
            # they were calibrated on it, not the snapped mask
            candidate_logits = (logits, low) if unranked is None else (
                T.logits_to_image(unranked, image.height, image.width, self.image_size)[0, 0].float().cpu().numpy(),
                unranked)
            # the mask the labeler gets: the model's logits with the positive clicks' colour regions, snapped to the
            # image's colour edges (the clicks seeding the snap), less what negative clicks rule out
            shown = logits
            if unc is None:  # the margin baseline reads the model's probabilities, not the snapped (saturated) ones
                unc = postprocess.margin_uncertainty(postprocess.sigmoid(logits))
            if self.spatial_words and self.complete_roofs and text and box is None and spatial is None and \
                    (every := spatial_language.class_sentence_category(text)) in spatial_language.COMPLETED_CATEGORIES:
                # every roof of "all the buildings" the mask covers in part, completed to its colour region (synthetic
                # validation class sentences about buildings 0.881 -> 0.892); in click turns too, but for the roofs a
                # negative click lies on
                rows, cols = postprocess.point_pixels(clicks[click_labels == 0], shown.shape)
                if key not in self._roof_regions:  # the roofs' regions, kept for the turns that follow
                    self._roof_regions.put(key, _LRU(256))
                objects = [o for o in spatial_language.completed_objects(
                    spatial_language.objects_in(shown > 0, every), self._smoothed_pixels(image, key),
                    self._roof_regions.get(key)) if not o.mask[rows, cols].any()]
                if objects:
                    grown = np.logical_or.reduce([o.mask for o in objects]) & (shown <= 0)
                    shown = np.where(grown, 1.0, shown).astype(np.float32)
            if self.grow_clicks and (click_labels == 1).any():
                t_grow = time.perf_counter()
                grown = self._grown_regions(image, key, clicks, click_labels)
                if grown is not None and others is not None:
                    grown = grown & ~others  # a road network grown from a click on one road: not the roads it crosses
                if grown is not None:
                    shown = np.where(grown, np.maximum(shown, 10.0), shown).astype(np.float32)
                timings["grow_ms"] = (time.perf_counter() - t_grow) * 1e3
            if self.edge_refine:
                t_edges = time.perf_counter()
                shown = edges.refined_logits(edges.snap_to_edges(
                    image.pixels, shown > 0, self.image_size // 4,
                    clicks=clicks, click_labels=click_labels))
                timings["edges_ms"] = (time.perf_counter() - t_edges) * 1e3
            negated = None
            if negating:
                t_grow = time.perf_counter()
                strips = [self._colour_strip(image, key, x, y) for x, y in clicks[click_labels == 0]]
                timings["grow_ms"] = timings.get("grow_ms", 0.0) + (time.perf_counter() - t_grow) * 1e3
                negated = postprocess.negated_by_clicks(shown > 0, clicks, click_labels, previous, strips,
                                                        trim_only=spatial is not None,
                                                        class_sentence=spatial_language.is_class_sentence(text))
                if negated.any():
                    shown = np.where(negated, np.minimum(shown, -10.0), shown).astype(np.float32)
            # a click on a ship or car read off its ground picks or rejects it whole: its outline is the colours', no rim
            if self.rim_clicks and previous_mask is not None and len(clicks) and on_top is None:
                t_rim = time.perf_counter()
                zone = postprocess.rim_click_zone(previous_mask, shown > 0, *clicks[-1], click_labels[-1] == 1,
                                                  max(image.height, image.width) / (self.image_size // 4),
                                                  local_only=clicks_given == 1)  # a touch-up of the text turn
                if zone is not None:  # the mask shown before, changed only on its rim around the click; so is the prior
                    shown = np.where(zone, shown, np.where(previous_mask, 10.0, -10.0)).astype(np.float32)
                    if prior is not None:
                        low = torch.where(self._model_cells(zone, low.device), low, prior.to(low.dtype))
                timings["rim_ms"] = (time.perf_counter() - t_rim) * 1e3
            if negating and spatial is not None and previous_mask is not None and click_labels[-1] == 0 and \
                    not (click_labels == 1).any() and \
                    (rejected := postprocess.rejected_choice(previous_mask, shown > 0, *clicks[-1])) is not None:
                # the words chose the wrong object and the model kept it under a negative click in its middle: it goes,
                # from the next turn's prior too (which tells the spatial rules above what the labeller has kept)
                shown = np.where(rejected, np.minimum(shown, -10.0), shown).astype(np.float32)
                low = torch.where(self._model_cells(rejected, low.device), low.clamp(max=-SELECTED_LOGIT), low)
            likeliest = None  # H×W bool: the look-alike a sentence about one object shows alone
            look_alikes = []  # the objects of the mask shown it was chosen from (H×W bool each, likeliest first)
            # the objects a turn's words leave ("the building in the lower part", three there; none for words that
            # choose one, or none), every one and those no negative click lies on
            every_left = self._look_alikes_left(key, feats, image, text, np.zeros((0, 2), np.float32)) if (
                self.spatial_words and text and spatial is None and box is None and not (click_labels == 1).any()) \
                else []
            words_leave = self._look_alikes_left(key, feats, image, text, clicks[click_labels == 0]) if every_left else []
            if words_leave and not any(np.count_nonzero(m & (shown > 0)) * 2 > np.count_nonzero(m) for m in every_left):
                # the mask holds none of them (not half of any): the likeliest, not the model's mask elsewhere
                # (synthetic test 015: 0.00 -> 0.89); after negative clicks that took the one shown (not trimmed it:
                # then it still holds half of it), the likeliest they do not lie on (validation 011: the negative click
                # on the house shown left 18 pixels of it, 0.11, and now shows the other house; docs/training.md
                # "Candidates are the look-alikes")
                likeliest = words_leave[0]
                shown = np.where(likeliest, 10.0, np.minimum(shown, -10.0)).astype(np.float32)
            elif self.spatial_words and text and spatial is None and box is None and not (click_labels == 1).any() \
                    and (one_object := spatial_language.parse_object(text)) is not None:
                # a text turn of a sentence about one object ("the farm plot") whose mask shows several look-alikes
                # shows the likeliest alone (synthetic validation NoC@85 1.10 → 0.82, docs/training.md "One object for
                # a sentence about one"); the others stay in the prior, and a negative click on the one shown shows
                # the likeliest of the others alone, not all of them (synthetic validation NoC@85 1.37 → 1.20, "Not
                # this one: the next look-alike alone")
                t_one = time.perf_counter()
                # the objects left after the negative clicks' removals: a click that trimmed the object shown keeps it,
                # what is left of one they rejected is no look-alike of its own
                look_alikes = spatial_language.ranked_objects(shown > 0, one_object.category, logits, clicks,
                                                              image.pixels, removed=negated)
                likeliest = look_alikes[0] if look_alikes else None
                if likeliest is not None:
                    shown = np.where((shown > 0) & ~likeliest, np.minimum(shown, -10.0), shown).astype(np.float32)
                timings["likeliest_ms"] = (time.perf_counter() - t_one) * 1e3
            if new_blob is not None and self._dropped_around(previous_mask, shown > 0, new_blob):
                # the new click only cuts its blob: the mask shown before without it, the prior as it was
                shown = np.where(previous_mask & ~new_blob, 10.0, -10.0).astype(np.float32)
                low = prior.to(low.device, low.dtype) if prior is not None else low
            if cut is not None:
                shown = np.where(cut, np.minimum(shown, -10.0), shown).astype(np.float32)
            if self.spatial_words and text and box is None and spatial is None and not (click_labels == 1).any() \
                    and not (shown > 0).any() and (look_alikes := self._look_alikes_left(
                        key, feats, image, text, clicks[click_labels == 0])):
                # the words leave several objects and the model's own turn shows none of them: the likeliest, not
                # nothing (synthetic validation 155, "find the grove at the top of the image", two groves there: 0.00
                # -> 0.60; 247, 275, 280 as well); after negative clicks, the likeliest of those they do not lie on
                # (synthetic test 031, "find the structure in the south": the one shown first was the other, and the
                # negative click on it left nothing)
                # (the prior for the next turn stays the model's: a positive click on the grove shown then grew it to
                # 0.89, from a prior of that grove to 0.68)
                shown = np.where(look_alikes[0], 10.0, shown).astype(np.float32)
            if self.boundary_refine and m.boundary_refiner is not None:
                # the outline of the mask shown, redrawn from the image colours within a few pixels (the clicked
                # pixels keep their label), for a model with a boundary refiner (docs/training.md, "The boundary
                # refiner": stop 58's, not shipped, was better on the synthetic test split and worse on real images)
                t_outline = time.perf_counter()
                outlined = boundary_refiner.refine_mask(m.boundary_refiner, image.pixels, shown > 0, clicks,
                                                        click_labels)
                shown = np.where(outlined, np.maximum(shown, 10.0), np.minimum(shown, -10.0)).astype(np.float32)
                timings["outline_ms"] = (time.perf_counter() - t_outline) * 1e3
        pred = self._finish(shown, low.detach().clone(), float(iou[0, 0]), float(torch.sigmoid(obj[0, 0])),
                            uncertainty=unc, uncertainty_low=unc_low, clicks=clicks, ambiguity_prob=ambiguity_prob,
                            turn_error=error, click_gain=gain, click_policy=policy,
                            candidate_logits=candidate_logits)
        if negated is not None and negated.any():
            # what the labeller's negative clicks removed is settled: the map (the model's, which still holds it) says so
            pred.uncertainty = np.where(negated, 0.0, pred.uncertainty).astype(np.float32)
        pred.quality = Q.estimate_quality(pred, len(clicks), self.quality_calibration)
        look_alikes = words_leave if len(words_leave) > 1 else look_alikes  # the candidates: the words' objects first
        if len(look_alikes) > 1 and pred.offers_choice:
            # the look-alikes themselves, whole and snapped, as the candidates to choose from (the ambiguity cues and
            # the estimated IoU above read the model's map, as calibrated): picking one by its number gives that
            # object, not a coarse blob of the map that may hold two of them (synthetic test, ambiguous sentences, the
            # best number typed: docs/training.md "Candidates are the look-alikes")
            pred.candidates = postprocess.candidates_from_objects(look_alikes, logits)
        if likeliest is not None and len(clicks):
            # after negative clicks, of the look-alike shown: "is it this one?" — a positive click keeps it alone
            pred.suggested_click = spatial_language.confirmation_click(likeliest)
        timings["post_ms"] = (time.perf_counter() - t) * 1e3 - sum(timings.get(k, 0.0) for k in (
            "zoom_ms", "edges_ms", "grow_ms", "rim_ms", "likeliest_ms", "outline_ms"))
        pred.timings = timings
        pred.latency_ms = (time.perf_counter() - t0) * 1e3
        return pred

    def _spatial_object(self, key: str, feats: ImageFeatures, image: RasterImage,
                        text: str) -> tuple[spatial_language.SpatialSpec, np.ndarray, torch.Tensor] | None:
        """The object a sentence of a category and spatial words means (:mod:`rrsis_engine.spatial_language`), from
        the model's text turn for the whole category (``spec.class_query``, without a prior: a follow-up's previous
        mask would narrow it): the parsed spec, the object's logits in the image frame, H×W float32 (read-only; the
        category's other objects pushed to -10) and the same in the model frame, 1×1×(S/4)×(S/4), the text turn's
        prior for the next; None when the sentence has other words or its words pick no object of that mask. Cached
        per image and sentence."""
        cache_key = (key, text, self.complete_roofs)
        if cache_key in self._spatial:
            return self._spatial.get(cache_key)
        spec = spatial_language.parse(text)
        found = None if spec is None else self._spatial_choice(key, feats, image, spec)
        if spec is None and (named := spatial_language.read_off_sentence(text)) is not None:
            spec, found = spatial_language.SpatialSpec(named[0]), self._off_ground_choice(key, feats, image, *named)
        result = None if found is None else (spec, *found)
        if result is not None:
            result[1].setflags(write=False)
        self._spatial.put(cache_key, result)
        return result

    def _spatial_choice(self, key: str, feats: ImageFeatures, image: RasterImage, spec: spatial_language.SpatialSpec,
                        also: np.ndarray | None = None) -> tuple[np.ndarray, torch.Tensor] | None:
        """:meth:`_spatial_object` for a parsed sentence: (image-frame logits, model-frame logits) or None. The
        model-frame logits are those of a ranked text turn (:func:`component_ranker.select_components`): the object's
        cells scaled so that their peak is SELECTED_LOGIT, the rest at most −SELECTED_LOGIT; the pixels of a roof
        completed beyond the model's mask (:func:`spatial_language.completed_objects`) at least +1, their cells at
        least SELECTED_LOGIT. A follow-up sentence after a prior as confident as the category's own logits (+8) failed
        where the ranked prior worked (synthetic validation follow-ups "not this one, the building to its right": 0.00
        against 0.92). also: H×W bool, more pixels of ``spec.category`` to choose among (a follow-up's)."""
        masks, logits_of, read_off = self._spatial_masks(key, feats, image, spec)
        if also is not None:
            masks = {**masks, spec.category: masks[spec.category] | also}
        # ships and cars read off their ground are whole objects, not the regions they lie in (their colour is theirs);
        # roofs the mask covers in part are completed to their colour regions
        chosen = spatial_language.resolve(spec, masks, image.pixels,
                                          frozenset(read_off & spatial_language.ON_TOP_CATEGORIES),
                                          self._completion_pixels(image, key))
        return None if chosen is None else self._chosen_logits(chosen, spec.category, logits_of, read_off)

    def _chosen_logits(self, chosen: np.ndarray, category: str, logits_of: dict[str, tuple[np.ndarray, torch.Tensor]],
                       read_off: set[str]) -> tuple[np.ndarray, torch.Tensor]:
        """:meth:`_spatial_choice`'s logits for the object ``chosen`` (H×W bool) of ``category``, from the model's logits
        of the category (``logits_of``, :meth:`_spatial_masks`)."""
        logits, low = logits_of[category]
        beyond = chosen & (logits <= 0)  # a roof completed beyond the model's mask
        logits = np.where(chosen, np.maximum(logits, 1.0), np.where(logits <= 0, logits, -10.0)).astype(np.float32)
        if category in read_off:  # the model's logits there are negative or its mask another object's
            return self._colour_choice(chosen, logits, low)
        cells = self._model_cells(chosen, low.device)
        peak = low[cells].max().clamp(min=SELECTED_LOGIT) if cells.any() else low.new_tensor(SELECTED_LOGIT)
        low = torch.where(cells, torch.where(low > 0, low * (SELECTED_LOGIT / peak), low), low.clamp(max=-SELECTED_LOGIT))
        if beyond.any():
            low = torch.where(self._model_cells(beyond, low.device), low.clamp(min=SELECTED_LOGIT), low)
        return logits, low

    def _followup_choice(self, key: str, feats: ImageFeatures, image: RasterImage, text: str, previous_text: str,
                         previous: np.ndarray, candidates: Sequence[np.ndarray] = ()
                         ) -> tuple[np.ndarray, torch.Tensor] | None:
        """The object a follow-up sentence means, as :meth:`_spatial_choice` gives it, or None (the model's turn).

        After a sentence whose words left several look-alikes ("the building at the top"), a follow-up that picks one
        (:func:`spatial_language.parse_followup`: "no, the one further left") is both sentences' words as one spec
        ("the building at the top, the one furthest west"), chosen among the objects of the model's mask of the
        category and of the sentence before's own map (where the candidates shown with it came from). After a
        sentence whose words chose one object ("the leftmost road"), a correction relative to the mask shown
        (``previous``, H×W bool, the previous turn's logits above zero: after "no, the road further right" it is the
        road moved to, so saying it again moves on; :func:`spatial_language.parse_correction`: "no, the road further right", "also the one
        next to it"; "the one further left" too) moves to or adds the nearest object of its category
        (:func:`spatial_language.corrected`). With the ``candidates`` outlined with the sentence before (H×W bool each),
        a follow-up that picks one ("the one on the left", "the bigger one") picks among those the labeller saw."""
        first = spatial_language.parse_object(previous_text)
        if first is None:
            return None
        category = first.category
        pick = spatial_language.parse_followup(text, category)
        if pick is not None and 1 < len(candidates) < postprocess.MAX_CANDIDATES and \
                (chosen := spatial_language.picked_candidate(pick, candidates, image.pixels)) is not None:
            # the numbered regions on screen are what "the one on the left" is read against (a NAIP sample: "a lake"
            # outlined two, and the follow-up had chosen among the objects of the sentence's own map, neither of them);
            # as many as can be outlined may leave some out (synthetic test 088: the house "further right" was not
            # among the eight), and then the words choose among all the category's objects as before
            _, logits_of, read_off = self._spatial_masks(key, feats, image, spatial_language.SpatialSpec(category))
            return self._chosen_logits(chosen, category, logits_of, read_off)
        shown = self._spatial_object(key, feats, image, previous_text)
        if shown is None:  # the words before left several look-alikes, or the model answered them
            if pick is None or first.extreme is not None or first.size is not None or (pick.color and first.color):
                return None
            # the look-alikes outlined as candidates came from the sentence before's own unranked map, which can hold
            # objects the category's mask misses (a NAIP sample: "a lake" outlined eight, "all the water" found two)
            first_map, _ = self._unprompted_logits(key, feats, previous_text)
            outlined = T.logits_to_image(first_map, image.height, image.width, self.image_size)[0, 0] > 0
            return self._spatial_choice(key, feats, image, dataclasses.replace(
                first, extreme=pick.extreme, size=pick.size, rank=pick.rank, color=pick.color or first.color),
                also=outlined.cpu().numpy())
        correction = spatial_language.parse_correction(text, category)
        if correction is None and pick is not None and pick.extreme is not None:
            correction = ("redirect", pick.extreme)
        if correction is None:
            return None
        masks, logits_of, read_off = self._spatial_masks(key, feats, image, spatial_language.SpatialSpec(category))
        chosen = spatial_language.corrected(correction, category, masks[category],
                                            previous if previous.any() else shown[1] > 0, image.pixels,
                                            self._completion_pixels(image, key))
        return None if chosen is None else self._chosen_logits(chosen, category, logits_of, read_off)

    def _model_cells(self, mask: np.ndarray, device: torch.device) -> torch.Tensor:
        """The cells of the model frame (1×1×(S/4)×(S/4) bool, on ``device``) where ``mask`` (H×W bool, the image frame)
        as ±1, resized as :func:`transforms.image_logits_to_model` resizes logits, is positive."""
        return (T.image_logits_to_model(np.where(mask, 1.0, -1.0), self.image_size // 4) > 0).to(device)

    def _spatial_masks(self, key: str, feats: ImageFeatures, image: RasterImage, spec: spatial_language.SpatialSpec
                       ) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, torch.Tensor]], set[str]]:
        """The masks of every object of ``spec``'s categories that its words choose among (H×W bool each, by category):
        the model's text turns for the categories (:meth:`_category_logits`), each pixel in one, the ships, cars and
        car parks read off their grounds where any is found; the model's logits of each category (image frame H×W,
        model frame 1×1×(S/4)×(S/4)); the categories read off. Cached per image and spec: not to be written to."""
        if (key, spec) in self._spatial_masks_of:
            return self._spatial_masks_of.get((key, spec))
        masks, logits_of, unranked = {}, {}, {}
        for category in spec.categories:
            unranked[category], low, logits = self._category_logits(key, feats, image, category)
            masks[category], logits_of[category] = logits > 0, (logits, low)
        if len(masks) > 1:
            masks = spatial_language.one_category_a_pixel(masks, {
                category: T.logits_to_image(low, image.height, image.width, self.image_size)[0, 0].float().cpu().numpy()
                for category, low in unranked.items()})
        read_off = set()  # the categories read off the masks of others (ships off the water, cars and car parks off
        for category in spatial_language.READ_OFF_GROUNDS.keys() & masks.keys():  # the roads), when any is found
            found, _ = self._read_off_ground(key, feats, image, category)
            if found.any():
                masks[category] = found
                read_off.add(category)
        for category in read_off & spatial_language.READ_OFF_REGIONS:  # a car park read off the road mask is no road
            for ground in set(spatial_language.READ_OFF_GROUNDS[category]) & masks.keys() - {category}:
                masks[ground] = masks[ground] & ~masks[category]
        self._spatial_masks_of.put((key, spec), (masks, logits_of, read_off))
        return masks, logits_of, read_off

    def _completion_pixels(self, image: RasterImage, key: str) -> np.ndarray | None:
        """The smoothed image (H×W×3, :meth:`_smoothed_pixels`) that roofs are completed in, or None without
        ``complete_roofs``."""
        return self._smoothed_pixels(image, key) if self.complete_roofs else None

    def _look_alikes_left(self, key: str, feats: ImageFeatures, image: RasterImage, text: str,
                          negative_clicks: np.ndarray) -> list[np.ndarray]:
        """For a sentence whose words leave several objects of its category and no word to pick one of them (the
        model's own turn decides then, :meth:`_spatial_object`): those objects no negative click (N×2 x, y image
        pixels) lies on, likeliest first — the highest mean probability of the category's logits, then the largest
        (H×W bool each, read-only). The objects are found once per image and sentence."""
        cache_key = (key, text, self.complete_roofs)
        if cache_key not in self._look_alikes:
            found = []
            if (spec := spatial_language.parse(text)) is not None:
                masks, logits_of, read_off = self._spatial_masks(key, feats, image, spec)
                logits = logits_of[spec.category][0]
                found = sorted(spatial_language.look_alikes(spec, masks, image.pixels,
                                                            frozenset(read_off & spatial_language.ON_TOP_CATEGORIES),
                                                            self._completion_pixels(image, key)),
                               key=lambda m: (float(postprocess.sigmoid(logits[m]).mean()), int(m.sum())), reverse=True)
                for mask in found:
                    mask.setflags(write=False)
            self._look_alikes.put(cache_key, found)
        rows, cols = postprocess.point_pixels(negative_clicks, (image.height, image.width))
        return [m for m in self._look_alikes.get(cache_key) if not m[rows, cols].any()]

    def _read_off_ground(self, key: str, feats: ImageFeatures, image: RasterImage,
                         category: str) -> tuple[np.ndarray, np.ndarray]:
        """The ships read off the water and rivers the model finds (:func:`spatial_language.ships_on`), or the cars
        or car parks read off its roads and car parks (:func:`spatial_language.cars_on`,
        :func:`spatial_language.car_parks_on`; the grounds: :data:`spatial_language.READ_OFF_GROUNDS`), H×W bool, and
        one label per object (8-connected), H×W int, 0 elsewhere; read-only, cached per image and category: the model's
        own masks of them hold almost none (0 of 16 ships on 40 validation scenes; its "all the cars" and "all car
        parks" are the roads)."""
        def read():
            ground = np.logical_or.reduce([self._category_logits(key, feats, image, c)[2] > 0
                                           for c in spatial_language.READ_OFF_GROUNDS[category]])
            found = spatial_language.read_off(category, ground, image.pixels)
            labels, _ = ndimage.label(found, structure=np.ones((3, 3), dtype=bool))
            for a in (found, labels):
                a.setflags(write=False)
            return found, labels

        if (key, category) not in self._off_ground:
            self._off_ground.put((key, category), read())
        return self._off_ground.get((key, category))

    def _clicked_off_ground(self, key: str, feats: ImageFeatures, image: RasterImage, text: str, category: str,
                            chosen: np.ndarray, clicks: np.ndarray, click_labels: np.ndarray,
                            logits: np.ndarray) -> np.ndarray | None:
        """A click turn's image-frame logits (H×W float32) for a sentence about ships (or cars: ``category``, read off
        the roads alike) when a click (``clicks`` N×2 x, y pixels, ``click_labels`` N) lies on a ship read off the water
        (:meth:`_read_off_ground`): +10 on the clicked ships and on the ships shown before (those ``chosen``, H×W bool,
        touches) — unless the sentence is about one ship and a positive click lies on another: then that one alone ("not
        that one, this one") — less the ships a negative click lies on and no positive one; at most −10 elsewhere, as
        the text turn shows ships (the model's own logits hold almost none, and its blob around a clicked ship is
        water). For one ship, when the negative clicks rejected the ship shown, the largest ship left is shown instead.
        None when no click lies on a ship, or the positive ones lie off them: the model's answer, as for other
        categories."""
        ships, labels = self._read_off_ground(key, feats, image, category)

        def ships_under(points: np.ndarray) -> set[int]:
            rows, cols = postprocess.point_pixels(points, ships.shape)
            return set(labels[rows, cols].tolist()) - {0}

        clicked = ships_under(clicks[click_labels == 1])
        rejected = ships_under(clicks[click_labels == 0]) - clicked
        if not clicked and (not rejected or (click_labels == 1).any()):
            return None  # no click on a ship, or positive ones off them only: the model's answer
        before = set(labels[chosen & ships].tolist()) - {0}  # the prior is coarse: the ships it touches
        every = spatial_language.is_class_sentence(text) or spatial_language.read_off_sentence(text) == (category, "all")
        keep = clicked | before if every or not clicked or clicked & before else clicked
        keep -= rejected
        if not keep and not every and not clicked:  # "the ship": not that one; the largest of the others
            keep = {_largest_label(labels, rejected)} - {0}
        shown = np.isin(labels, sorted(keep))
        return np.where(shown, 10.0, np.minimum(logits, -10.0)).astype(np.float32)

    def _off_ground_choice(self, key: str, feats: ImageFeatures, image: RasterImage, category: str,
                           how_many: str) -> tuple[np.ndarray, torch.Tensor] | None:
        """:meth:`_spatial_choice` for a sentence that names ships, cars or car parks (``category``) and nothing else
        (:func:`spatial_language.read_off_sentence`): every one read off its ground (``how_many`` "all"), or one — the
        largest, as the words do not say which (the ambiguity flag then asks for a click); None when none is found."""
        found, labels = self._read_off_ground(key, feats, image, category)
        if not found.any():
            return None
        if how_many == "one":
            found = labels == _largest_label(labels)
        _, low, logits = self._category_logits(key, feats, image, category)
        return self._colour_choice(found, np.where(logits > 0, -10.0, logits).astype(np.float32), low)

    def _colour_choice(self, chosen: np.ndarray, logits: np.ndarray,
                       low: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """The logits of objects the image's colours chose where the model's logits are negative (ships):
        ``logits`` (H×W, the image frame) set to +10 on ``chosen`` (H×W bool), and the model-frame ``low``
        (1×1×(S/4)×(S/4)) as a ranked text turn's: SELECTED_LOGIT on the chosen cells, at most −SELECTED_LOGIT
        elsewhere."""
        logits = np.where(chosen, 10.0, logits).astype(np.float32)
        return logits, torch.where(self._model_cells(chosen, low.device), low.new_tensor(SELECTED_LOGIT), low.clamp(max=-SELECTED_LOGIT))

    def _unprompted_logits(self, key: str, feats: ImageFeatures, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's logits for ``text`` alone (no clicks, box or prior; before the component ranker), 1×1×(S/4)×(S/4),
        and the fused image tokens they were decoded from."""
        vd, t_global, u, _ = self._fuse(key, feats, text)
        logits, _, _ = self.model.decode(vd, t_global, feats, None, None, None, uncertainty=u, fit_clicks=self.click_fit)
        return logits, vd

    def _category_logits(self, key: str, feats: ImageFeatures, image: RasterImage,
                         category: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """The model's text turn for every object of ``category`` (:func:`spatial_language.class_query`, no prior):
        (the decoder's logits, 1×1×(S/4)×(S/4), comparable across categories; the same after the component ranker's
        choice of regions, when the model has one; those in the image frame, H×W float32)."""
        query = spatial_language.class_query(category)
        unranked, vd = self._unprompted_logits(key, feats, query)
        low = unranked
        if self.model.component_ranker is not None:
            low = self._select_regions(unranked, vd, feats.v1, query, image)
        logits = T.logits_to_image(low, image.height, image.width, self.image_size)[0, 0].float().cpu().numpy()
        return unranked, low, logits

    def _grown_regions(self, image: RasterImage, key: str, clicks: np.ndarray, click_labels: np.ndarray):
        """The union of the colour regions grown from the positive clicks (:mod:`rrsis_engine.click_regions`), each
        split where negative clicks lie on it, H×W bool; None when no click grows one (clicks on an edge, on texture or
        on the background's colour)."""
        union = None
        for x, y in clicks[click_labels == 1]:
            region = self._colour_region(image, key, x, y)
            if region is not None:
                region = click_regions.split_at_negatives(region, self._smoothed_pixels(image, key), clicks,
                                                          click_labels)
                union = region if union is None else union | region
        return union

    def _smoothed_pixels(self, image: RasterImage, key: str) -> np.ndarray:
        """:func:`click_regions.smoothed` of the image, H×W×3 uint8, cached per image."""
        smooth = self._smoothed.get(key)
        if smooth is None:
            smooth = click_regions.smoothed(image.pixels)
            self._smoothed.put(key, smooth)
        return smooth

    def _inclusion(self, image: RasterImage, clicks: np.ndarray, click_labels: np.ndarray,
                   previous_mask: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Whether the first of ``clicks`` (N×2 x, y image pixels; ``click_labels`` N, 1/0) is a negative click on a
        small blob that ``previous_mask`` (H×W bool, the mask shown before the new, last click) surrounds
        (:func:`click_regions.inclusion_at`), as (settled, new), H×W bool or None each: settled, when a later click
        is the new one and the blob is cut from the mask shown; new, when it is the new click and the mask covers the
        blob. Only the first click: later negative clicks on a blob in a wrong spill rightly drop the spill (real
        held-out tile 1, 009-004: two clicks 0.17 → 0.12 when every click could cut a blob)."""
        if click_labels[0] != 0:  # the first click after the text turn, as the rim rule's touch-up
            return None, None
        cell_px = max(image.height, image.width) / (self.image_size // 4)
        blob = click_regions.inclusion_at(image.pixels, previous_mask, *clicks[0], cell_px)
        if blob is None:
            return None, None
        covered = previous_mask[blob].mean() > 0.5
        if len(clicks) == 1:
            return None, (blob if covered else None)
        return (None if covered else blob), None

    @staticmethod
    def _dropped_around(previous: np.ndarray, new: np.ndarray, blob: np.ndarray) -> bool:
        """Whether ``new`` (H×W bool) lost more than :data:`postprocess.RIM_DROP_SHARE` of the parts of ``previous``
        (H×W bool) that ``blob`` (H×W bool) lies in or beside."""
        parts, _ = ndimage.label(previous)
        touching = np.unique(parts[ndimage.binary_dilation(blob)])
        around = np.isin(parts, touching[touching > 0])
        return np.count_nonzero(around & ~new) > postprocess.RIM_DROP_SHARE * np.count_nonzero(around)

    def _colour_region(self, image: RasterImage, key: str, x: float, y: float) -> np.ndarray | None:
        """The long, thin colour region the pixel at (x, y) lies on (:func:`click_regions.grow_region`), H×W bool, or
        None; cached per image and pixel."""
        def grow():
            region = click_regions.grow_region(self._smoothed_pixels(image, key), x, y)
            return None if region is None else (region,)

        found = _cached_mask(self._grown, (key, int(round(x)), int(round(y))), (image.height, image.width), grow)
        return None if found is None else found[0]

    def _colour_strip(self, image: RasterImage, key: str, x: float, y: float) -> tuple[np.ndarray, float] | None:
        """The straight stretch through (x, y) of the long, thin colour region a negative click there lies on
        (:func:`postprocess.strip_through` of :meth:`_colour_region`), H×W bool, and its half-width in pixels; None
        where no region grows or it is no strip at the click. Cached per image and pixel."""
        def stretch():
            region = self._colour_region(image, key, x, y)
            return None if region is None else postprocess.strip_through(region, x, y)

        return _cached_mask(self._strips, (key, int(round(x)), int(round(y))), (image.height, image.width), stretch)

    def _select_regions(self, low: torch.Tensor, vd: torch.Tensor, v1: torch.Tensor, text: str,
                        image: RasterImage) -> torch.Tensor:
        """Component ranker on a text turn (first or follow-up, without clicks or box): logits ``low`` 1×1×(S/4)×(S/4)
        (model frame) → the same logits raised inside the candidate regions the sentence refers to and lowered
        everywhere else (:mod:`rrsis_engine.model.component_ranker`); unchanged when the map has no candidate region."""
        g = low.shape[-1]
        h, w = T.valid_shape(image.height, image.width, g)
        valid = np.zeros((g, g), dtype=bool)
        valid[:h, :w] = True
        tokens, mask = self._text(text)
        return self.model.select_text_regions(low, vd, v1, tokens, mask, valid[None])

    def _zoom_refine(self, image: RasterImage, key: str, logits: np.ndarray, reference: np.ndarray,
                     clicks: np.ndarray, click_labels: np.ndarray, pts: torch.Tensor, lbl: torch.Tensor) -> bool:
        """Zoom-in pass (:mod:`rrsis_engine.zoom`): re-predict on a magnified crop around ``reference`` (H×W bool, the
        previous turn's mask) and ``clicks`` (N×2 x, y image pixels; ``click_labels`` N, 1/0), from the turn's prompts alone (``pts`` 1×M×2
        model frame, ``lbl`` 1×M: the clicks, and box corners clipped to the crop) with ``logits`` (H×W, this turn's
        full-frame logits, updated in place) as the prior, and average the two inside the crop; clicks outside the
        crop are left out. False when the turn gets no zoom (too few clicks, or the object is too large for a crop to
        magnify it)."""
        crop = zoom_box(reference, clicks, self.image_size, click_labels)
        if crop is None:
            return False
        x0, y0, x1, y1 = crop
        side = x1 - x0  # the crop is square
        crop_key = f"{key}@{x0},{y0},{x1},{y1}"
        feats = self._crops.get(crop_key)
        if feats is None:
            feats = self._encode(image.pixels[y0:y1, x0:x1])
            self._crops.put(crop_key, feats)
        vd, t_global, u, _ = self._fuse(crop_key, feats, "")
        prior = T.image_logits_to_model(logits[y0:y1, x0:x1], self.image_size // 4).to(self.device)
        image_pts = pts / T.resize_scale(image.height, image.width, self.image_size)
        offset = torch.tensor([x0, y0], dtype=pts.dtype, device=pts.device)
        crop_pts = image_pts - offset
        inside = ((crop_pts >= 0) & (crop_pts < side)).all(-1) | (lbl >= 2)  # box corners are clipped, not dropped
        crop_pts = crop_pts[inside][None].clamp(0, side) * T.resize_scale(side, side, self.image_size)
        low, _, _ = self.model.decode(vd, t_global, feats, crop_pts, lbl[inside][None], prior, uncertainty=u,
                                      fit_clicks=self.click_fit)
        zoomed = T.logits_to_image(low, side, side, self.image_size)[0, 0].float().cpu().numpy()
        logits[y0:y1, x0:x1] = (1 - ZOOM_WEIGHT) * logits[y0:y1, x0:x1] + ZOOM_WEIGHT * zoomed
        return True

    def _prompt_points(self, points, labels, box, image: RasterImage):
        """Clicks and box (image pixels) → model-frame point tensors 1×N×2 and labels 1×N, or (None, None)."""
        coords, codes = [], []
        if points is not None and len(points):
            pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
            lab = np.asarray(labels if labels is not None else np.ones(len(pts)), dtype=np.int64).reshape(-1)
            if len(lab) != len(pts):
                raise PromptError(f"{len(pts)} clicks but {len(lab)} labels; give one label (1/0) per click.")
            if not np.isin(lab, (0, 1)).all():
                raise PromptError("Click labels must be 1 (positive) or 0 (negative).")
            for (x, y), lab_ in zip(pts, lab, strict=True):
                coords.append(self.validate_point(x, y, image))
                codes.append(int(lab_))
        if box is not None:
            x0, y0, x1, y1 = self.validate_box(box, image)
            coords += [(x0, y0), (x1, y1)]
            codes += [2, 3]
        if not coords:
            return None, None
        model_pts = T.points_to_model(np.asarray(coords), image.height, image.width, self.image_size)
        return (torch.from_numpy(model_pts)[None].to(self.device),
                torch.tensor([codes], dtype=torch.long, device=self.device))

    def _finish(self, logits: np.ndarray, low_res, iou: float, obj: float, uncertainty: np.ndarray | None = None,
                uncertainty_low: np.ndarray | None = None, clicks=(), ambiguity_prob: float | None = None,
                turn_error: torch.Tensor | None = None, click_gain: torch.Tensor | None = None,
                click_policy: torch.Tensor | None = None,
                candidate_logits: tuple[np.ndarray, torch.Tensor] | None = None) -> Prediction:
        """Full-res mask + uncertainty; candidates, ambiguity and the suggested click from the low-res logits.

        uncertainty: H×W in [0, 1] — the model's learned map σ(U) (RUS) when it has one (then uncertainty_low
        is σ(U) on its S/16 grid, padding cropped); otherwise the margin baseline 1 − |2p − 1| of the mask
        probabilities p is used. clicks: the turn's clicks, (x, y) image pixels (the suggestion avoids them).
        ambiguity_prob: the ambiguity head's σ(logit) for this image and text (models with the head).
        turn_error: the error head's logits E 1×1×S/4×S/4 for this turn (models with the head): then the
        prediction's uncertainty map is σ(E), which follows the clicks; the ambiguity cues keep reading σ(U), which
        they were calibrated on. click_gain: the click-gain head's map G 1×1×S/4×S/4 (models with the head): the
        suggested click goes to the cell with the largest predicted gain among those σ(E) marks as likely wrong
        (all cells without the error head), discounted at earlier clicks; without G, to the best window of σ(U)
        (:func:`postprocess.suggest_click`). click_policy: the click-policy head's logits P 1×1×S/4×S/4 (models with
        the head): then the suggestion is its most probable cell, ahead of the gain rule. candidate_logits: (H×W,
        1×1×S/4×S/4) the model's logits before the edge snap — for a ranked text turn, before the component ranker
        chose among their regions: the candidates and the ambiguity cues are read from them (the alternatives the
        labeler may want; the cues were calibrated on unranked, unsnapped masks)."""
        mask = logits > 0
        h, w = T.valid_shape(*mask.shape, low_res.shape[-1])
        if turn_error is not None:
            uncertainty = torch.sigmoid(T.logits_to_image(turn_error, *mask.shape, self.image_size))[0, 0]
            uncertainty = uncertainty.float().cpu().numpy()
        elif uncertainty is None:
            uncertainty = postprocess.margin_uncertainty(postprocess.sigmoid(logits))
        cand_logits, cand_low = (logits, low_res) if candidate_logits is None else candidate_logits
        prob_low = postprocess.sigmoid(cand_low[0, 0, :h, :w].float().cpu().numpy())
        unc_low = postprocess.margin_uncertainty(prob_low) if uncertainty_low is None \
            else postprocess.resample_nearest(uncertainty_low, h, w)
        candidates = postprocess.candidates_from_mask(cand_logits > 0, prob_low)
        cues = A.ambiguity_features(candidates, prob_low, unc_low, obj, iou, ambiguity_prob)
        ambiguity, ambiguous = A.score_and_flag(cues, self.ambiguity_calibration)
        if click_policy is not None:
            click = postprocess.suggest_by_policy(mask, click_policy[0, 0, :h, :w].float().cpu().numpy(), clicks)
        elif click_gain is not None:
            # the click-gain head's best cell among those the error head thinks wrong (σ(E) > 0.5): the gain map is
            # supervised only at the cells decoded in training, and unrestricted its best cell fell on a correct
            # pixel in 99.7 % of turns (30 validation scenes, an early checkpoint)
            wrong_low = None if turn_error is None else turn_error[0, 0, :h, :w].float().cpu().numpy() > 0
            click = postprocess.suggest_by_gain(mask, click_gain[0, 0, :h, :w].float().cpu().numpy(), clicks, wrong_low)
        else:
            click = postprocess.suggest_click(mask, unc_low, candidates, ambiguous, clicks)
        return Prediction(mask=mask, logits=logits.astype(np.float32), low_res_logits=low_res, iou_score=iou,
                          object_score=obj, latency_ms=0.0, uncertainty=uncertainty, ambiguity=ambiguity,
                          ambiguous=ambiguous, candidates=candidates, suggested_click=click, ambiguity_cues=cues)

    def prediction_from_mask(self, mask: np.ndarray, image: RasterImage | None = None) -> Prediction:
        """Wrap a hand-edited H×W mask as a prediction whose low-res logits can prime the next turn."""
        image = self._image_or_raise(image)
        mask = np.asarray(mask).astype(bool)
        if mask.shape != (image.height, image.width):
            raise PromptError(f"The edited mask is {mask.shape[1]}×{mask.shape[0]}, the image {image.width}×{image.height}.")
        low = T.mask_to_tensor(mask, self.image_size, self.image_size // 4)
        low = (low * 2 - 1) * 10.0  # ±10 logits
        logits = np.where(mask, 10.0, -10.0).astype(np.float32)
        pred = self._finish(logits, low.to(self.device), 1.0, 1.0)
        return pred
