"""findings: drop the two indexes the audit found no list needs

`ix_findings_scanner` (scanner) and `ix_findings_status_sev` (status, severity_rank) served no page of
`GET /bugs` that another index does not serve as well: with a status or scanner filter MySQL reads the
sort's own index (severity, last or first seen, id) in order and filters, and a site's filters go by the
(site_id, ...) indexes. Each cost every imported finding an index entry. `bench/bench_import.py --audit`
shows the plans with and without each index (docs/benchmarks.md, "Indexes of findings").

Revision ID: 5b8e2d4f6a13
Revises: 3a9c5e1d7b42
Create Date: 2026-12-01 10:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5b8e2d4f6a13'
down_revision = '3a9c5e1d7b42'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index('ix_findings_scanner')
        batch_op.drop_index('ix_findings_status_sev')


def downgrade():
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index('ix_findings_status_sev', ['status', 'severity_rank'], unique=False)
        batch_op.create_index('ix_findings_scanner', ['scanner'], unique=False)
