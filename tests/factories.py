"""Test data built through the services, with sequences so that names never collide."""

import itertools
from datetime import UTC, datetime, timedelta

from services.config import API_PREFIX
from services.extensions import db
from services.models import ApiToken, Site, SiteMember, User
from services.security import hash_password, hash_token, new_token
from services.sites import place_locations, split_credentials

PASSWORD = "correct horse battery"
_sequence = itertools.count(1)
_password_hash = None


def _hash() -> str:
    # argon2 is deliberately slow; every factory user shares one hash of PASSWORD.
    global _password_hash
    if _password_hash is None:
        _password_hash = hash_password(PASSWORD)
    return _password_hash


def create_user(role: str = "operator", username: str | None = None, **fields) -> User:
    user = User(
        username=username or f"{role}{next(_sequence)}",
        password_hash=_hash(),
        role=role,
        email=fields.pop("email", None),
        **fields,
    )
    db.session.add(user)
    db.session.commit()
    return user


def token_for(user: User, kind: str = "login", expires_in: timedelta | None = timedelta(hours=1)) -> str:
    secret = new_token()
    db.session.add(
        ApiToken(
            user_id=user.id,
            kind=kind,
            name="test",
            token_hash=hash_token(secret),
            prefix=secret[:10],
            expires_at=datetime.now(UTC) + expires_in if expires_in else None,
        )
    )
    db.session.commit()
    return secret


def create_site(owner: User, **fields) -> Site:
    number = next(_sequence)
    values = {"name": f"site {number}", "url": f"https://site{number}.example.test/"}
    values.update(fields)
    values["url"], values["url_password"] = split_credentials(values["url"])  # as services.sites stores it
    site = Site(owner_id=owner.id, **values)
    db.session.add(site)
    db.session.flush()
    if site.locations:  # one row per location, as the API makes them
        place_locations(site, datetime.now(UTC))
    db.session.commit()
    return site


def share(site: Site, user: User, permission: str = "read") -> SiteMember:
    member = SiteMember(site_id=site.id, user_id=user.id, permission=permission)
    db.session.add(member)
    db.session.commit()
    return member


class Caller:
    """A user plus a test client that sends their bearer token."""

    def __init__(self, client, user: User):
        self.client = client
        self.user = user
        self.token = token_for(user)
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def _call(self, method, path, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return getattr(self.client, method)(api(path), headers=headers, **kwargs)

    def get(self, path, **kw):
        return self._call("get", path, **kw)

    def post(self, path, **kw):
        return self._call("post", path, **kw)

    def patch(self, path, **kw):
        return self._call("patch", path, **kw)

    def put(self, path, **kw):
        return self._call("put", path, **kw)

    def delete(self, path, **kw):
        return self._call("delete", path, **kw)


def api(path: str) -> str:
    return API_PREFIX + path


# The cases role_matrix builds, and what each may do with the owner's site.
MATRIX_ROLES = [
    "admin",
    "owner",
    "other_operator",
    "viewer_unshared",
    "viewer_read",
    "viewer_write",
    "operator_read",
    "operator_write",
]
MATRIX_READERS = {"admin", "owner", "viewer_read", "viewer_write", "operator_read", "operator_write"}
MATRIX_WRITERS = {"admin", "owner", "operator_write"}  # a viewer never writes, whatever its share says


def role_matrix(client, owner: Caller, site: Site) -> dict[str, Caller]:
    """One caller per role/ownership case around `owner`'s site: the owner, an admin, another operator and
    a viewer it is not shared with, and a viewer and an operator it is shared with for read and for write."""
    callers = {"owner": owner, "admin": Caller(client, create_user("admin"))}
    callers["other_operator"] = Caller(client, create_user("operator"))
    callers["viewer_unshared"] = Caller(client, create_user("viewer"))
    for role, permission in (
        ("viewer", "read"),
        ("viewer", "write"),
        ("operator", "read"),
        ("operator", "write"),
    ):
        user = create_user(role)
        share(site, user, permission)
        callers[f"{role}_{permission}"] = Caller(client, user)
    return callers
