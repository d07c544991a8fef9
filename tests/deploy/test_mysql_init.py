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


def test_run_by_hand_it_needs_an_explicit_client():
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={"PATH": os.environ["PATH"], "MYSQL_DATABASE": "d", "MYSQL_USER": "u", "MYSQL_PASSWORD": "p"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "MYSQL_CLIENT is required" in result.stderr


# The dispatch of the mysql image's docker-entrypoint.sh (docker_process_init_files, mysql 8.4): an
# executable *.sh is run as a child process, anything else is sourced into the entrypoint's shell, which
# provides docker_process_sql (root's credentials over the init server's socket) and mysql_note.
MYSQL_ENTRYPOINT = r"""
set -eo pipefail
shopt -s nullglob
mysql_note() { echo "note: $*" >&2; }
docker_process_sql() { echo "-- docker_process_sql $*"; cat; }
for f in "$INITDB"/*; do
    case "$f" in
        *.sh) if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
        *.sql) docker_process_sql <"$f" ;;
    esac
done
# The entrypoint goes on with its own (nounset-unsafe) code: the file must not change its options.
echo "-- options $-"
"""


def test_the_mysql_image_sources_the_file_and_gets_the_sql():
    """Executable, the file would run without docker_process_sql, fall back to a bare `mysql` client
    with no credentials, fail, and abort the first start of the mysql container."""
    assert not SCRIPT.stat().st_mode & 0o111, "the mysql image must source this file: chmod 0644"
    result = subprocess.run(
        ["bash", "-c", MYSQL_ENTRYPOINT],
        env={
            "PATH": os.environ["PATH"],
            "INITDB": str(SCRIPT.parent),
            "MYSQL_DATABASE": "cloudeye",
            "MYSQL_USER": "cloudeye",
            "MYSQL_PASSWORD": "s3cret",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "-- docker_process_sql --database=mysql" in result.stdout
    assert "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES ON `cloudeye`.*" in (
        result.stdout
    )
    options = result.stdout.rsplit("-- options ", 1)[1].strip()
    assert "u" not in options, "sourcing must not turn on nounset in the entrypoint"
