"""status pages: public pages of some sites' state and uptime

Revision ID: c41d7e2a9b10
Revises: 8e4b2c7a1f30
Create Date: 2026-12-01 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from services.models.base import UTCDateTime

TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}

# revision identifiers, used by Alembic.
revision = 'c41d7e2a9b10'
down_revision = '8e4b2c7a1f30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('status_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_status_pages_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_pages')),
    sa.UniqueConstraint('slug', name=op.f('uq_status_pages_slug')),
    **TABLE_OPTIONS,
    )
    with op.batch_alter_table('status_pages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_pages_owner_id'), ['owner_id'], unique=False)

    op.create_table('status_page_sites',
    sa.Column('status_page_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_status_page_sites_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['status_page_id'], ['status_pages.id'], name=op.f('fk_status_page_sites_status_page_id_status_pages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('status_page_id', 'site_id', name=op.f('pk_status_page_sites')),
    **TABLE_OPTIONS,
    )
    with op.batch_alter_table('status_page_sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_page_sites_site_id'), ['site_id'], unique=False)


def downgrade():
    # Dropping a table drops its indexes (MySQL refuses to drop an index a foreign key still needs).
    op.drop_table('status_page_sites')
    op.drop_table('status_pages')
