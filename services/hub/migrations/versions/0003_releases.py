"""Releases: each released query's definition and privacy loss, per agreement.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.hub.store.base import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("query_id", sa.String(length=32), nullable=False),
        sa.Column("agreement_id", sa.String(length=64), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name=op.f("fk_releases_agreement_id_agreements")
        ),
        sa.ForeignKeyConstraint(
            ["query_id"], ["queries.id"], name=op.f("fk_releases_query_id_queries")
        ),
        sa.PrimaryKeyConstraint("query_id", name=op.f("pk_releases")),
    )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_releases_agreement_id"), ["agreement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_releases_agreement_id"))
    op.drop_table("releases")
