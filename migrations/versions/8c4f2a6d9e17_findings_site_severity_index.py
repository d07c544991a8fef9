"""findings: (site_id, severity_rank, id, status) replaces (site_id, status, severity_rank); (status, severity_rank) again

A site's findings in the default order (most severe first, then newest) had no index that gives that
order: MySQL walked the global `ix_findings_severity` until 20 of the site's rows turned up, which for
a big, old site (its ids below everyone else's) meant reading most of the table: 1.9 s for the first
page of a 100,000-finding site among 1M findings. The new index gives a site's (severity, id) order
directly (and so an operator's sites can be read site by site and merged), and keeps `status` in the
index so that a site's status filters, its counts and the site page's open counts are still read off
the index alone. Same width as the index it replaces.

`ix_findings_status_sev` (status, severity_rank), dropped by 5b8e2d4f6a13 on plans of findings whose
statuses were spread evenly over severities, is back: statuses follow severity (criticals get fixed,
lows get accepted), and an admin's `status=open` in severity order walked 500,000 entries of the
severity index, each with its row, before the first open finding (7 s). With it each status's first
rows are read in order and merged.

Revision ID: 8c4f2a6d9e17
Revises: 6b2e8d4f1a93
Create Date: 2026-12-01 13:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '8c4f2a6d9e17'
down_revision = '6b2e8d4f1a93'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index(
            'ix_findings_site_sev_status', ['site_id', 'severity_rank', 'id', 'status'], unique=False
        )
        batch_op.drop_index('ix_findings_site_status_sev')
        batch_op.create_index('ix_findings_status_sev', ['status', 'severity_rank'], unique=False)


def downgrade():
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index(
            'ix_findings_site_status_sev', ['site_id', 'status', 'severity_rank'], unique=False
        )
        batch_op.drop_index('ix_findings_site_sev_status')
        batch_op.drop_index('ix_findings_status_sev')
