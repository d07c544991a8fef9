"""hardening: usernames in their stored form

Revision ID: b7d41e9c3a52
Revises: 8e4b2c7a1f30
Create Date: 2026-12-01 06:00:00.000000

Usernames are now stored normalised (NFKC, case-folded, stripped: services.users.normalise_username)
and logins look the normal form up. Existing names are rewritten to it, unless another user already
holds that form (then the name stays as it is, and the migration says so).
"""
import unicodedata

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7d41e9c3a52'
down_revision = '8e4b2c7a1f30'
branch_labels = None
depends_on = None

users = sa.table('users', sa.column('id', sa.Integer), sa.column('username', sa.String(64)))


def _normal(name: str) -> str:
    return unicodedata.normalize('NFKC', name).casefold().strip()


def upgrade():
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id)).all()
    taken = {}
    for user_id, name in rows:
        taken.setdefault(_normal(name), []).append(user_id)
    for user_id, name in rows:
        normal = _normal(name)
        if normal == name:
            continue
        if len(taken[normal]) > 1:
            print(f'user {user_id}: {name!r} kept, its normal form {normal!r} is shared with users {taken[normal]}')
            continue
        connection.execute(sa.update(users).where(users.c.id == user_id).values(username=normal))


def downgrade():
    pass  # the normal form logs in under the old code too (case-insensitively on MySQL)
