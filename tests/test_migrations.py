"""The migrations build the whole schema on MySQL/MariaDB and SQLite, and go down and up again."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import settings

ROOT = Path(__file__).resolve().parent.parent


def _flask(env, *args):
    result = subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(params=["mysql", "sqlite"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/migrations.db"
        return
    name = settings.TEST_DB + "_migrations"
    server = sa.create_engine(settings.MYSQL_SERVER + "/?charset=utf8mb4")
    with server.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    yield settings.database_url(name)
    with server.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    server.dispose()


# The revision before b7d41e9c3a52 (hardening): usernames as typed, site passwords inside the URL.
BEFORE_HARDENING = "385195e20e4c"


def _env(database, tmp_path):
    env = {
        **os.environ,
        "FLASK_APP": "cloudeye.py",
        "CLOUDEYE_ENV": "testing",
        "DATABASE_URL": database,
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_DIR": str(tmp_path / "log"),
        "CLOUDEYE_ROLE": "migrate",
    }
    env.pop("REDIS_URL", None)
    return env


def test_upgrade_downgrade_upgrade_and_models_match(database, tmp_path):
    env = _env(database, tmp_path)
    _flask(env, "db", "upgrade")
    engine = sa.create_engine(database)
    tables = set(sa.inspect(engine).get_table_names())
    expected = {
        "users", "api_tokens", "sites", "site_members", "usability_checks", "usability_rollups", "incidents",
        "tamper_baselines", "tamper_events", "findings", "bug_imports", "worker_heartbeats",
        "channels", "channel_sites", "notifications", "maintenance_windows", "maintenance_window_sites",
    }  # fmt: skip
    assert expected <= tables
    if engine.dialect.name == "mysql":
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT table_name, engine, table_collation FROM information_schema.tables "
                    "WHERE table_schema = DATABASE()"
                )
            ).all()
        assert all(row.engine == "InnoDB" and row.table_collation.startswith("utf8mb4") for row in rows), rows
    # every list filter has an index to use
    finding_indexes = {tuple(ix["column_names"]) for ix in sa.inspect(engine).get_indexes("findings")}
    assert ("site_id", "severity_rank", "id", "status") in finding_indexes  # a site in severity order
    assert ("status", "severity_rank") in finding_indexes  # a status across sites in severity order
    assert "No new upgrade operations detected" in _flask(env, "db", "check")
    _flask(env, "db", "downgrade", "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    _flask(env, "db", "upgrade")
    assert expected <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_existing_usernames_are_rewritten_to_their_normal_form(database, tmp_path):
    env = _env(database, tmp_path)
    _flask(env, "db", "upgrade", BEFORE_HARDENING)  # usernames not yet normalised
    engine = sa.create_engine(database)
    names = ["Dora", "ＥＲＩＫ", "plain"]
    if engine.dialect.name == "sqlite":  # MySQL's case-insensitive unique index forbids these two
        names += ["Twin", "twin"]
    with engine.begin() as connection:
        for number, name in enumerate(names, start=1):
            connection.execute(
                sa.text(
                    "INSERT INTO users (id, username, password_hash, role, is_active, created_at, updated_at) "
                    "VALUES (:id, :name, 'x', 'viewer', 1, '2026-01-01', '2026-01-01')"
                ),
                {"id": number, "name": name},
            )
    _flask(env, "db", "upgrade")
    with engine.connect() as connection:
        stored = dict(connection.execute(sa.text("SELECT id, username FROM users")).all())
    engine.dispose()
    expected = {1: "dora", 2: "erik", 3: "plain"}
    if len(names) == 5:
        expected.update({4: "Twin", 5: "twin"})  # one normal form for two users: left for an admin
    assert stored == expected


def test_site_passwords_move_out_of_the_url_and_back(database, tmp_path):
    env = _env(database, tmp_path)
    _flask(env, "db", "upgrade", BEFORE_HARDENING)
    engine = sa.create_engine(database)
    urls = {1: "https://watch:s%40cret@shop.example.test:8443/p?q=a@b", 2: "https://plain.example.test/"}
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO users (id, username, password_hash, role, is_active, created_at, updated_at) "
                "VALUES (1, 'owner', 'x', 'operator', 1, '2026-01-01', '2026-01-01')"
            )
        )
        for site_id, url in urls.items():
            connection.execute(
                sa.text(
                    "INSERT INTO sites (id, owner_id, name, url, check_interval_s, timeout_s, accepted_status, "
                    "keyword_absent, max_retries, tamper_enabled, tamper_threshold, tamper_ignore, "
                    "forbidden_keywords, paused, state, consecutive_failures, created_at, updated_at) VALUES "
                    "(:id, 1, 'x', :url, 60, 10, '200-399', 0, 0, 0, 0.05, '[]', '[]', 0, 'unknown', 0, "
                    "'2026-01-01', '2026-01-01')"
                ),
                {"id": site_id, "url": url},
            )
    _flask(env, "db", "upgrade")
    read = "SELECT id, url, url_password FROM sites ORDER BY id"
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(sa.text(read))] == [
            (1, "https://watch@shop.example.test:8443/p?q=a@b", "s%40cret"),
            (2, "https://plain.example.test/", None),
        ]
    _flask(env, "db", "downgrade", BEFORE_HARDENING)
    with engine.connect() as connection:
        assert dict(connection.execute(sa.text("SELECT id, url FROM sites")).all()) == urls
    engine.dispose()
