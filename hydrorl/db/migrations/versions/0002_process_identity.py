"""process identity and queue time of runs and agents

A process id alone is reused by the kernel; with its start time (and the boot it
started in) it names one process, so the reaper can tell a live owner from a
stranger that got the same pid.  ``queued_at`` starts the start-up grace of work
that has not checked in yet (a resumed run keeps its old ``created_at``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("project_run", "agent")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("process_start", sa.String(length=100), nullable=True))
            batch.add_column(sa.Column("queued_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("queued_at")
            batch.drop_column("process_start")
