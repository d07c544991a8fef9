"""hardening: usernames in their stored form, site passwords apart from their URLs

Revision ID: b7d41e9c3a52
Revises: 385195e20e4c
Create Date: 2026-12-01 06:00:00.000000

- Usernames are now stored normalised (NFKC, case-folded, stripped: services.users.normalise_username)
  and logins look the normal form up. Existing names are rewritten to it, unless another user already
  holds that form (then the name stays as it is, and the migration says so).
- A password in a site's URL (http://user:password@host/) moves to `sites.url_password`, so that answers,
  the `q` filter and log lines, which read `url`, never carry it (services.sites.split_credentials).
"""
import unicodedata

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7d41e9c3a52'
down_revision = '385195e20e4c'
branch_labels = None
depends_on = None

users = sa.table('users', sa.column('id', sa.Integer), sa.column('username', sa.String(64)))
sites = sa.table(
    'sites', sa.column('id', sa.Integer), sa.column('url', sa.String(2048)), sa.column('url_password', sa.String(2048))
)


def _normal(name: str) -> str:
    return unicodedata.normalize('NFKC', name).casefold().strip()


def _netloc(url: str):
    scheme_end = url.find('://')
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    ends = [index for index in (url.find(ch, start) for ch in '/?#') if index >= 0]
    return start, min(ends, default=len(url))


def _split(url: str):
    bounds = _netloc(url)
    if bounds is None:
        return url, None
    start, end = bounds
    userinfo, at, hostport = url[start:end].rpartition('@')
    user, colon, password = userinfo.partition(':')
    if not at or not colon:
        return url, None
    return url[:start] + (f'{user}@' if user else '') + hostport + url[end:], password


def _join(url: str, password: str) -> str:
    start, end = _netloc(url)
    user, at, hostport = url[start:end].rpartition('@')
    return url[:start] + f"{user if at else ''}:{password}@{hostport}" + url[end:]


def upgrade():
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('url_password', sa.String(length=2048), nullable=True))
    connection = op.get_bind()
    with_userinfo = connection.execute(sa.select(sites.c.id, sites.c.url).where(sites.c.url.contains('@'))).all()
    for site_id, url in with_userinfo:
        plain, password = _split(url)
        if password is not None:
            connection.execute(sa.update(sites).where(sites.c.id == site_id).values(url=plain, url_password=password))

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
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(sites.c.id, sites.c.url, sites.c.url_password).where(sites.c.url_password.is_not(None))
    ).all()
    for site_id, url, password in rows:
        connection.execute(sa.update(sites).where(sites.c.id == site_id).values(url=_join(url, password)))
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_column('url_password')
    # Usernames stay in their normal form: it logs in under the old code too (case-insensitively on MySQL).
