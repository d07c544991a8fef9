#!/usr/bin/env bash
# The application's database (utf8mb4) and its user, with only the privileges the app needs:
# rows (SELECT, INSERT, UPDATE, DELETE) and the DDL its migrations run (CREATE, ALTER, INDEX, DROP,
# REFERENCES), on its own database only. No global privilege, no GRANT OPTION, no other database.
#
# Two callers, the same SQL:
#   - the mysql image, on the first start of an empty data volume: its entrypoint *sources* this file
#     (after creating MYSQL_DATABASE and MYSQL_USER with ALL on that database, which this narrows) and
#     provides docker_process_sql. The image sources only a NON-executable *.sh and runs an executable
#     one as a separate process, where docker_process_sql and the root password's client file do not
#     exist: so this file stays mode 0644 (tests/deploy/test_mysql_init.py checks it);
#   - scripts/stack-up.sh, against the host's MariaDB/MySQL: it runs `bash` on this file with MYSQL_CLIENT
#     set to an administrator's client command line (e.g. "mariadb -h 127.0.0.1 -P 3306 -u root").
# Variables: MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD (the ones compose passes to the mysql service),
# MYSQL_USER_HOSTS (hosts the user may connect from; default '%').

cloudeye_app_user_sql() {
	local db=${MYSQL_DATABASE:?MYSQL_DATABASE is required} user=${MYSQL_USER:?MYSQL_USER is required}
	local password=${MYSQL_PASSWORD:?MYSQL_PASSWORD is required} host
	if [[ ! $db =~ ^[A-Za-z0-9_]{1,64}$ || ! $user =~ ^[A-Za-z0-9_]{1,32}$ ]]; then
		echo "mysql-init: MYSQL_DATABASE and MYSQL_USER may use letters, digits and _ only" >&2
		return 1
	fi
	password=${password//\\/\\\\}
	password=${password//\'/\'\'}
	cat <<SQL
CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER DATABASE \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
SQL
	for host in ${MYSQL_USER_HOSTS:-%}; do
		cat <<SQL
CREATE USER IF NOT EXISTS '$user'@'$host' IDENTIFIED BY '$password';
ALTER USER '$user'@'$host' IDENTIFIED BY '$password';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM '$user'@'$host';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES ON \`$db\`.* TO '$user'@'$host';
SQL
	done
	echo "FLUSH PRIVILEGES;"
}

if declare -F docker_process_sql >/dev/null; then
	# Sourced by the mysql image's entrypoint (errexit and pipefail on; its options are left as they are).
	mysql_note "cloudeye: narrowing the privileges of '${MYSQL_USER}' to '${MYSQL_DATABASE}'"
	cloudeye_app_user_sql | docker_process_sql --database=mysql
else
	set -euo pipefail
	sql=$(cloudeye_app_user_sql)
	# No default client: a bare `mysql` would run this against whatever server it reaches first.
	client=${MYSQL_CLIENT:?MYSQL_CLIENT is required outside the mysql image (an admin client command line)}
	# shellcheck disable=SC2086 # MYSQL_CLIENT is a command line
	$client <<<"$sql"
fi
