"""a name for every run

Runs are listed, compared, renamed and deleted in a runs table; a user names a run
("baseline", "lr 1e-4") instead of remembering its id.  The name is optional (none:
"run <id>") and unique within a project, by a unique index: SQLite adds an index without
rebuilding the table (a rebuild would drop ``project_run`` with foreign keys on, deleting
every agent and curve through their cascades).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("project_run") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch.create_index("ix_project_run_project_id_name", ["project_id", "name"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("project_run") as batch:
        batch.drop_index("ix_project_run_project_id_name")
        batch.drop_column("name")
