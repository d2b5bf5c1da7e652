"""Initial schema: model versions, images, sessions, turns, annotations and their turn traces.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("card", sa.JSON, nullable=True),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("path", sa.Text, nullable=True),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("band_count", sa.Integer, nullable=False),
        sa.Column("bands", sa.JSON, nullable=True),
        sa.Column("crs", sa.Text, nullable=True),
        sa.Column("transform", sa.JSON, nullable=True),
        sa.Column("pixels_png", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id"), nullable=False),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("annotator", sa.String(200), nullable=True),
        sa.Column("client", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_sessions_image_id", "sessions", ["image_id"])
    op.create_index("ix_sessions_started_at", "sessions", ["started_at"])
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("object_index", sa.Integer, nullable=False),
        sa.Column("turn_index", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("points", sa.JSON, nullable=True),
        sa.Column("labels", sa.JSON, nullable=True),
        sa.Column("box", sa.JSON, nullable=True),
        sa.Column("prior_turn_id", sa.Integer, sa.ForeignKey("turns.id"), nullable=True),
        sa.Column("used_prior", sa.Boolean, nullable=False),
        sa.Column("mask_counts", sa.Text, nullable=True),
        sa.Column("mask_height", sa.Integer, nullable=True),
        sa.Column("mask_width", sa.Integer, nullable=True),
        sa.Column("mask_area", sa.Integer, nullable=True),
        sa.Column("iou_score", sa.Float, nullable=True),
        sa.Column("object_score", sa.Float, nullable=True),
        sa.Column("ambiguity", sa.Float, nullable=True),
        sa.Column("ambiguous", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("undone", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("session_id", "seq", name="uq_turns_session_seq"),
    )
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id"), nullable=False),
        sa.Column("object_index", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expressions", sa.JSON, nullable=False),
        sa.Column("mask_counts", sa.Text, nullable=False),
        sa.Column("mask_height", sa.Integer, nullable=False),
        sa.Column("mask_width", sa.Integer, nullable=False),
        sa.Column("mask_area", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_annotations_session_id", "annotations", ["session_id"])
    op.create_index("ix_annotations_image_id", "annotations", ["image_id"])
    op.create_table(
        "annotation_turns",
        sa.Column(
            "annotation_id", sa.Integer, sa.ForeignKey("annotations.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("turn_id", sa.Integer, sa.ForeignKey("turns.id"), nullable=False),
    )
    op.create_index("ix_annotation_turns_turn_id", "annotation_turns", ["turn_id"])


def downgrade() -> None:
    for table in ("annotation_turns", "annotations", "turns", "sessions", "images", "model_versions"):
        op.drop_table(table)
