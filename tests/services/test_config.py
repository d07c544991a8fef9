import pytest

from services import config as config_module
from services.config import Config, ConfigError, DevelopmentConfig, ProductionConfig

PROD = {
    "CLOUDEYE_ENV": "production",
    "SECRET_KEY": "Zq8v1Nf3-a-long-random-secret-value",
    "DATABASE_URL": "mysql+pymysql://cloudeye:S3cure-pw-9x@mysql/cloudeye?charset=utf8mb4",
}


@pytest.fixture
def env(monkeypatch):
    for name in (
        "CLOUDEYE_ENV",
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "DATA_DIR",
        "CLOUDEYE_ADMIN_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)

    def apply(values):
        for key, value in values.items():
            monkeypatch.setenv(key, value)

    return apply


def test_development_defaults_to_sqlite_under_data_dir_and_a_random_key(env, tmp_path):
    env({"DATA_DIR": str(tmp_path)})
    config = Config.from_env()
    assert isinstance(config, DevelopmentConfig)
    assert config.SQLALCHEMY_DATABASE_URI == f"sqlite:///{tmp_path}/cloudeye.db"
    assert len(config.SECRET_KEY) >= 32 and config.REDIS_URL is None
    assert Config.from_env().SECRET_KEY != config.SECRET_KEY


def test_testing_config(env):
    env({"CLOUDEYE_ENV": "testing"})
    assert isinstance(Config.from_env(), config_module.TestingConfig) and Config.from_env().TESTING


def test_production_accepts_real_secrets(env):
    env(PROD)
    assert isinstance(Config.from_env(), ProductionConfig)


@pytest.mark.parametrize(
    "override",
    [
        {"SECRET_KEY": ""},
        {"SECRET_KEY": "change-me"},
        {"SECRET_KEY": "short"},
        {"DATABASE_URL": "mysql+pymysql://cloudeye:change-me@mysql/cloudeye"},
        {"DATABASE_URL": "mysql+pymysql://cloudeye@mysql/cloudeye"},
        {"CLOUDEYE_ADMIN_PASSWORD": "password"},
    ],
)
def test_production_refuses_missing_or_default_secrets(env, override):
    env({**PROD, **override})
    with pytest.raises(ConfigError):
        Config.from_env()


def test_production_needs_a_database_url(env, monkeypatch):
    env(PROD)
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Config.from_env()


def test_unknown_environment_and_bad_integers_fail_fast(env):
    env({"CLOUDEYE_ENV": "staging-ish"})
    with pytest.raises(ConfigError):
        Config.from_env()
    env({"CLOUDEYE_ENV": "development", "USABILITY_RETENTION_DAYS": "ninety"})
    with pytest.raises(ConfigError, match="USABILITY_RETENTION_DAYS"):
        Config.from_env()
