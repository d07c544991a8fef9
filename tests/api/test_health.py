import pytest
import sqlalchemy as sa

from api import create_app
from services.config import API_PREFIX, Config
from tests import settings

REDIS = "ok" if settings.REDIS_URL else "disabled"  # make test-fast runs without Redis


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "db": "ok", "redis": REDIS, "migrations": "ok"}


def test_readyz_logs_nothing_when_all_is_well(client, caplog):
    # A healthcheck runs every few seconds: alembic's INFO line per call flooded the api log.
    caplog.set_level("DEBUG")
    assert client.get("/readyz").status_code == 200
    assert [record.getMessage() for record in caplog.records if record.name.startswith("alembic")] == []


def test_health_in_the_api(client):
    body = client.get(API_PREFIX + "/health").get_json()
    assert body == {"status": "ok", "db": "ok", "redis": REDIS}


def _app_with(monkeypatch, tmp_path, **env):
    monkeypatch.setenv("CLOUDEYE_ENV", "testing")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "log"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return create_app(Config.from_env())


def test_unreachable_database_gives_503_everywhere(monkeypatch, tmp_path):
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    app = _app_with(monkeypatch, tmp_path, DATABASE_URL="mysql+pymysql://nobody@127.0.0.1:9/none")
    with app.test_client() as client:
        health = client.get(API_PREFIX + "/health")
        assert health.status_code == 503 and health.get_json()["db"] == "down"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        login = client.post(API_PREFIX + "/users/login", json={"username": "someone", "password": "x"})
        assert login.status_code == 503 and login.get_json()["status"] == 503


def test_unmigrated_database_is_not_ready(monkeypatch, tmp_path):
    app = _app_with(monkeypatch, tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/empty.db")
    with app.test_client() as client:
        body = client.get("/readyz").get_json()
        assert body["migrations"] == "pending" and body["status"] == "not ready"


def test_redis_down_is_reported_but_reads_keep_working(monkeypatch, tmp_path, test_env):
    env = dict(
        test_env, REDIS_URL="redis://127.0.0.1:9/0", DATA_DIR=str(tmp_path), LOG_DIR=str(tmp_path / "log")
    )
    app = _app_with(monkeypatch, tmp_path, **env)
    with app.test_client() as client:
        assert client.get(API_PREFIX + "/health").get_json()["redis"] == "down"
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.get_json()["status"] == "degraded"


def test_a_lost_connection_seen_late_is_503_not_500(app):
    # During a database restart a statement can fail with an error class other than Operational or
    # Interface (e.g. pymysql's InternalError on a cut packet) that SQLAlchemy marks as a lost connection,
    # or the session is left needing a rollback: both mean "the database is away".
    from api.errors import handle_unexpected

    lost = sa.exc.InternalError(
        "SELECT 1", {}, Exception("Packet sequence number wrong"), connection_invalidated=True
    )
    with app.test_request_context():
        for error in (
            lost,
            sa.exc.PendingRollbackError("Can't reconnect until invalid transaction is rolled back"),
        ):
            response = handle_unexpected(error)
            assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        bug = sa.exc.InternalError("SELECT 1", {}, Exception("a real bug"), connection_invalidated=False)
        assert handle_unexpected(bug).status_code == 500


@pytest.mark.skipif(settings.BACKEND == "sqlite", reason="needs a server connection that can be killed")
def test_a_connection_lost_after_the_answer_does_not_break_the_teardown(app, caplog):
    # The database can go away after a view answered and before the request's session is closed (seen
    # once during a MySQL restart: the app logged 200, gunicorn sent its own 500 page). Closing that
    # session must not raise: the answer stands, the dead connection is dropped, the next request works.
    from services.extensions import db

    killer = sa.create_engine(settings.MYSQL_SERVER + "/")
    try:
        with app.app_context():
            db.session.execute(sa.text("SELECT 1 FROM users LIMIT 1"))  # a transaction is open
            connection_id = db.session.execute(sa.text("SELECT CONNECTION_ID()")).scalar()
            with killer.begin() as connection:
                connection.execute(sa.text(f"KILL {int(connection_id)}"))
        # leaving the context ran the teardown without raising
    finally:
        killer.dispose()
    assert "lost while closing" in caplog.text
    with app.app_context():
        assert db.engine.pool.checkedout() == 0
    with app.test_client() as client:
        assert client.get(API_PREFIX + "/health").status_code == 200
