"""sync worker claims: sites.claimed_until

Revision ID: 5c1f0a9d7e21
Revises: 223b22e0b255
Create Date: 2026-11-23 19:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

from services.models.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = '5c1f0a9d7e21'
down_revision = '223b22e0b255'
branch_labels = None
depends_on = None


def upgrade():
    # A worker claims a due check by setting claimed_until (its lease); next_check_at keeps the due time,
    # so a claim that is never finished (worker killed) is claimed again for the same slot once it expires.
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
