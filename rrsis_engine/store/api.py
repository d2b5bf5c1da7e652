"""The session store: open (and migrate) a database, start session logs, read annotations back.

    store = open_store()                       # $RRSIS_DB or ./sessions.db; a path or SQLAlchemy URL
    logger = store.start_session(image, client="web", model_version=predictor.model_version)
    session.subscribe(logger)                  # RefinementSession events -> rows
    logger.close()
    for rec in store.list_annotations(status="accepted"):
        rec.mask                               # H×W bool, image frame
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from rrsis_engine import rle
from rrsis_engine.errors import StoreError
from rrsis_engine.store import models as m
from rrsis_engine.store import validate as v
from rrsis_engine.store.db import (
    create_store_engine,
    describe_error,
    migrate,
    resolve_url,
    write_transaction,
)
from rrsis_engine.store.logger import SessionLogger

if TYPE_CHECKING:
    from rrsis_engine.imageio import RasterImage

log = logging.getLogger("rrsis.store")


@dataclass
class TurnRecord:
    """A stored turn. points: N×2 (x, y) pixels; box: (x0, y0, x1, y1) or None."""

    id: int
    seq: int
    turn_index: int
    kind: str
    text: str
    points: list[list[float]]
    labels: list[int]
    box: list[float] | None
    used_prior: bool
    undone: bool
    iou_score: float | None
    quality: float | None
    object_score: float | None
    ambiguity: float | None
    ambiguous: bool
    latency_ms: float | None
    rle: dict | None

    @property
    def mask(self) -> np.ndarray | None:
        """H×W bool predicted mask (None for a clear turn)."""
        return None if self.rle is None else rle.decode(self.rle)


@dataclass
class AnnotationRecord:
    """A stored annotation with its image's metadata. ``mask`` (H×W bool) is decoded on first use."""

    id: int
    session_id: str
    status: str
    expressions: list[str]
    rle: dict
    area: int
    created_at: datetime
    image_id: int
    image_hash: str
    image_path: str | None
    image_size: tuple[int, int]  # (H, W)
    crs: str | None
    transform: tuple[float, ...] | None
    client: str
    annotator: str | None
    model_version: str | None
    turns: list[TurnRecord] = field(default_factory=list)

    @property
    def expression(self) -> str:
        """The final expression (the last one typed), '' if none."""
        return self.expressions[-1] if self.expressions else ""

    @cached_property
    def mask(self) -> np.ndarray:
        return rle.decode(self.rle)


def _parse_since(since) -> datetime | None:
    if since is None or isinstance(since, datetime):
        return since
    if isinstance(since, date):
        return datetime(since.year, since.month, since.day)
    try:
        parsed = datetime.fromisoformat(str(since))
    except ValueError:
        raise StoreError(f"--since {since!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM.") from None
    if parsed.tzinfo is not None:
        from datetime import timezone

        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


_live_stores: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:  # pragma: no cover - exercised by process exit
    for store in list(_live_stores):
        try:
            store.flush_all(final=True)
        except Exception:
            pass


