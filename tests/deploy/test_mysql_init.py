"""mysql-init: the SQL it runs gives the app user exactly the privileges it needs on its own database.
(The stack tests run it against a real server and read the grants back.)"""

import os
import subprocess

from tests.deploy.conftest import ROOT

SCRIPT = ROOT / "mysql-init" / "10-cloudeye-app-user.sh"


def sql_for(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={"PATH": os.environ["PATH"], "MYSQL_CLIENT": "cat", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_minimal_grants_on_the_app_database_only():
    result = sql_for(MYSQL_DATABASE="cloudeye", MYSQL_USER="cloudeye", MYSQL_PASSWORD="s3cret")
    assert result.returncode == 0, result.stderr
    sql = result.stdout
    assert "CREATE DATABASE IF NOT EXISTS `cloudeye` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;" in sql
    assert "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'cloudeye'@'%';" in sql
    grants = [line for line in sql.splitlines() if line.startswith("GRANT ")]
    assert grants == [
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES ON `cloudeye`.* "
        "TO 'cloudeye'@'%';"
    ]
    assert " ALL " not in sql.replace("REVOKE ALL PRIVILEGES", "") and "*.*" not in sql


def test_several_hosts_and_quoted_password():
    result = sql_for(
        MYSQL_DATABASE="cloudeye_stack",
        MYSQL_USER="app",
        MYSQL_PASSWORD="it's\\x",
        MYSQL_USER_HOSTS="localhost 127.0.0.1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("GRANT SELECT") == 2
    assert "IDENTIFIED BY 'it''s\\\\x';" in result.stdout


def test_refuses_unsafe_names_and_missing_values():
    assert sql_for(MYSQL_DATABASE="x`; DROP DATABASE y", MYSQL_USER="u", MYSQL_PASSWORD="p").returncode != 0
    assert sql_for(MYSQL_DATABASE="cloudeye", MYSQL_USER="u'@'%", MYSQL_PASSWORD="p").returncode != 0
    assert sql_for(MYSQL_DATABASE="cloudeye", MYSQL_USER="u").returncode != 0
