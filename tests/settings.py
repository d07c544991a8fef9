"""Where the tests find their services. Every name can be overridden so that parallel runs never meet."""

import os

MYSQL_SERVER = os.environ.get("CLOUDEYE_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
TEST_DB = os.environ.get("CLOUDEYE_TEST_DB", "cloudeye_test")
# Empty (make test-fast): no Redis, the app's in-process cache; tests that need Redis itself are skipped.
REDIS_URL = os.environ.get("CLOUDEYE_TEST_REDIS", "redis://127.0.0.1:6379/15")
# "mysql" (the default: MariaDB/MySQL) or "sqlite" (the embedded default of `make run`).
BACKEND = os.environ.get("CLOUDEYE_TEST_BACKEND", "mysql")


def database_url(name: str = TEST_DB) -> str:
    return f"{MYSQL_SERVER}/{name}?charset=utf8mb4"
