"""users of the built-in issuer: disabled at once, and usernames unique within a tenant

A username taken in another tenant answered 409, so usernames could be probed across the
platform; now only the tenant's own names conflict, and a tenant's user signs in as
``username@tenant_id``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0003 left the constraint unnamed: PostgreSQL names it itself; on SQLite the batch copy
# names it by this convention so it can be dropped.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
PER_TENANT = "uq_identity_users_tenant_username"


def _platform_wide() -> str:
    postgres = op.get_bind().dialect.name == "postgresql"
    return "identity_users_username_key" if postgres else "uq_identity_users_username"


def upgrade() -> None:
    with op.batch_alter_table("identity_users", naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(_platform_wide(), type_="unique")
        batch_op.create_unique_constraint(PER_TENANT, ["tenant_id", "username"])


def downgrade() -> None:
    with op.batch_alter_table("identity_users", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(PER_TENANT, type_="unique")
        batch_op.create_unique_constraint(_platform_wide(), ["username"])
        batch_op.drop_column("disabled_at")
