"""queued imports: big reports imported by the sync worker, with their state and progress

bug_imports gets `state` (queued, running, done, failed; existing imports are done), `rows_read`,
`error`, `spool` (the report's file in DATA_DIR/imports while queued), `attempts`, `started_at` and
`finished_at`, and an index on `state` (the worker's queue). findings.last_import_id loses its foreign
key and with it the index MySQL kept for it: every imported row paid for both, and the key's shared
lock on the import's row would block the worker's progress updates of that row during the import.

Revision ID: 3a9c5e1d7b42
Revises: 7d3e9b2c4a15
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from services.models.base import UTCDateTime


# revision identifiers, used by Alembic.
revision = '3a9c5e1d7b42'
down_revision = '7d3e9b2c4a15'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('bug_imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=8), nullable=False, server_default='done'))
        batch_op.add_column(sa.Column('rows_read', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('error', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('spool', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.SmallInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('started_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('finished_at', UTCDateTime(), nullable=True))
        batch_op.create_index('ix_bug_imports_state', ['state'], unique=False)
    op.execute("UPDATE bug_imports SET rows_read = findings_in_report")

    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_constraint('fk_findings_last_import_id_bug_imports', type_='foreignkey')
    if op.get_bind().dialect.name == 'mysql':
        # The index MySQL created by itself for the foreign key stays behind when the key goes.
        op.execute("DROP INDEX fk_findings_last_import_id_bug_imports ON findings")


def downgrade():
    op.execute(
        "UPDATE findings SET last_import_id = NULL WHERE last_import_id IS NOT NULL AND last_import_id "
        "NOT IN (SELECT id FROM bug_imports)"
    )
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_foreign_key(
            'fk_findings_last_import_id_bug_imports', 'bug_imports', ['last_import_id'], ['id'],
            ondelete='SET NULL',
        )
    op.execute("DELETE FROM bug_imports WHERE state <> 'done'")
    with op.batch_alter_table('bug_imports', schema=None) as batch_op:
        batch_op.drop_index('ix_bug_imports_state')
        batch_op.drop_column('finished_at')
        batch_op.drop_column('started_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('spool')
        batch_op.drop_column('error')
        batch_op.drop_column('rows_read')
        batch_op.drop_column('state')
