"""call duration, summed for monthly minutes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duration_secs", sa.Float(), nullable=True))
    # Calls that ended before this revision: their length from their start and end.
    calls = sa.table(
        "calls",
        sa.column("call_id", sa.String),
        sa.column("started_at", sa.DateTime(timezone=True)),
        sa.column("ended_at", sa.DateTime(timezone=True)),
        sa.column("duration_secs", sa.Float),
    )
    conn = op.get_bind()
    ended = conn.execute(
        sa.select(calls.c.call_id, calls.c.started_at, calls.c.ended_at).where(
            calls.c.started_at.is_not(None), calls.c.ended_at.is_not(None)
        )
    ).all()
    for call_id, started, finished in ended:
        started = started if started.tzinfo else started.replace(tzinfo=UTC)
        finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
        conn.execute(
            calls.update()
            .where(calls.c.call_id == call_id)
            .values(duration_secs=(finished - started).total_seconds())
        )


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("duration_secs")
