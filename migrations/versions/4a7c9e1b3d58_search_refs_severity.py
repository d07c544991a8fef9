"""search_refs: the finding's severity rank, so that a search's page in severity order is read off them

A common word (`redirect`: 125,000 of 1M findings, all of one severity) was answered by walking the
findings in the list's order with LIKE: every finding of a higher severity was read before the first
match (1.6 s). A finding's severity never changes once written (imports and triage change its status and
times only), so its references can carry it: a search's page is then the first references of the
matching texts in (severity, id) order, read without touching `findings` (services/search.py).

The rank is copied from the findings here (one UPDATE over two references per finding: 14 s for a
million findings). The column stays nullable: a sync worker of the previous release, still running while
this migrates, writes references without it, and searches read such a reference's rank off its finding.

Revision ID: 4a7c9e1b3d58
Revises: 8c4f2a6d9e17
Create Date: 2026-12-01 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4a7c9e1b3d58'
down_revision = '8c4f2a6d9e17'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('search_refs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('severity_rank', sa.SmallInteger(), nullable=True))
    op.execute(
        "UPDATE search_refs SET severity_rank = "
        "(SELECT findings.severity_rank FROM findings WHERE findings.id = search_refs.finding_id)"
    )


def downgrade():
    with op.batch_alter_table('search_refs', schema=None) as batch_op:
        batch_op.drop_column('severity_rank')
