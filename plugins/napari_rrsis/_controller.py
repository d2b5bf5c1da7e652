"""The napari side of a refinement session: layers, prompts and turns, without any Qt widget.

:class:`RRSISController` is the function twin of the dock widget: every button and key calls one of its
methods (``open_image``, ``segment``, ``add_point``, ``set_box``, ``toggle_polarity``, ``undo``, ``redo``,
``clear``, ``accept``, ``next_image``, ``export``), which scripts and tests call directly. Each method
validates, calls one engine function (:class:`rrsis_engine.session.RefinementSession`) and writes the result
back into layers. Bad input never raises out of a method: it becomes a napari notification (and
``last_error``), and the method returns None.

Frames: prompt layers share the image layer's transform, so their *data* coordinates are image pixels
(row, col); the engine takes (x, y) = (col, row).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal
from superqt.utils import ensure_main_thread

from napari_rrsis import keep_triton_out
from napari_rrsis._geo import layer_kwargs, orient_viewer, transform_from_layer_state
from napari_rrsis._session_log import BackgroundLog
from rrsis_engine.errors import ImageError, NoImageError, PromptError, RRSISError
from rrsis_engine.imageio import RasterImage, read_image, to_rgb_uint8
from rrsis_engine.prediction import Prediction
from rrsis_engine.session import RefinementSession

keep_triton_out()  # before any model is loaded into this GL process (see its docstring)

POSITIVE_COLOR = "#32ff5a"
NEGATIVE_COLOR = "#ff2d55"
CURRENT_COLOR = "#00e5ff"

LAYER_NAMES = {
    "points": "rrsis clicks (+ green / − red)",
    "box": "rrsis box",
    "current": "rrsis current object",
    "candidates": "rrsis candidates",
    "candidate_numbers": "rrsis candidate numbers",
    "suggestion": "rrsis suggested click",
    "uncertainty": "rrsis uncertainty",
    "accepted": "rrsis accepted objects",
}
#: the layers a new image reuses (re-placed and emptied) when they are still in the viewer, bottom to top
TURN_LAYER_ROLES = ("uncertainty", "candidates", "current", "candidate_numbers", "box", "suggestion", "points")
ACCEPTED_PREFIX = "rrsis accepted"
#: Outline colours of the candidate regions, in rank order (best first).
CANDIDATE_COLORS = ["#ffd60a", "#ff9f0a", "#bf5af2", "#64d2ff", "#ff375f", "#30d158", "#ac8e68", "#5e5ce6"]
#: their names, for the conversation ("1 yellow, 2 orange": the number a labeller types to pick one)
CANDIDATE_COLOR_NAMES = ["yellow", "orange", "purple", "sky blue", "red", "green", "brown", "indigo"]

#: Key -> controller method name. Bound on the viewer and on every rrsis layer (napari#7302: a layer's
#: own bindings shadow the viewer's while it is selected).
KEYMAP: dict[str, str] = {
    "s": "segment",
    "a": "accept",
    "c": "accept",
    "z": "undo",
    "Shift-Z": "redo",
    "t": "toggle_polarity",
    "Shift-C": "clear",
    "n": "next_image",
}


class ControllerSignals:
    """psygnal signals the dock widget listens to."""

    changed = Signal()  # state, conversation or polarity changed
    busy = Signal(bool)  # background work started (True) / finished (False)


def user_action(method: Callable) -> Callable:
    """Turn RRSISError into a napari notification (no traceback) and a None return value."""

    @functools.wraps(method)
    def wrapper(self: RRSISController, *args, **kwargs):
        if self.busy and method.__name__ not in ("toggle_polarity",):
            show_info("RRSIS is still computing the image embedding; try again in a moment.")
            return None
        try:
            result = method(self, *args, **kwargs)
        except RRSISError as exc:
            self.report(exc)
            return None
        self.last_error = None
        return result

    return wrapper


class RRSISController:
    """State and actions of the RRSIS dock for one viewer.

    predictor: an engine ``Predictor`` (or anything with its interface); when None it is loaded on the
    first image with ``load_predictor(model, device)``. db: session store URL or path (None -> $RRSIS_DB
    or ./sessions.db); ``log_sessions=False`` disables logging. background: compute embeddings in a
    worker thread (the dock does; scripts and tests may prefer synchronous calls).
    """

    def __init__(
        self,
        viewer,
        predictor=None,
        *,
        model: str | None = None,
        device: str = "cpu",
        db: str | None = None,
        annotator: str | None = None,
        log_sessions: bool = True,
        background: bool = False,
    ):
        self.viewer = viewer
        self.predictor = predictor
        self.model = model
        self.device = device
        self.db = db
        self.annotator = annotator
        self.log_sessions = log_sessions
        self.background = background
        self.events = ControllerSignals()
        self.session: RefinementSession | None = None
        self.image: RasterImage | None = None
        self.image_layer = None
        self.layers: dict[str, Any] = {}
        self.accepted_layer = None
        self.positive = True
        self.expression = ""
        self.bands: tuple[int, ...] | None = None
        self.conversation: list[tuple[str, str]] = []
        self.queue: list[str] = []
        self.queue_index = -1
        self.busy = False
        self.embed_ms = 0.0
        self.last_error: str | None = None
        self.store = None
        self.logger = None
        self._store_warned = False
        self._syncing = False
        self._worker = None
        self._cache: dict[str, Any] = {}
        self._uncertainty = None
        self._owned_image_layers: set[int] = set()
        self._adding_layer = False
        self._bind_keys(viewer)
        viewer.layers.events.inserted.connect(self._on_layer_inserted)

    # ---- reporting -------------------------------------------------------------------------------
    def report(self, exc: Exception | str) -> None:
        """Show an error as a napari notification and in the conversation."""
        message = str(exc)
        self.last_error = message
        show_error(message)
        self._say("error", message)

    def _say(self, role: str, text: str) -> None:
        self.conversation.append((role, text))
        self.events.changed.emit()

    @property
    def model_label(self) -> str:
        if self.predictor is None:
            return f"model: {self.model or 'default'} (loads with the first image)"
        name = getattr(self.predictor, "model_name", "?")
        version = getattr(self.predictor, "model_version", "?")
        return f"model: {name} · {version}"

    # ---- images ----------------------------------------------------------------------------------
    def set_queue(self, paths: Sequence[str | Path]) -> None:
        """Images that Next image [N] steps through, in order."""
        self.queue = [str(p) for p in paths]
        self.queue_index = -1

    @user_action
    def open_image(self, source: str | Path | np.ndarray, bands: Sequence[int] | None = None,
                   replace: bool = False):
        """Read an image (GeoTIFF, PNG, JPEG or H×W[×C] array), add it as a layer and start a session on
        it. ``bands``: 1-based R, G, B for this file (default ``self.bands``, e.g. from ``--bands``, when
        the file has them). Returns the image layer (the embedding may still be computing when
        ``background``). ``replace``: show it in the current image layer when this controller created
        that layer (Next image, band changes) instead of adding a new one."""
        from napari_rrsis._reader import image_layer_data, notify_image_conversion

        src = source if isinstance(source, np.ndarray) else str(source)
        if bands is not None:
            image = read_image(src, bands=tuple(int(b) for b in bands))
        else:
            try:
                image = read_image(src, bands=self.bands)
            except ImageError as exc:
                if self.bands is None or "out of range" not in str(exc):
                    raise
                image = read_image(src)  # the default band choice does not fit this file
                show_info(f"{exc} Showing its default bands instead.")
        notify_image_conversion(image)
        data, kwargs, _ = image_layer_data(image)
        old = self.image_layer
        if replace and old is not None and id(old) in self._owned_image_layers and old in self.viewer.layers:
            # Reusing the layer is much faster than remove + add (napari runs gc.collect() per removal).
            layer = old
            self.image_layer = None
            set_layer_transform(layer, kwargs)
            layer.data = data
            layer.metadata = kwargs["metadata"]
            layer.name = kwargs["name"]
            layer.reset_contrast_limits()
        else:
            self._adding_layer = True
            try:
                layer = self.viewer.add_image(data, **kwargs)
            finally:
                self._adding_layer = False
            self._owned_image_layers.add(id(layer))
        self._start(layer, image)
        return layer

    def is_rrsis_layer(self, layer) -> bool:
        return any(layer is ly for ly in self.layers.values()) or layer.name.startswith(ACCEPTED_PREFIX)

    def _on_layer_inserted(self, event) -> None:
        """An image opened with File > Open (or a sample) while nothing is being labelled is adopted."""
        from napari.layers import Image

        layer = event.value
        if (self._adding_layer or self.busy or self.session is not None or not isinstance(layer, Image)
                or self.is_rrsis_layer(layer) or layer.name in LAYER_NAMES.values()):
            return
        self.use_image_layer(layer)

    @user_action
    def use_image_layer(self, layer) -> None:
        """Start a session on an image layer already in the viewer (opened with File > Open, say)."""
        self._start(layer, raster_from_layer(layer))

    @user_action
    def reload_bands(self, bands: Sequence[int]) -> None:
        """Re-read the current GeoTIFF with other bands (1-based R, G, B), e.g. (4, 1, 2) false colour."""
        if self.image is None or not self.image.path:
            raise NoImageError("Open a GeoTIFF first; band selection re-reads the file.")
        self.open_image(self.image.path, bands=bands, replace=True)

    def _start(self, layer, image: RasterImage) -> None:
        self._finish_image()
        self.image_layer = layer
        self._bind_keys(layer)
        orient_viewer(self.viewer, image.transform)
        self._say("system", f"Image {layer.name}: {image.width}×{image.height} px"
                  + (f", {image.crs}" if image.crs else ", no CRS (pixel coordinates)"))
        if self.background:
            from napari.qt.threading import thread_worker

            @thread_worker(progress={"total": 0, "desc": "RRSIS: image embedding"})
            def embed():
                try:
                    return self._embed(image)
                except RRSISError as exc:  # returned (wrapped: superqt re-raises a returned
                    return (exc,)  # exception), not raised: napari would show a traceback

            self._set_busy(True)
            worker = embed()
            worker.returned.connect(self._image_ready)
            worker.errored.connect(self._embed_failed)
            worker.finished.connect(lambda: self._set_busy(False))
            self._worker = worker
            worker.start()
        else:
            try:
                result = self._embed(image)
            except RRSISError as exc:
                result = (exc,)
            self._image_ready(result)

    def _embed(self, image: RasterImage) -> tuple[RefinementSession, float]:
        """Load the model if needed and compute the image embedding (runs in a worker thread)."""
        if self.predictor is None:
            from rrsis_engine.predictor import load_predictor

            self.predictor = load_predictor(self.model, device=self.device)
        session = RefinementSession(self.predictor)
        t0 = time.perf_counter()
        session.set_image(image)
        return session, (time.perf_counter() - t0) * 1000.0

    def _embed_failed(self, exc: Exception) -> None:
        if isinstance(exc, RRSISError):
            self.report(exc)
        else:
            self.report(f"Computing the image embedding failed ({exc.__class__.__name__}: {exc}).")

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.events.busy.emit(busy)

    def wait(self, timeout_s: float = 60.0) -> None:
        """Block (processing Qt events) until background work is done. For scripts and tests."""
        from qtpy.QtWidgets import QApplication

        deadline = time.monotonic() + timeout_s
        while self.busy and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.01)

    def _image_ready(self, result: tuple[RefinementSession, float] | tuple[RRSISError]) -> None:
        if len(result) == 1:  # (error,), e.g. NoTrainedWeightsError
            self.report(result[0])
            return
        session, self.embed_ms = result
        self.session = session
        self.image = session.image
        self._make_layers()
        self._start_logging()
        self._say("system", f"Ready (embedding {self.embed_ms:.0f} ms). Type what to segment and press S, "
                  "or click on the object.")

    def _finish_image(self) -> None:
        if self.logger is not None:
            try:
                self.logger.close()
            except Exception as exc:  # the logger itself never raises on DB failure; be defensive
                show_warning(f"Closing the session log failed: {exc}")
        self.logger = None
        self.session = None
        self.layers.pop("accepted", None)
        if self.accepted_layer is not None and self.accepted_layer in self.viewer.layers:
            # kept (with its objects' metadata) for saving; hidden and named after its image
            self.accepted_layer.visible = False
            source = self.accepted_layer.metadata.get("image_name", "previous image")
            self.accepted_layer.name = f"{LAYER_NAMES['accepted']} · {source}"
        self.accepted_layer = None

    def _start_logging(self) -> None:
        if not self.log_sessions or self.session is None:
            return
        try:
            if self.store is None:
                from rrsis_engine.store import open_store

                self.store = open_store(self.db)
            store_logger = self.store.start_session(
                self.image, client="napari", annotator=self.annotator,
                model_version=str(getattr(self.predictor, "model_version", "unknown")),
            )
            self.logger = BackgroundLog(store_logger, on_error=self._on_log_error)
            self.session.subscribe(self.logger)
            self.logger.on_status(self._on_log_status)
        except ImportError as exc:
            if not self._store_warned:
                show_warning(f"Session logging is unavailable ({exc}); labels still work but turns are not "
                             "saved to sessions.db.")
                self._store_warned = True
        except RRSISError as exc:
            show_warning(f"Session logging is off: {exc}")

    @ensure_main_thread
    def _on_log_status(self, status) -> None:
        """The session log degraded (database locked/unwritable: events kept in memory) or recovered."""
        if status.state == "closed":
            return
        (show_info if status.ok else show_warning)(status.message)
        self._say("system" if status.ok else "error", status.message)

    @ensure_main_thread
    def _on_log_error(self, exc: Exception) -> None:
        show_warning(f"The session log rejected an event: {exc}")

    def flush_log(self, timeout_s: float | None = 30.0) -> bool:
        """Wait for the background session log to hand every event to the store; True when all saved."""
        return True if self.logger is None else self.logger.flush(timeout_s)

    # ---- layers ----------------------------------------------------------------------------------
    def _make_layers(self) -> None:
        v = self.viewer
        h, w = self.image.height, self.image.width
        geo = layer_kwargs(self.image.transform)
        meta = {"crs": self.image.crs,
                "transform": list(self.image.transform) if self.image.transform else None,
                "path": self.image.path}
        size = max(6.0, max(h, w) / 60.0)
        self.accepted_layer = self.layers["accepted"] = v.add_labels(
            np.zeros((h, w), np.int32), name=LAYER_NAMES["accepted"], opacity=0.55,
            metadata={**meta, "image_name": self.image_layer.name, "objects": {},
                      "model_version": str(getattr(self.predictor, "model_version", ""))}, **geo)
        self._bind_keys(self.accepted_layer)
        if all(r in self.layers and self.layers[r] in v.layers for r in TURN_LAYER_ROLES):
            self._reuse_layers(h, w, geo, meta, size)
        else:
            self._add_layers(h, w, geo, meta, size)
        self._cache = {}
        v.layers.selection.active = self.layers["points"]
        self.layers["points"].mode = "add"

    def _reuse_layers(self, h, w, geo, meta, size) -> None:
        """Point the existing rrsis layers at the new image (same roles, new shape and transform)."""
        L = self.layers
        self._syncing = True
        try:
            for role in TURN_LAYER_ROLES:
                set_layer_transform(L[role], geo)
            L["uncertainty"].data = np.zeros((h, w), np.float32)
            L["candidates"].data = np.zeros((h, w), np.int32)
            _set_candidate_numbers(L["candidate_numbers"], [])
            L["candidate_numbers"].current_size = size * 1.5
            L["current"].data = np.zeros((h, w), np.uint8)
            L["current"].metadata = dict(meta)
            L["box"].data = []
            L["suggestion"].data = np.zeros((0, 2))
            L["points"].data = np.zeros((0, 2))
            L["points"].current_size = size
            L["suggestion"].current_size = size * 1.6
        finally:
            self._syncing = False
        # keep the accepted layer just below the candidates, as when the layers were first made
        v = self.viewer
        v.layers.move(v.layers.index(self.accepted_layer), v.layers.index(L["candidates"]))

    def _add_layers(self, h, w, geo, meta, size) -> None:
        v = self.viewer
        self.layers["uncertainty"] = v.add_image(
            np.zeros((h, w), np.float32), name=LAYER_NAMES["uncertainty"], colormap="inferno",
            contrast_limits=(0.0, 1.0), opacity=0.6, blending="additive", visible=False, **geo)
        v.layers.move(v.layers.index(self.accepted_layer), len(v.layers))  # above the uncertainty
        self.layers["candidates"] = v.add_labels(
            np.zeros((h, w), np.int32), name=LAYER_NAMES["candidates"], opacity=1.0,
            colormap=DirectLabelColormap(color_dict={
                None: "transparent", 0: "transparent",
                **{i + 1: CANDIDATE_COLORS[i % len(CANDIDATE_COLORS)] for i in range(64)}}),
            **geo)
        self.layers["candidates"].contour = max(1, int(round(max(h, w) / 300)))
        self.layers["current"] = v.add_labels(
            np.zeros((h, w), np.uint8), name=LAYER_NAMES["current"], opacity=0.5, metadata=dict(meta),
            colormap=DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: CURRENT_COLOR}),
            **geo)
        # each candidate's number ("1", "2", …: what a labeller types to keep it) on a dark disc ringed in its colour,
        # at an interior point of the region, above the current object's fill (the web app draws ①, ② the same way)
        self.layers["candidate_numbers"] = v.add_points(
            np.zeros((0, 2)), name=LAYER_NAMES["candidate_numbers"], size=size * 1.5, face_color="#000000b3",
            border_width=0.15, features={"number": np.zeros(0, dtype=int)},
            text={"string": "{number}", "color": "white", "size": 11, "anchor": "center"}, **geo)
        self.layers["box"] = v.add_shapes(
            name=LAYER_NAMES["box"], ndim=2, edge_color="#ffd60a", face_color="transparent",
            edge_width=max(1.0, size / 4), **geo)
        self.layers["suggestion"] = v.add_points(
            np.zeros((0, 2)), name=LAYER_NAMES["suggestion"], symbol="star", size=size * 1.6,
            face_color="#ffd60a", border_color="black", **geo)
        self.layers["points"] = v.add_points(
            np.zeros((0, 2)), name=LAYER_NAMES["points"], size=size, face_color=POSITIVE_COLOR,
            border_color="white", border_width=0.15, **geo)
        for layer in self.layers.values():
            self._bind_keys(layer)
        self.layers["points"].events.data.connect(self._on_points_data)
        self.layers["box"].events.data.connect(self._on_box_data)
        self.layers["current"].events.paint.connect(self._on_paint)
        self.layers["uncertainty"].events.visible.connect(self._on_uncertainty_visible)
        self.layers["points"].current_face_color = POSITIVE_COLOR if self.positive else NEGATIVE_COLOR

    def _bind_keys(self, target) -> None:
        for key, name in KEYMAP.items():
            method = getattr(self, name)
            target.bind_key(key, lambda _obj, _m=method: _m(), overwrite=True)

    def _show(self, pred: Prediction | None) -> None:
        """Write a prediction (or nothing) into the result layers. Layers whose content would not change
        are left alone, and the (hidden by default) uncertainty layer is filled when it is shown: every
        data assignment costs a texture upload and a redraw."""
        L = self.layers
        h, w = self.image.height, self.image.width
        cache = self._cache
        _set_data(L["current"], pred.mask if pred is not None else np.zeros((h, w), bool))
        self._uncertainty = None if pred is None else pred.uncertainty
        self._update_uncertainty()
        ambiguous = pred is not None and pred.offers_choice
        if ambiguous or cache.get("candidates", False):
            cand = np.zeros((h, w), np.int32)
            if ambiguous:
                for i, c in reversed(list(enumerate(pred.candidates, start=1))):
                    cand[c.mask] = i
            _set_data(L["candidates"], cand)
            _set_candidate_numbers(L["candidate_numbers"], pred.candidates if ambiguous else [])
            cache["candidates"] = ambiguous
        click = pred.suggested_click if pred is not None and pred.ambiguous else None
        if click != cache.get("suggestion"):
            if click is not None:
                x, y, label = click
                L["suggestion"].data = np.array([[y, x]], dtype=np.float64)
                L["suggestion"].face_color = POSITIVE_COLOR if label else NEGATIVE_COLOR
            else:
                L["suggestion"].data = np.zeros((0, 2))
            cache["suggestion"] = click

    def _update_uncertainty(self) -> None:
        layer = self.layers["uncertainty"]
        unc = getattr(self, "_uncertainty", None)
        key = id(unc)
        if not layer.visible or self._cache.get("uncertainty") == key:
            return
        h, w = self.image.height, self.image.width
        layer.data = np.asarray(unc, np.float32) if unc is not None else np.zeros((h, w), np.float32)
        self._cache["uncertainty"] = key

    def _on_uncertainty_visible(self, _event=None) -> None:
        if self.image is not None and "uncertainty" in self.layers:
            self._update_uncertainty()

    def _sync_prompts(self) -> None:
        """Make the clicks/box layers mirror the session's prompt state (touching only what changed)."""
        state = self.session.state
        self._syncing = True
        try:
            pts = self.layers["points"]
            shown = tuple(tuple(xy) for xy in np.asarray(pts.data)[:, ::-1].tolist())  # (x, y) each
            if shown != tuple(state.points) or self._cache.get("labels") != state.labels:
                pts.selected_data = set()  # current_face_color would otherwise recolour stale indices
                if state.points:
                    pts.data = np.array([[y, x] for x, y in state.points], dtype=np.float64)
                    pts.face_color = [POSITIVE_COLOR if lab else NEGATIVE_COLOR for lab in state.labels]
                else:
                    pts.data = np.zeros((0, 2))
                pts.current_face_color = POSITIVE_COLOR if self.positive else NEGATIVE_COLOR
                self._cache["labels"] = state.labels
            box = self.layers["box"]
            if self._cache.get("box", "unset") != state.box or len(box.data) != (state.box is not None):
                box.data = []
                if state.box is not None:
                    x0, y0, x1, y1 = state.box
                    box.add_rectangles(np.array([[y0, x0], [y1, x1]]), edge_color="#ffd60a",
                                       face_color="transparent")
                self._cache["box"] = state.box
        finally:
            self._syncing = False

    # ---- layer events (user drawing in the canvas) -------------------------------------------------
    def _on_points_data(self, event) -> None:
        if self._syncing or getattr(event, "action", None) != "added":
            if not self._syncing and getattr(event, "action", None) == "removed" and self.session:
                show_info("Use Undo [Z] to take back a click; the clicks layer mirrors the turn history.")
                self._sync_prompts()
            return
        row, col = np.asarray(self.layers["points"].data[-1], dtype=np.float64)[-2:]
        self._syncing = True
        try:
            self.layers["points"].data = self.layers["points"].data[:-1]
        finally:
            self._syncing = False
        self.add_point(float(col), float(row))

    def _on_box_data(self, event) -> None:
        if self._syncing or getattr(event, "action", None) != "added":
            return
        verts = np.asarray(self.layers["box"].data[-1], dtype=np.float64)[:, -2:]
        (r0, c0), (r1, c1) = verts.min(axis=0), verts.max(axis=0)
        self.set_box(float(c0), float(r0), float(c1), float(r1))

    def _on_paint(self, _event) -> None:
        if self._syncing or self.session is None:
            return
        # napari emits ``paint`` before it writes the stroke into ``data``: read it once the stroke landed.
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, self._commit_paint)

    def _commit_paint(self) -> None:
        if self.session is not None and "current" in self.layers:
            self.edit_mask(np.asarray(self.layers["current"].data) > 0)

    # ---- actions (function twins of the dock's buttons and keys) -------------------------------------
    def _require_session(self) -> RefinementSession:
        if self.session is None:
            raise NoImageError("No image is loaded yet: open an image (File > Open, or Open image… in the "
                               "RRSIS dock) before typing an expression.")
        return self.session

    @user_action
    def segment(self, text: str | None = None) -> Prediction | None:
        """Segment [S]: a text turn with ``text`` (default: the expression box)."""
        if text is not None:
            self.expression = text
        session = self._require_session()
        text = (self.expression or "").strip()
        if not text:
            if session.state.points or session.state.box is not None:
                raise PromptError("The expression box is empty: type what to segment (your clicks are kept), "
                                  "or keep clicking to refine.")
            raise PromptError("Nothing to segment yet: type an expression (e.g. 'the large white building "
                              "on the left') and press S, or click on the object.")
        self._say("user", f"“{text}”")
        pred = session.text(text)
        if session.turns[-1].kind == "pick":
            self._say("assistant", f"kept candidate {session.turns[-1].detail['candidate']} alone")
        return self._after_turn(pred)

    @user_action
    def add_point(self, x: float, y: float, positive: bool | None = None) -> Prediction | None:
        """A click turn at pixel (x, y) = (col, row); polarity from the toggle [T] unless given."""
        session = self._require_session()
        pos = self.positive if positive is None else bool(positive)
        self._say("user", f"{'+' if pos else '−'} click at ({x:.0f}, {y:.0f})")
        try:
            pred = session.click(x, y, positive=pos)
        except RRSISError:
            self.conversation.pop()
            raise
        return self._after_turn(pred)

    @user_action
    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> Prediction | None:
        """A box turn, (x0, y0) top-left and (x1, y1) bottom-right pixels."""
        session = self._require_session()
        self._say("user", f"box ({x0:.0f}, {y0:.0f}) – ({x1:.0f}, {y1:.0f})")
        try:
            pred = session.box(x0, y0, x1, y1)
        except RRSISError:
            self.conversation.pop()
            self._sync_prompts()
            raise
        return self._after_turn(pred)

    @user_action
    def edit_mask(self, mask: np.ndarray) -> Prediction | None:
        """A brush-edit turn: ``mask`` (H×W bool) replaces the current object and becomes the prior."""
        session = self._require_session()
        pred = session.edit_mask(np.asarray(mask, bool))
        self._say("user", f"brush edit ({int(pred.mask.sum()):,} px)")
        self._show(pred)
        self.events.changed.emit()
        return pred

    def _after_turn(self, pred: Prediction) -> Prediction:
        self._syncing = True
        try:
            self._show(pred)
        finally:
            self._syncing = False
        self._sync_prompts()
        self._say("assistant", describe(pred))
        return pred

    def toggle_polarity(self) -> bool:
        """Toggle positive/negative [T] for the next click. Returns True when positive."""
        self.positive = not self.positive
        if "points" in self.layers:
            self.layers["points"].selected_data = set()
            self.layers["points"].current_face_color = POSITIVE_COLOR if self.positive else NEGATIVE_COLOR
        self.events.changed.emit()
        return self.positive

    @user_action
    def undo(self) -> Prediction | None:
        """Undo [Z]: step back one turn (the stored prediction comes back, no re-prediction)."""
        session = self._require_session()
        if not session.can_undo:
            raise PromptError("Nothing to undo.")
        pred = session.undo()
        self._redisplay(pred)
        self._say("system", f"↶ undo — {len(session.turns)} turn(s) active")
        return pred

    @user_action
    def redo(self) -> Prediction | None:
        """Redo [Shift+Z]."""
        session = self._require_session()
        if not session.can_redo:
            raise PromptError("Nothing to redo.")
        pred = session.redo()
        self._redisplay(pred)
        self._say("system", f"↷ redo — {len(session.turns)} turn(s) active")
        return pred

    @user_action
    def clear(self) -> None:
        """Clear [Shift+C]: drop the current object's prompts and mask (undoable)."""
        session = self._require_session()
        session.clear()
        self._redisplay(None)
        self._say("system", "cleared — start the next object")

    def _redisplay(self, pred: Prediction | None) -> None:
        self._syncing = True
        try:
            self._show(pred)
        finally:
            self._syncing = False
        self._sync_prompts()

    @user_action
    def accept(self) -> int | None:
        """Accept [A or C]: the current mask becomes a new label id in the accepted layer and a row in
        the session store. Returns the new label id."""
        session = self._require_session()
        pred = session.current
        if pred is None or not pred.mask.any():
            raise PromptError("Nothing to accept: the current object is empty. Segment something first (S).")
        event = session.accept()
        layer = self.accepted_layer
        objects = layer.metadata.setdefault("objects", {})
        new_id = max([int(k) for k in objects] + [int(np.asarray(layer.data).max())]) + 1
        data = np.asarray(layer.data).copy()
        data[event.mask] = new_id
        _set_data(layer, data)
        objects[str(new_id)] = {
            "expression": event.expressions[-1] if event.expressions else "",
            "expressions": event.expressions,
            "model": str(getattr(self.predictor, "model_name", "")),
            "model_version": str(getattr(self.predictor, "model_version", "")),
            "iou_score": round(float(pred.iou_score), 4),
            "quality": None if pred.quality is None else round(float(pred.quality), 4),
            "object_score": round(float(pred.object_score), 4),
            "ambiguity": None if pred.ambiguity is None else round(float(pred.ambiguity), 4),
            "n_turns": len(event.turns),
            "n_clicks": len(event.turns[-1].state.points) if event.turns else 0,
            "session_id": event.session_id,
            "accepted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self._redisplay(None)
        self._say("system", f"✔ accepted as object #{new_id} ({int(event.mask.sum()):,} px)"
                  + (" — logged to the session store" if self.logger is not None else ""))
        return new_id

    @user_action
    def next_image(self) -> Any:
        """Next image [N]: the next path given to ``rrsis napari`` (an unaccepted mask is logged as skipped)."""
        if self.queue_index + 1 >= len(self.queue):
            raise ImageError("No next image: pass several images to `rrsis napari IMAGE ...`, or open one "
                             "with File > Open.")
        if self.session is not None and self.session.current is not None:
            self.session.accept(status="skipped")
            show_info("The unaccepted mask was logged as skipped.")
        self.queue_index += 1
        return self.open_image(self.queue[self.queue_index], replace=True)

    @user_action
    def export(self, path: str | Path) -> list[str] | None:
        """Write the accepted objects to ``path`` (.geojson polygons or .tif labels) in the image CRS."""
        from napari_rrsis._writer import write_labels_geojson, write_labels_geotiff

        if self.accepted_layer is None:
            raise NoImageError("Nothing to export yet: open an image and accept an object first.")
        state = self.accepted_layer._get_state()
        suffix = Path(path).suffix.lower()
        if suffix in (".geojson", ".json"):
            out = write_labels_geojson(str(path), self.accepted_layer.data, state)
        elif suffix in (".tif", ".tiff"):
            out = write_labels_geotiff(str(path), self.accepted_layer.data, state)
        else:
            raise PromptError(f"Export to .geojson or .tif, not '{suffix or path}'.")
        self._say("system", f"exported {len(state['metadata'].get('objects', {}))} object(s) to {Path(path).name}")
        return out

    def close(self) -> None:
        """End the session log (call when the viewer closes)."""
        self._finish_image()


def describe(pred: Prediction) -> str:
    """One conversational line for a prediction: area, scores, ambiguity and the suggestion."""
    text = f"{pred.area:,} px · {pred.iou_label} · {pred.latency_ms:.0f} ms"
    if pred.object_score < 0.5:  # said only when low (the shipped model's is 1.00 throughout)
        text += f" · object {pred.object_score:.2f}: is it there?"
    if pred.area == 0:
        text += " — found nothing; rephrase or click on the object"
    elif pred.likely_off:
        text += " — likely off: + click the object you mean, − click what does not belong"
    if pred.offers_choice:
        n = len(pred.candidates)
        text += (f"\n⚠ ambiguous ({pred.ambiguity:.2f}): {n} candidate region(s) outlined"
                 if pred.ambiguity is not None else "\n⚠ ambiguous")
        names = ", ".join(f"{i} {CANDIDATE_COLOR_NAMES[(i - 1) % len(CANDIDATE_COLOR_NAMES)]}"
                          for i in range(1, min(n, len(CANDIDATE_COLOR_NAMES)) + 1))
        text += f" ({names}{', …' if n > len(CANDIDATE_COLOR_NAMES) else ''})"
        text += "; say which (“the one on the left”, or its number: “2”) or click it"
        if pred.shows_one_candidate:
            text += "; the likeliest is shown, a − click on it shows the next"
        if pred.suggests_confirmation:
            x, y, _ = pred.suggested_click
            text += f"; is it the one at ({x:.0f}, {y:.0f}) (star)? a + click there keeps it alone"
        elif pred.suggested_click is not None:
            x, y, label = pred.suggested_click
            text += f"; suggested {'+' if label else '−'} click at ({x:.0f}, {y:.0f}) (star)"
    return text


def _set_candidate_numbers(layer, candidates) -> None:
    """Put each candidate's number (1, 2, …) at its interior point (``Candidate.point``, (x, y) pixels), ringed in its
    outline colour, into the candidate-numbers points layer (napari points are (row, col))."""
    points = np.array([[c.point[1], c.point[0]] for c in candidates], dtype=np.float64).reshape(-1, 2)
    layer.data = points
    layer.features = {"number": np.arange(1, len(points) + 1)}
    if len(points):
        layer.border_color = [CANDIDATE_COLORS[i % len(CANDIDATE_COLORS)] for i in range(len(points))]
    layer.refresh()


def _set_data(layer, values: np.ndarray) -> None:
    """Write an H×W array into a layer in place when the shape matches (no dims/extent recomputation,
    ~5× cheaper than assigning ``layer.data``), else assign it."""
    data = layer.data
    if isinstance(data, np.ndarray) and data.shape == values.shape:
        np.copyto(data, values, casting="unsafe")
        layer.refresh()
    else:
        layer.data = values.astype(data.dtype if isinstance(data, np.ndarray) else values.dtype)


def set_layer_transform(layer, geo: dict[str, Any]) -> None:
    """Reset a layer's placement, then apply ``scale``/``translate``/``affine`` from :func:`layer_kwargs`."""
    layer.affine = np.asarray(geo.get("affine", np.eye(3)))
    layer.scale = geo.get("scale", (1.0, 1.0))
    layer.translate = geo.get("translate", (0.0, 0.0))


def raster_from_layer(layer) -> RasterImage:
    """A :class:`RasterImage` from a napari image layer (RGB or grey, any numeric dtype)."""
    if getattr(layer, "multiscale", False):
        raise ImageError(f"Layer {layer.name} is multiscale; open a single-resolution image or a crop.")
    data = np.asarray(layer.data)
    if data.ndim == 3 and not getattr(layer, "rgb", False):
        raise ImageError(f"Layer {layer.name} is a {data.shape} stack, not a 2-D image; open one image.")
    if data.ndim not in (2, 3):
        raise ImageError(f"Layer {layer.name} has shape {data.shape}; expected H×W or H×W×3.")
    pixels = to_rgb_uint8(data)
    meta = layer.metadata or {}
    transform = meta.get("transform")
    transform = tuple(transform) if transform is not None else transform_from_layer_state(layer._get_state())
    path = meta.get("path") or getattr(getattr(layer, "source", None), "path", None)
    return RasterImage(pixels, crs=meta.get("crs"), transform=transform, path=path,
                       band_count=int(meta.get("band_count", 3)), source_dtype=str(meta.get("source_dtype", data.dtype)))
