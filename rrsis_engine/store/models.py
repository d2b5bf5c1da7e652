"""SQLAlchemy 2.0 typed models of the session store (schema diagram: docs/store.md).

Masks are stored as compressed COCO RLE (``rrsis_engine.rle``): the ``counts`` string plus the mask
height and width. Points are (x, y) = (col, row) pixels of the full-resolution image; boxes are
(x0, y0, x1, y1) pixels; affine transforms are GDAL/rasterio (a, b, c, d, e, f) pixel → map.
Timestamps are naive UTC.

The tables are created by the Alembic migrations in ``migrations/versions`` (never by
``metadata.create_all``); these models must match the head revision (a test checks it).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Naive UTC now (what every timestamp column holds)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ModelVersion(Base):
    """A model that produced predictions (``Predictor.model_version``) or came out of a training run."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class Image(Base):
    """An image, identified by the sha256 of its RGB pixels. Pixels only when ``store_images``."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str | None] = mapped_column(Text, default=None)
    height: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    band_count: Mapped[int] = mapped_column(Integer, default=3)
    bands: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    crs: Mapped[str | None] = mapped_column(Text, default=None)
    transform: Mapped[list[float] | None] = mapped_column(JSON, default=None)
    pixels_png: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Session(Base):
    """One labelling session: one image in one front end. ``id`` is a uuid4 hex made by the client."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), default=None)
    annotator: Mapped[str | None] = mapped_column(String(200), default=None)
    client: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    image: Mapped[Image] = relationship()
    model_version: Mapped[ModelVersion | None] = relationship()


class Turn(Base):
    """One turn of a refinement session, in logging order (``seq``), including undone ones.

    ``object_index`` counts the objects of the session (it grows after each accept/reject/skip);
    ``turn_index`` is the turn's position in that object's history; ``prior_turn_id`` the turn whose
    mask was the prior (the previous active turn). ``mask_counts`` is NULL for a ``clear`` turn.
    """

    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("session_id", "seq", name="uq_turns_session_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    object_index: Mapped[int] = mapped_column(Integer)
    turn_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    points: Mapped[list[list[float]] | None] = mapped_column(JSON, default=None)
    labels: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    box: Mapped[list[float] | None] = mapped_column(JSON, default=None)
    prior_turn_id: Mapped[int | None] = mapped_column(ForeignKey("turns.id"), default=None)
    used_prior: Mapped[bool] = mapped_column(Boolean, default=False)
    mask_counts: Mapped[str | None] = mapped_column(Text, default=None)
    mask_height: Mapped[int | None] = mapped_column(Integer, default=None)
    mask_width: Mapped[int | None] = mapped_column(Integer, default=None)
    mask_area: Mapped[int | None] = mapped_column(Integer, default=None)
    iou_score: Mapped[float | None] = mapped_column(Float, default=None)
    #: the estimated IoU the front ends showed (Prediction.quality; None without a calibration or for a hand edit)
    quality: Mapped[float | None] = mapped_column(Float, default=None)
    object_score: Mapped[float | None] = mapped_column(Float, default=None)
    ambiguity: Mapped[float | None] = mapped_column(Float, default=None)
    ambiguous: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    undone: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Annotation(Base):
    """The outcome of one object: final mask, expression(s), status accepted / rejected / skipped."""

    __tablename__ = "annotations"
    __table_args__ = (Index("ix_annotations_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    object_index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    expressions: Mapped[list[str]] = mapped_column(JSON)
    mask_counts: Mapped[str] = mapped_column(Text)
    mask_height: Mapped[int] = mapped_column(Integer)
    mask_width: Mapped[int] = mapped_column(Integer)
    mask_area: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AnnotationTurn(Base):
    """The turn trace of an annotation: its active turns in order."""

    __tablename__ = "annotation_turns"

    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id"), index=True)


class TrainingRun(Base):
    """A training run (``rrsis train``), the model it produced and its metrics (revision 0002)."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    base_model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), default=None)
    output_model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), default=None
    )
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class TrainingRunAnnotation(Base):
    """Which annotations a training run used."""

    __tablename__ = "training_run_annotations"

    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True)
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id"), primary_key=True, index=True)
