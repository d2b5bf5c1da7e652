"""The session logger: a RefinementSession listener that writes every turn, undo/redo and accept.

``logger(event)`` validates the event (bad input raises :class:`StoreError` and stores nothing), turns
it into one pending write and flushes the pending writes in one short transaction. When the database
cannot be written (read-only file, full disk, server down, locked for too long) the logger never
raises: it keeps the events in memory, warns (``StoreWarning`` + the ``rrsis.store`` log), reports it
in :attr:`SessionLogger.status` for the UI, and writes everything, in order, at the next event or
:meth:`SessionLogger.flush` once the database is writable again.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from rrsis_engine import rle
from rrsis_engine.errors import StoreError
from rrsis_engine.store import models as m
from rrsis_engine.store import validate as v
from rrsis_engine.store.db import describe_error, write_transaction

if TYPE_CHECKING:
    from rrsis_engine.imageio import RasterImage
    from rrsis_engine.store.api import Store

log = logging.getLogger("rrsis.store")


class StoreWarning(UserWarning):
    """The session log could not be written yet; events are kept in memory."""


@dataclass(frozen=True)
class LoggerStatus:
    """What a front end shows: ``state`` ok / degraded (events waiting in memory) / closed."""

    state: Literal["ok", "degraded", "closed"]
    pending: int
    last_error: str | None

    @property
    def ok(self) -> bool:
        return self.pending == 0

    @property
    def message(self) -> str:
        if self.pending == 0:
            return "Session log: all turns saved." if self.state != "closed" else "Session log: closed, all saved."
        return (
            f"Session log: {self.pending} event(s) not saved yet — {self.last_error or 'database unavailable'}. "
            "They are kept in memory and written as soon as the database is writable again; keep this "
            "window open."
        )


@dataclass
class _Op:
    kind: str
    data: dict[str, Any]


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class SessionLogger:
    """Logs one session (one image, one front end). Subscribe it: ``session.subscribe(logger)``.

    Thread-safe. ``retry_interval`` limits how often a degraded logger retries on new events
    (``flush()`` always tries).
    """

    def __init__(
        self,
        store: Store,
        image: RasterImage,
        client: str = "cli",
        annotator: str | None = None,
        model_version: str | None = None,
        store_images: bool = False,
        retry_interval: float = 2.0,
    ):
        if client not in v.CLIENTS:
            raise StoreError(f"Unknown client {client!r}; use one of {', '.join(v.CLIENTS)}.")
        pixels = getattr(image, "pixels", None)
        if pixels is None or np.asarray(pixels).ndim < 2:
            raise StoreError("start_session needs a RasterImage (rrsis_engine.imageio.read_image).")
        annotator = v.check_optional_name(annotator, "annotator name")
        model_version = v.check_optional_name(model_version, "model version")
        path = v.check_text(os.fspath(image.path), "image path", 4096) if image.path is not None else None
        path = os.path.abspath(path) if path else None  # exports resolve it against the allowed roots
        self.store = store
        self.id = uuid.uuid4().hex
        self.height, self.width = int(image.height), int(image.width)
        self.retry_interval = retry_interval
        self._lock = threading.RLock()
        self._pending: deque[_Op] = deque()
        self._turn_ids: dict[int, int] = {}  # seq -> turns.id (committed)
        self._by_index: list[int] = []  # seq of each turn of the current object's history
        self._seq = 0
        self._object_index = 0
        self._state: Literal["ok", "degraded", "closed"] = "ok"
        self._last_error: str | None = None
        self._last_attempt = 0.0
        self._listeners: list[Callable[[LoggerStatus], None]] = []
        self.n_written = 0
        transform = list(map(float, image.transform)) if image.transform is not None else None
        self._pending.append(
            _Op(
                "session",
                {
                    "image": {
                        "content_hash": image.content_hash(),
                        "path": path,
                        "height": self.height,
                        "width": self.width,
                        "band_count": int(getattr(image, "band_count", 3)),
                        "bands": [int(b) for b in getattr(image, "bands", ()) or ()] or None,
                        "crs": image.crs,
                        "transform": transform,
                        "pixels_png": _png(image.pixels) if store_images else None,
                    },
                    "model_version": model_version,
                    "session": {"id": self.id, "annotator": annotator, "client": client, "started_at": m.utcnow()},
                },
            )
        )
        store._register(self)
        self._flush(force=True)

    # ---- public ----------------------------------------------------------------------------------
    @property
    def status(self) -> LoggerStatus:
        with self._lock:
            return LoggerStatus(self._state, len(self._pending), self._last_error)

    def on_status(self, callback: Callable[[LoggerStatus], None]) -> None:
        """Call ``callback(status)`` whenever the state changes (ok ↔ degraded, closed)."""
        self._listeners.append(callback)

    def __call__(self, event) -> None:
        """Log a TurnEvent / HistoryEvent / AcceptEvent. Raises StoreError only for invalid input."""
        from rrsis_engine.session import AcceptEvent, HistoryEvent, TurnEvent

        with self._lock:
            if self._state == "closed":
                raise StoreError("This session log is closed; start a new one with store.start_session().")
            if isinstance(event, TurnEvent):
                op = self._turn_op(event.turn)
            elif isinstance(event, HistoryEvent):
                op = self._history_op(event)
            elif isinstance(event, AcceptEvent):
                op = self._accept_op(event)
            else:
                raise StoreError(f"The session log cannot record a {type(event).__name__}.")
            self._commit_op(op)
            self._flush()

    def log_turn(self, turn) -> None:
        """Log one :class:`rrsis_engine.session.Turn` (for callers without a RefinementSession)."""
        from rrsis_engine.session import TurnEvent

        self(TurnEvent(self.id, turn))

    def flush(self) -> bool:
        """Try to write everything pending now; True when nothing is left in memory."""
        with self._lock:
            return self._flush(force=True)

    def close(self) -> bool:
        """Mark the session ended and flush. True when everything is saved; otherwise the events stay
        in memory (``store.flush_all()`` retries, and a last attempt is made at exit)."""
        with self._lock:
            if self._state == "closed":
                return not self._pending
            self._pending.append(_Op("close", {"ended_at": m.utcnow()}))
            ok = self._flush(force=True)
            self._state = "closed"
            self._notify()
            return ok

    # ---- event -> op (validation; raises StoreError, changes no state) --------------------------------
    def _turn_op(self, turn) -> _Op:
        kind = turn.kind
        if kind not in v.KINDS:
            raise StoreError(f"Unknown turn kind {kind!r}; expected one of {', '.join(v.KINDS)}.")
        state = turn.state
        text = v.check_text(state.text)
        points, labels = v.check_points(state.points, state.labels, self.height, self.width)
        box = v.check_box(state.box, self.height, self.width)
        row: dict[str, Any] = {
            "kind": kind, "text": text, "points": points or None, "labels": labels or None, "box": box,
            "used_prior": bool(turn.used_prior), "turn_index": int(turn.index),
            "created_at": m.utcnow(),
        }
        pred = turn.prediction
        if pred is not None:
            mask = v.check_mask(pred.mask, self.height, self.width, "predicted mask")
            enc = rle.encode(mask)
            row.update(
                mask_counts=enc["counts"], mask_height=self.height, mask_width=self.width,
                mask_area=int(np.count_nonzero(mask)), iou_score=v.score(pred.iou_score),
                quality=v.score(pred.quality), object_score=v.score(pred.object_score), ambiguity=v.score(pred.ambiguity),
                ambiguous=bool(pred.ambiguous), latency_ms=v.score(pred.latency_ms),
            )
        elif kind != "clear":
            raise StoreError(f"A {kind!r} turn without a prediction cannot be logged.")
        if not 0 <= row["turn_index"] <= len(self._by_index):
            raise StoreError(f"Turn index {row['turn_index']} does not follow the logged history.")
        return _Op("turn", row)

    def _history_op(self, event) -> _Op:
        idx = int(event.turn.index)
        if event.action not in ("undo", "redo") or not 0 <= idx < len(self._by_index):
            raise StoreError(f"Cannot log {event.action!r} of turn {idx}: that turn was never logged.")
        return _Op("history", {"seq": self._by_index[idx], "undone": event.action == "undo"})

    def _accept_op(self, event) -> _Op:
        if event.status not in v.STATUSES:
            raise StoreError(f"Unknown status {event.status!r}; use one of {', '.join(v.STATUSES)}.")
        mask = v.check_mask(event.mask, self.height, self.width, "accepted mask")
        expressions = [v.check_text(e) for e in event.expressions]
        seqs = []
        for t in event.turns:
            if not 0 <= t.index < len(self._by_index):
                raise StoreError(f"Turn {t.index} of the accepted trace was never logged.")
            seqs.append(self._by_index[t.index])
        enc = rle.encode(mask)
        return _Op(
            "accept",
            {
                "row": {
                    "status": event.status, "expressions": expressions, "mask_counts": enc["counts"],
                    "mask_height": self.height, "mask_width": self.width,
                    "mask_area": int(np.count_nonzero(mask)), "created_at": m.utcnow(),
                },
                "seqs": seqs,
            },
        )

    def _commit_op(self, op: _Op) -> None:
        """Advance the in-memory history (only for ops that passed validation)."""
        if op.kind == "turn":
            seq = self._seq
            self._seq += 1
            idx = op.data["turn_index"]
            prior = self._by_index[idx - 1] if idx > 0 else None
            del self._by_index[idx:]
            self._by_index.append(seq)
            op.data.update(seq=seq, object_index=self._object_index, prior_seq=prior)
        elif op.kind == "accept":
            op.data["row"]["object_index"] = self._object_index
            self._object_index += 1
            self._by_index = []
        self._pending.append(op)

    # ---- writing -----------------------------------------------------------------------------------
    def _flush(self, force: bool = False) -> bool:
        if not self._pending:
            return True
        now = time.monotonic()
        if self._state == "degraded" and not force and now - self._last_attempt < self.retry_interval:
            return False
        self._last_attempt = now
        ops = list(self._pending)
        error: BaseException | None = None
        for attempt in range(2):  # lock waits and reconnects are retried inside write_transaction
            try:
                new_ids = write_transaction(self.store.engine, lambda conn: self._apply(conn, ops))
                break
            except (SQLAlchemyError, OSError) as exc:
                error = exc
                self.store._reset_connections()
                if attempt == 0:
                    time.sleep(0.02)
        else:
            self._degrade(error)
            return False
        for _ in ops:
            self._pending.popleft()
        self._turn_ids.update(new_ids)
        self.n_written += len(ops)
        if self._state == "degraded":
            log.warning("Session log %s: the database is writable again; %d event(s) saved.", self.id[:8], len(ops))
            self._state = "ok"
            self._last_error = None
            self._notify()
        return True

    def _degrade(self, exc: BaseException | None) -> None:
        cause = describe_error(exc) if exc is not None else "unknown error"
        changed = self._state != "degraded" or cause != self._last_error
        if self._state != "closed":
            self._state = "degraded"
        self._last_error = cause
        if changed:
            msg = (
                f"Session log {self.id[:8]}: could not write to {self.store.display_url}: {cause}. "
                f"{len(self._pending)} event(s) are kept in memory and will be written when the database is "
                "writable again."
            )
            log.warning(msg)
            warnings.warn(msg, StoreWarning, stacklevel=4)
            self._notify()

    def _notify(self) -> None:
        status = LoggerStatus(self._state, len(self._pending), self._last_error)
        for cb in list(self._listeners):
            try:
                cb(status)
            except Exception:  # a UI callback must never break logging
                log.exception("session log status callback failed")

    def _apply(self, conn: Connection, ops: list[_Op]) -> dict[int, int]:
        new_ids: dict[int, int] = {}

        def turn_id(seq: int) -> int:
            if seq in new_ids:
                return new_ids[seq]
            if seq in self._turn_ids:
                return self._turn_ids[seq]
            found = conn.execute(
                select(m.Turn.id).where(m.Turn.session_id == self.id, m.Turn.seq == seq)
            ).scalar_one()
            return found

        for op in ops:
            d = op.data
            if op.kind == "session":
                image_id = self.store._ensure_image(conn, d["image"])
                mv_id = self.store._ensure_model_version(conn, d["model_version"]) if d["model_version"] else None
                conn.execute(insert(m.Session), [{**d["session"], "image_id": image_id, "model_version_id": mv_id}])
                self._image_id = image_id
            elif op.kind == "turn":
                row = {k: val for k, val in d.items() if k != "prior_seq"}
                row["session_id"] = self.id
                row["prior_turn_id"] = turn_id(d["prior_seq"]) if d["prior_seq"] is not None else None
                row.setdefault("ambiguous", False)
                row["undone"] = False
                new_ids[d["seq"]] = conn.execute(insert(m.Turn).returning(m.Turn.id), [row]).scalar_one()
            elif op.kind == "history":
                conn.execute(
                    update(m.Turn)
                    .where(m.Turn.session_id == self.id, m.Turn.seq == d["seq"])
                    .values(undone=d["undone"])
                )
            elif op.kind == "accept":
                row = {**d["row"], "session_id": self.id, "image_id": self._image_id}
                ann_id = conn.execute(insert(m.Annotation).returning(m.Annotation.id), [row]).scalar_one()
                if d["seqs"]:
                    conn.execute(
                        insert(m.AnnotationTurn),
                        [{"annotation_id": ann_id, "position": i, "turn_id": turn_id(s)} for i, s in enumerate(d["seqs"])],
                    )
            elif op.kind == "close":
                conn.execute(update(m.Session).where(m.Session.id == self.id).values(ended_at=d["ended_at"]))
        return new_ids

    _image_id: int | None = None
