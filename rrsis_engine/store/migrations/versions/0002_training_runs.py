"""Training runs and the annotations each used; index for exports by status and date.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("base_model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("output_model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("promoted", sa.Boolean, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=True),
    )
    op.create_table(
        "training_run_annotations",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("annotation_id", sa.Integer, sa.ForeignKey("annotations.id"), primary_key=True),
    )
    op.create_index(
        "ix_training_run_annotations_annotation_id", "training_run_annotations", ["annotation_id"]
    )
    op.create_index("ix_annotations_status_created", "annotations", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_annotations_status_created", table_name="annotations")
    op.drop_table("training_run_annotations")
    op.drop_table("training_runs")
