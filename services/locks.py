"""MySQL named locks (GET_LOCK) (file locks on SQLite), the one way cloudeye's processes take turns on something.

A named lock lives on a connection of its own, not in a transaction, so it can be held across the
transactions of a long import, and the server releases it when the process holding it dies. Names are
server-wide: they include the database name, so two deployments (or test runs) on one server never meet.
"""

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa


def lock_name(prefix: str, engine: sa.Engine, scope: str) -> str:
    """`prefix` + a digest of the database and `scope` (MySQL lock names are at most 64 characters)."""
    return prefix + hashlib.sha256(f"{engine.url.database}:{scope}".encode()).hexdigest()[:40]


@contextlib.contextmanager
def mysql_named_lock(engine: sa.Engine, name: str, timeout_s: float = 0) -> Iterator[bool]:
    """Hold the lock `name` for the block, waiting up to `timeout_s`; yields whether it was acquired."""
    with engine.connect() as connection:
        acquired = (
            connection.scalar(
                sa.text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": timeout_s}
            )
            == 1
        )
        try:
            yield acquired
        finally:
            if acquired:
                connection.scalar(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})


@contextlib.contextmanager
def process_lock(engine: sa.Engine, name: str, lock_dir) -> Iterator[bool]:
    """A lock between cloudeye's processes, without waiting; yields whether it was acquired.

    MySQL: the named lock (shared by every host on the server). SQLite: an flock on a file under
    `lock_dir` (a single host's processes, which is all an SQLite deployment has)."""
    if engine.dialect.name == "mysql":
        with mysql_named_lock(engine, name) as acquired:
            yield acquired
        return
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(lock_dir) / f"{name}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
