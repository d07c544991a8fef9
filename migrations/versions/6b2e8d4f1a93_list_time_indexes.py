"""tamper events and notifications: an index on their time, for lists across sites

An admin's GET /tamper/events and GET /notifications (newest first, no site or channel) sorted every row
for one page (a filesort of all of them); with the index a page is read off it in order.

Revision ID: 6b2e8d4f1a93
Revises: 3f9a1c6e8b27
Create Date: 2026-12-01 10:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '6b2e8d4f1a93'
down_revision = '3f9a1c6e8b27'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tamper_events', schema=None) as batch_op:
        batch_op.create_index('ix_tamper_events_time', ['detected_at'], unique=False)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_time', ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_time')
    with op.batch_alter_table('tamper_events', schema=None) as batch_op:
        batch_op.drop_index('ix_tamper_events_time')
