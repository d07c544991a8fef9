"""alerts: channels, the notifications outbox, maintenance windows; flapping and TLS alert state on
sites, maintenance flags on incidents and rollups

Revision ID: 385195e20e4c
Revises: c41d7e2a9b10
Create Date: 2026-12-01 05:26:27.294987

"""
from alembic import op
import sqlalchemy as sa

from services.models.base import UTCDateTime


# revision identifiers, used by Alembic.
revision = '385195e20e4c'
down_revision = 'c41d7e2a9b10'
branch_labels = None
depends_on = None


def upgrade():
    # Existing rows get in_maintenance=false and checks_maintenance=0 (server defaults), new ones from the models.
    op.create_table('channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('all_sites', sa.Boolean(), nullable=False),
    sa.Column('min_severity', sa.String(length=16), nullable=False),
    sa.Column('remind_every_min', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('secret', sa.String(length=255), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_channels_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels'))
    )
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channels_owner_id'), ['owner_id'], unique=False)

    op.create_table('maintenance_windows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('starts_at', UTCDateTime(), nullable=True),
    sa.Column('ends_at', UTCDateTime(), nullable=True),
    sa.Column('weekdays', sa.JSON(), nullable=True),
    sa.Column('start_time', sa.String(length=5), nullable=True),
    sa.Column('duration_min', sa.Integer(), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_maintenance_windows_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows'))
    )
    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_windows_owner_id'), ['owner_id'], unique=False)

    op.create_table('channel_sites',
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_channel_sites_channel_id_channels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_channel_sites_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('channel_id', 'site_id', name=op.f('pk_channel_sites'))
    )
    with op.batch_alter_table('channel_sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channel_sites_site_id'), ['site_id'], unique=False)

    op.create_table('maintenance_window_sites',
    sa.Column('window_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_maintenance_window_sites_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['window_id'], ['maintenance_windows.id'], name=op.f('fk_maintenance_window_sites_window_id_maintenance_windows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('window_id', 'site_id', name=op.f('pk_maintenance_window_sites'))
    )
    with op.batch_alter_table('maintenance_window_sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_window_sites_site_id'), ['site_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=36), nullable=False),
    sa.Column('occurred_at', UTCDateTime(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
    sa.Column('claimed_until', UTCDateTime(), nullable=True),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('sent_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_notifications_channel_id_channels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_notifications_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('delivery_id', name=op.f('uq_notifications_delivery_id'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_channel_time', ['channel_id', 'created_at'], unique=False)
        batch_op.create_index('ix_notifications_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_notifications_reminders', ['channel_id', 'site_id', 'event', 'occurred_at'], unique=False)
        batch_op.create_index('ix_notifications_site_time', ['site_id', 'created_at'], unique=False)

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('in_maintenance', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('announced_at', UTCDateTime(), nullable=True))

    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flapping_since', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('tls_alert_days', sa.Integer(), nullable=True))

    with op.batch_alter_table('usability_rollups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checks_maintenance', sa.Integer(), nullable=False, server_default='0'))



def downgrade():
    # Dropping a table drops its indexes (MySQL refuses to drop one a foreign key needs first).
    with op.batch_alter_table('usability_rollups', schema=None) as batch_op:
        batch_op.drop_column('checks_maintenance')

    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_column('tls_alert_days')
        batch_op.drop_column('flapping_since')

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('announced_at')
        batch_op.drop_column('in_maintenance')

    op.drop_table('notifications')
    op.drop_table('maintenance_window_sites')
    op.drop_table('channel_sites')
    op.drop_table('maintenance_windows')
    op.drop_table('channels')
