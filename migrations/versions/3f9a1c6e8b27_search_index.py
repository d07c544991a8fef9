"""search: a trigram index of findings' titles and locations, kept by the sync worker

`q=` on /bugs was LIKE '%q%' over every finding (1.5 to 2.6 s at a million). These tables let a search
find its candidates by trigram and check only those with the same LIKE (services/search.py). Nothing here
is written by an import; the worker indexes findings after they are written.

On SQLite a deleted finding's id can be given again to a new one (no AUTOINCREMENT): a trigger lowers the
indexed watermark to the highest remaining id, so a new finding with a reused id is never taken for an
indexed one.

Revision ID: 3f9a1c6e8b27
Revises: 5b8e2d4f6a13
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from services.models.base import UTCDateTime


# revision identifiers, used by Alembic.
revision = '3f9a1c6e8b27'
down_revision = '5b8e2d4f6a13'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_TRIGGER = """
CREATE TRIGGER search_findings_deleted AFTER DELETE ON findings
BEGIN
    UPDATE search_state SET value = (SELECT COALESCE(MAX(id), 0) FROM findings)
    WHERE name = 'indexed_to' AND value > (SELECT COALESCE(MAX(id), 0) FROM findings);
END
"""


def upgrade():
    op.create_table('search_texts',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('digest', sa.String(length=40), nullable=False),
    sa.Column('text', sa.String(length=2048), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest', name='uq_search_texts_digest')
    )
    # Appended to by text id (the primary key); searched by gram through the secondary index.
    op.create_table('search_grams',
    sa.Column('text_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('gram', sa.Integer(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('text_id', 'gram')
    )
    with op.batch_alter_table('search_grams', schema=None) as batch_op:
        batch_op.create_index('ix_search_grams_gram', ['gram', 'text_id'], unique=False)
    op.create_table('search_gram_counts',
    sa.Column('gram', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('texts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('gram')
    )
    op.create_table('search_refs',
    sa.Column('text_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('site_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('finding_id', BigId, autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('text_id', 'site_id', 'finding_id')
    )
    with op.batch_alter_table('search_refs', schema=None) as batch_op:
        batch_op.create_index('ix_search_refs_finding', ['finding_id'], unique=False)
    op.create_table('search_state',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('search_holes',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('lo', sa.BigInteger(), nullable=False),
    sa.Column('hi', sa.BigInteger(), nullable=False),
    sa.Column('found_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(SQLITE_TRIGGER)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('DROP TRIGGER IF EXISTS search_findings_deleted')
    op.drop_table('search_holes')
    op.drop_table('search_state')
    op.drop_table('search_refs')  # with its index (MySQL will not drop one a foreign key needs)
    op.drop_table('search_gram_counts')
    op.drop_table('search_grams')
    op.drop_table('search_texts')
