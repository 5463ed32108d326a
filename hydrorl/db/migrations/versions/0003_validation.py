"""the best validated value of an agent

Agents hold some training scenarios aside and score their checkpoints on them by their
true value (revenue and end water value, as the evaluation counts it), as a share of the
perfect-foresight bound of the same episodes; the best agent of a run is the one with
the best such score.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.add_column(sa.Column("best_validation", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.drop_column("best_validation")
