"""findings: indexes for the first_seen_at sort

Revision ID: 8e4b2c7a1f30
Revises: 5c1f0a9d7e21
Create Date: 2026-11-30 23:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '8e4b2c7a1f30'
down_revision = '5c1f0a9d7e21'
branch_labels = None
depends_on = None


def upgrade():
    # GET /bugs?sort=first_seen_at, with and without site_id, reads a page off the index instead of
    # sorting every matching finding.
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index('ix_findings_site_first_seen', ['site_id', 'first_seen_at'], unique=False)
        batch_op.create_index('ix_findings_first_seen', ['first_seen_at'], unique=False)


def downgrade():
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index('ix_findings_first_seen')
        batch_op.drop_index('ix_findings_site_first_seen')
