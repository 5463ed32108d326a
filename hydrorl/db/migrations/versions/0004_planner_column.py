"""the forecast planner's value beside every evaluation episode

An evaluation plays, beside the agent, the perfect-foresight bound and the SDP benchmark;
it now also plays the forecast planner (the one a guided agent corrects: a forecast
fitted on the training forecast, 28 days ahead, re-planned every 6 hours), so that every
episode shows the agent against the best classical policy of its scenario.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evaluation_episode") as batch:
        batch.add_column(sa.Column("planner_eur", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluation_episode") as batch:
        batch.drop_column("planner_eur")
