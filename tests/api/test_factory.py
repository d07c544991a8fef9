from api import create_app
from services.cache import cache
from services.config import API_PREFIX, Config


def test_factory_builds_independent_apps(monkeypatch, tmp_path):
    monkeypatch.setenv("CLOUDEYE_ENV", "testing")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "log"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    first, second = create_app(Config.from_env()), create_app(Config.from_env())
    assert first.testing and first.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    rules = {rule.rule for rule in first.url_map.iter_rules()}
    assert {API_PREFIX + "/sites", API_PREFIX + "/openapi.json", "/healthz", "/readyz"} <= rules
    with first.app_context():
        cache.store.set("k", "first")
    with second.app_context():
        assert cache.store.get("k") is None  # each app has its own cache backend
