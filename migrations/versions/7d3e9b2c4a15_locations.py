"""locations: sites checked from several places with a quorum, and remote probe agents

Sites get `locations` and `quorum`; each (site, location) gets a row in `site_locations` (its schedule,
claim and vote); checks carry their `location` (one per site, due time and location) and a `late` flag;
per-location hourly rollups; incidents, worker heartbeats and users (role `probe`) carry a location.

Revision ID: 7d3e9b2c4a15
Revises: b7d41e9c3a52
Create Date: 2026-12-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from services.models.base import UTCDateTime


# revision identifiers, used by Alembic.
revision = '7d3e9b2c4a15'
down_revision = 'b7d41e9c3a52'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('site_locations',
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('location', sa.String(length=64), nullable=False),
    sa.Column('next_check_at', UTCDateTime(), nullable=True),
    sa.Column('claimed_until', UTCDateTime(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('last_checked_at', UTCDateTime(), nullable=True),
    sa.Column('last_due_at', UTCDateTime(), nullable=True),
    sa.Column('last_cause', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_site_locations_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('site_id', 'location', name=op.f('pk_site_locations'))
    )
    with op.batch_alter_table('site_locations', schema=None) as batch_op:
        batch_op.create_index('ix_site_locations_due', ['location', 'next_check_at'], unique=False)

    op.create_table('usability_location_rollups',
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('location', sa.String(length=64), nullable=False),
    sa.Column('bucket_start', UTCDateTime(), nullable=False),
    sa.Column('checks_total', sa.Integer(), nullable=False),
    sa.Column('checks_up', sa.Integer(), nullable=False),
    sa.Column('latency_sum_ms', sa.Float(), nullable=False),
    sa.Column('latency_count', sa.Integer(), nullable=False),
    sa.Column('checks_maintenance', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_usability_location_rollups_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('site_id', 'location', 'bucket_start', name=op.f('pk_usability_location_rollups'))
    )

    # Existing sites are checked from any location, as before; a site due "now" (null) gets a due time,
    # since the claim query no longer takes null for due (null is a site with locations).
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locations', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('quorum', sa.Integer(), nullable=True))
    op.execute("UPDATE sites SET locations = '[]'")
    op.execute("UPDATE sites SET next_check_at = created_at WHERE next_check_at IS NULL")
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.alter_column('locations', existing_type=sa.JSON(), nullable=False)

    # Existing checks were made by replicas of the one implicit location, `default`.
    with op.batch_alter_table('usability_checks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('location', sa.String(length=64), nullable=False, server_default='default'))
        batch_op.add_column(sa.Column('late', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_unique_constraint('uq_usability_checks_site_due_location', ['site_id', 'due_at', 'location'])
        batch_op.drop_constraint('uq_usability_checks_site_due', type_='unique')

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('location', sa.String(length=64), nullable=True))

    with op.batch_alter_table('worker_heartbeats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('location', sa.String(length=64), nullable=False, server_default='default'))
        batch_op.create_index(batch_op.f('ix_worker_heartbeats_location'), ['location'], unique=False)
        batch_op.add_column(sa.Column('stopped_at', UTCDateTime(), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('location', sa.String(length=64), nullable=True))


def downgrade():
    # Probe users have no place in the older schema's roles; checks of other locations than one per slot
    # would break the older unique key: keep the first of each slot.
    op.execute("DELETE FROM users WHERE role = 'probe'")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('location')

    with op.batch_alter_table('worker_heartbeats', schema=None) as batch_op:
        batch_op.drop_column('stopped_at')
        batch_op.drop_index(batch_op.f('ix_worker_heartbeats_location'))
        batch_op.drop_column('location')

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('location')

    op.execute(
        "DELETE FROM usability_checks WHERE id NOT IN "
        "(SELECT first_id FROM (SELECT MIN(id) AS first_id FROM usability_checks GROUP BY site_id, due_at) AS firsts)"
    )
    with op.batch_alter_table('usability_checks', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_usability_checks_site_due', ['site_id', 'due_at'])
        batch_op.drop_constraint('uq_usability_checks_site_due_location', type_='unique')
        batch_op.drop_column('late')
        batch_op.drop_column('location')

    # A site with locations goes back to being checked from anywhere, due at once.
    op.execute("UPDATE sites SET next_check_at = CURRENT_TIMESTAMP WHERE next_check_at IS NULL")
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_column('quorum')
        batch_op.drop_column('locations')

    op.drop_table('usability_location_rollups')
    op.drop_table('site_locations')
