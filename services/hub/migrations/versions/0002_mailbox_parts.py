"""Mailbox parts: a row set may travel as several sealed envelopes of one upload.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("part", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("parts", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(
            sa.Column("upload", sa.String(length=32), server_default="0", nullable=False)
        )
        batch_op.drop_constraint("uq_mailbox_query_id_step", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_mailbox_query_id_step_part"), ["query_id", "step", "part"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM mailbox WHERE parts > 1")
    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_mailbox_query_id_step_part"), type_="unique")
        batch_op.create_unique_constraint("uq_mailbox_query_id_step", ["query_id", "step"])
        batch_op.drop_column("upload")
        batch_op.drop_column("parts")
        batch_op.drop_column("part")