class Store:
    """A migrated session database. Use :func:`open_store`."""

    def __init__(self, url: str):
        self.url = url
        self.engine = create_store_engine(url)
        self.display_url = self.engine.url.render_as_string(hide_password=True)
        self._loggers: weakref.WeakSet[SessionLogger] = weakref.WeakSet()
        self._lock = threading.Lock()
        try:
            self.revision = migrate(self.engine)
        except StoreError:
            self.engine.dispose()
            raise
        except (SQLAlchemyError, OSError) as exc:
            self.engine.dispose()
            raise StoreError(
                f"Cannot open the session database {self.display_url}: {describe_error(exc)}. Check the path "
                "and permissions, or choose another --db."
            ) from None
        _live_stores.add(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # ---- writing ---------------------------------------------------------------------------------
    def start_session(
        self,
        image: RasterImage,
        client: str = "cli",
        annotator: str | None = None,
        model_version: str | None = None,
        store_images: bool = False,
        retry_interval: float = 2.0,
    ) -> SessionLogger:
        """A logger for one session on ``image``. Only hashes, paths and geo metadata of the image are
        stored unless ``store_images`` (then a PNG of its RGB pixels too)."""
        return SessionLogger(self, image, client, annotator, model_version, store_images, retry_interval)

    def flush_all(self, final: bool = False) -> int:
        """Retry every logger with unsaved events; returns how many events are still unsaved."""
        left = 0
        for lg in list(self._loggers):
            lg.flush()
            left += lg.status.pending
        if final and left:
            log.error(
                "Session log: %d event(s) could not be written to %s and are lost at exit. "
                "Fix the database (permissions, disk space) before closing next time.", left, self.display_url,
            )
        return left

    def record_training_run(
        self,
        name: str,
        annotation_ids: list[int],
        base_model: str | None = None,
        output_model: str | None = None,
        metrics: dict | None = None,
        promoted: bool = False,
    ) -> int:
        """Record a training run and which annotations it used; returns the run id."""
        name = v.check_text(name, "run name", v.MAX_NAME_CHARS)

        def _write(conn: Connection) -> int:
            base = self._ensure_model_version(conn, base_model) if base_model else None
            out = self._ensure_model_version(conn, output_model) if output_model else None
            run_id = conn.execute(
                insert(m.TrainingRun).returning(m.TrainingRun.id),
                [{"name": name, "base_model_version_id": base, "output_model_version_id": out,
                  "started_at": m.utcnow(), "ended_at": m.utcnow(), "promoted": promoted, "metrics": metrics}],
            ).scalar_one()
            ids = sorted(set(int(i) for i in annotation_ids))
            for start in range(0, len(ids), 5000):
                conn.execute(
                    insert(m.TrainingRunAnnotation),
                    [{"run_id": run_id, "annotation_id": i} for i in ids[start : start + 5000]],
                )
            return run_id

        return self._write(_write)

    def _write(self, fn):
        try:
            return write_transaction(self.engine, fn)
        except SQLAlchemyError as exc:
            raise StoreError(f"Cannot write to {self.display_url}: {describe_error(exc)}.") from None

    def _register(self, logger: SessionLogger) -> None:
        self._loggers.add(logger)

    def _reset_connections(self) -> None:
        """Drop pooled connections (after a failed write) so the next try reconnects, e.g. after the
        file was made writable again or the server came back."""
        self.engine.pool.dispose()

    def _upsert_ignore(self, conn: Connection, model, row: dict, key: str) -> None:
        name = conn.dialect.name
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        elif name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            dialect_insert = None
        if dialect_insert is not None:
            conn.execute(dialect_insert(model).on_conflict_do_nothing(index_elements=[key]), [row])
            return
        exists = conn.execute(select(getattr(model, key)).where(getattr(model, key) == row[key])).first()
        if not exists:
            conn.execute(insert(model), [row])

    def _ensure_image(self, conn: Connection, row: dict) -> int:
        row = {**row, "created_at": m.utcnow()}
        self._upsert_ignore(conn, m.Image, row, "content_hash")
        image_id, has_pixels = conn.execute(
            select(m.Image.id, m.Image.pixels_png.is_not(None)).where(m.Image.content_hash == row["content_hash"])
        ).one()
        if row.get("pixels_png") is not None and not has_pixels:
            conn.execute(m.Image.__table__.update().where(m.Image.id == image_id).values(pixels_png=row["pixels_png"]))
        return image_id

    def _ensure_model_version(self, conn: Connection, name: str) -> int:
        self._upsert_ignore(conn, m.ModelVersion, {"name": name, "created_at": m.utcnow()}, "name")
        return conn.execute(select(m.ModelVersion.id).where(m.ModelVersion.name == name)).scalar_one()

    # ---- reading ---------------------------------------------------------------------------------
    def _read(self, fn):
        try:
            with self.engine.connect() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"Cannot read {self.display_url}: {describe_error(exc)}.") from None

    def iter_annotations(
        self,
        status: str | None = "accepted",
        since=None,
        limit: int | None = None,
        with_turns: bool = False,
        batch_size: int = 2000,
    ) -> Iterator[AnnotationRecord]:
        """Annotations in id order (``status=None``: all), read in batches (keyset pagination)."""
        if status is not None and status not in v.STATUSES:
            raise StoreError(f"Unknown status {status!r}; use one of {', '.join(v.STATUSES)}.")
        since_dt = _parse_since(since)
        last_id = 0
        done = 0
        while limit is None or done < limit:
            n = batch_size if limit is None else min(batch_size, limit - done)
            q = (
                select(
                    m.Annotation, m.Image.content_hash, m.Image.path, m.Image.crs, m.Image.transform,
                    m.Session.client, m.Session.annotator, m.ModelVersion.name,
                )
                .join(m.Image, m.Image.id == m.Annotation.image_id)
                .join(m.Session, m.Session.id == m.Annotation.session_id)
                .outerjoin(m.ModelVersion, m.ModelVersion.id == m.Session.model_version_id)
                .where(m.Annotation.id > last_id)
                .order_by(m.Annotation.id)
                .limit(n)
            )
            if status is not None:
                q = q.where(m.Annotation.status == status)
            if since_dt is not None:
                q = q.where(m.Annotation.created_at >= since_dt)

            def _batch(conn, q=q):
                from sqlalchemy.orm import Session as OrmSession

                with OrmSession(conn) as s:
                    rows = s.execute(q).all()
                    recs = [self._record(*r) for r in rows]
                    if with_turns and recs:
                        self._attach_turns(s, recs)
                    return recs

            recs = self._read(_batch)
            if not recs:
                return
            yield from recs
            done += len(recs)
            last_id = recs[-1].id
            if len(recs) < n:
                return

    def list_annotations(self, status: str | None = "accepted", since=None, limit: int | None = None,
                         with_turns: bool = True) -> list[AnnotationRecord]:
        """Annotations as records with .id, .expressions, .mask (H×W bool), .image_path, .image_hash,
        .turns (the active turn trace, in order)."""
        return list(self.iter_annotations(status, since, limit, with_turns=with_turns))

    @staticmethod
    def _record(a: m.Annotation, h, path, crs, transform, client, annotator, mv) -> AnnotationRecord:
        return AnnotationRecord(
            id=a.id, session_id=a.session_id, status=a.status, expressions=list(a.expressions or []),
            rle={"size": [a.mask_height, a.mask_width], "counts": a.mask_counts}, area=a.mask_area,
            created_at=a.created_at, image_id=a.image_id, image_hash=h, image_path=path,
            image_size=(a.mask_height, a.mask_width), crs=crs,
            transform=tuple(transform) if transform else None, client=client, annotator=annotator,
            model_version=mv,
        )

    @staticmethod
    def _turn_record(t: m.Turn) -> TurnRecord:
        return TurnRecord(
            id=t.id, seq=t.seq, turn_index=t.turn_index, kind=t.kind, text=t.text, points=t.points or [],
            labels=t.labels or [], box=t.box, used_prior=t.used_prior, undone=t.undone, iou_score=t.iou_score,
            quality=t.quality, object_score=t.object_score, ambiguity=t.ambiguity, ambiguous=t.ambiguous, latency_ms=t.latency_ms,
            rle=None if t.mask_counts is None else {"size": [t.mask_height, t.mask_width], "counts": t.mask_counts},
        )

    def _attach_turns(self, s, recs: list[AnnotationRecord]) -> None:
        by_id = {r.id: r for r in recs}
        rows = s.execute(
            select(m.AnnotationTurn.annotation_id, m.Turn)
            .join(m.Turn, m.Turn.id == m.AnnotationTurn.turn_id)
            .where(m.AnnotationTurn.annotation_id.in_(list(by_id)))
            .order_by(m.AnnotationTurn.annotation_id, m.AnnotationTurn.position)
        ).all()
        for ann_id, t in rows:
            by_id[ann_id].turns.append(self._turn_record(t))

    def list_sessions(self, since=None, limit: int | None = 50) -> list[dict[str, Any]]:
        """Newest sessions first, with their image, turn and annotation counts."""
        since_dt = _parse_since(since)

        def _q(conn):
            n_turns = select(func.count()).where(m.Turn.session_id == m.Session.id).scalar_subquery()
            n_acc = (
                select(func.count())
                .where(m.Annotation.session_id == m.Session.id, m.Annotation.status == "accepted")
                .scalar_subquery()
            )
            q = (
                select(m.Session, m.Image.path, m.ModelVersion.name, n_turns, n_acc)
                .join(m.Image, m.Image.id == m.Session.image_id)
                .outerjoin(m.ModelVersion, m.ModelVersion.id == m.Session.model_version_id)
                .order_by(m.Session.started_at.desc())
            )
            if since_dt is not None:
                q = q.where(m.Session.started_at >= since_dt)
            if limit:
                q = q.limit(limit)
            from sqlalchemy.orm import Session as OrmSession

            with OrmSession(conn) as s:
                return [
                    {"id": se.id, "started_at": se.started_at, "ended_at": se.ended_at, "client": se.client,
                     "annotator": se.annotator, "image_path": path, "model_version": mv, "turns": nt,
                     "accepted": na}
                    for se, path, mv, nt, na in s.execute(q).all()
                ]

        return self._read(_q)

    def get_session(self, session_id: str) -> dict[str, Any]:
        """One session (id or a unique prefix of it) with all its turns and annotations."""
        session_id = v.check_text(session_id, "session id", 64)

        def _q(conn):
            from sqlalchemy.orm import Session as OrmSession

            with OrmSession(conn) as s:
                found = s.scalars(
                    select(m.Session).where(m.Session.id.startswith(session_id, autoescape=True)).limit(2)
                ).all()
                if not found:
                    raise StoreError(f"No session {session_id!r}; `rrsis sessions list` shows the ids.")
                if len(found) > 1:
                    raise StoreError(f"Session id prefix {session_id!r} is ambiguous; give more characters.")
                se = found[0]
                img = se.image
                turns = s.scalars(select(m.Turn).where(m.Turn.session_id == se.id).order_by(m.Turn.seq)).all()
                anns = s.scalars(
                    select(m.Annotation).where(m.Annotation.session_id == se.id).order_by(m.Annotation.id)
                ).all()
                return {
                    "id": se.id, "client": se.client, "annotator": se.annotator,
                    "model_version": se.model_version.name if se.model_version else None,
                    "started_at": se.started_at, "ended_at": se.ended_at,
                    "image": {"hash": img.content_hash, "path": img.path, "height": img.height,
                              "width": img.width, "bands": img.bands, "crs": img.crs, "transform": img.transform},
                    "turns": [self._turn_record(t) for t in turns],
                    "annotations": [
                        {"id": a.id, "status": a.status, "expressions": a.expressions, "area": a.mask_area,
                         "object_index": a.object_index, "created_at": a.created_at}
                        for a in anns
                    ],
                }

        return self._read(_q)

    def stats(self) -> dict[str, Any]:
        """Counts for `rrsis sessions stats`."""

        def _q(conn):
            one = lambda q: conn.execute(q).scalar_one()  # noqa: E731
            by_status = dict(conn.execute(select(m.Annotation.status, func.count()).group_by(m.Annotation.status)).all())
            by_client = dict(conn.execute(select(m.Session.client, func.count()).group_by(m.Session.client)).all())
            n_acc = by_status.get("accepted", 0)
            acc_turns = one(
                select(func.count()).select_from(m.AnnotationTurn)
                .join(m.Annotation, m.Annotation.id == m.AnnotationTurn.annotation_id)
                .where(m.Annotation.status == "accepted")
            )
            return {
                "database": self.display_url,
                "schema_revision": self.revision,
                "images": one(select(func.count()).select_from(m.Image)),
                "sessions": one(select(func.count()).select_from(m.Session)),
                "sessions_by_client": by_client,
                "turns": one(select(func.count()).select_from(m.Turn)),
                "undone_turns": one(select(func.count()).select_from(m.Turn).where(m.Turn.undone.is_(True))),
                "annotations": by_status,
                "turns_per_accepted_annotation": round(acc_turns / n_acc, 2) if n_acc else None,
                "annotators": one(select(func.count(func.distinct(m.Session.annotator)))),
                "model_versions": one(select(func.count()).select_from(m.ModelVersion)),
                "training_runs": one(select(func.count()).select_from(m.TrainingRun)),
                "first_session": one(select(func.min(m.Session.started_at))),
                "last_session": one(select(func.max(m.Session.started_at))),
            }

        return self._read(_q)

    def image_pixels_png(self, image_id: int) -> bytes | None:
        """The stored PNG of an image (only when it was logged with ``store_images``)."""
        return self._read(lambda c: c.execute(select(m.Image.pixels_png).where(m.Image.id == image_id)).scalar())

    def integrity_check(self) -> str:
        """'ok' when SQLite's ``PRAGMA integrity_check`` passes (PostgreSQL: a trivial query)."""
        if self.dialect == "sqlite":
            rows = self._read(lambda c: c.exec_driver_sql("PRAGMA integrity_check").fetchall())
            return "; ".join(r[0] for r in rows)
        self._read(lambda c: c.execute(text("SELECT 1")).scalar())
        return "ok"

    def close(self) -> None:
        """Flush what the loggers still hold and release connections."""
        self.flush_all()
        self.engine.dispose()
        _live_stores.discard(self)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_store(url_or_path=None) -> Store:
    """Open (creating and migrating as needed) the session database.

    ``url_or_path``: None -> ``$RRSIS_DB`` or ``./sessions.db``; a file path (SQLite) or any SQLAlchemy
    URL (``postgresql://user@host/db`` for a shared team log). Raises StoreError with the cause.
    """
    return Store(resolve_url(url_or_path))
