#!/usr/bin/env bash
# Entrypoint of the local MySQL-compatible stand-in (MariaDB), with the official mysql image's contract:
#
#   - options alone mean `mysqld` with those options;
#   - started as root, it hands over to the mysql user;
#   - on the first start of an empty data directory it needs MYSQL_ROOT_PASSWORD (or
#     MYSQL_ALLOW_EMPTY_PASSWORD / MYSQL_RANDOM_ROOT_PASSWORD), creates MYSQL_DATABASE and MYSQL_USER with
#     MYSQL_PASSWORD (ALL on that database), root@MYSQL_ROOT_HOST (default %), then runs
#     /docker-entrypoint-initdb.d/ in name order: *.sh executable ones run, the others are *sourced* (with
#     mysql_note, mysql_warn, mysql_error and docker_process_sql at hand), *.sql, *.sql.gz, *.sql.xz,
#     *.sql.zst are fed to the server; all of it against a socket-only server, so nothing can reach the
#     database over TCP before the initialisation is over;
#   - every MYSQL_* secret can come from a file instead (MYSQL_PASSWORD_FILE=/run/secrets/...).
# Not reproduced: time zone tables (MYSQL_INITDB_SKIP_TZINFO is the behaviour) and MYSQL_ONETIME_PASSWORD.
set -eo pipefail
shopt -s nullglob

mysql_log() {
	local type=$1
	shift
	printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$type" "$*"
}
mysql_note() { mysql_log Note "$@"; }
mysql_warn() { mysql_log Warn "$@" >&2; }
mysql_error() {
	mysql_log ERROR "$@" >&2
	exit 1
}

# file_env VAR [DEFAULT]: VAR from the environment or from the file VAR_FILE names (not both).
file_env() {
	local var=$1 file_var="${1}_FILE" default=${2:-}
	if [ "${!var:-}" ] && [ "${!file_var:-}" ]; then
		mysql_error "both $var and $file_var are set (but are exclusive)"
	fi
	local value=$default
	if [ "${!var:-}" ]; then
		value=${!var}
	elif [ "${!file_var:-}" ]; then
		value=$(<"${!file_var}")
	fi
	export "$var"="$value"
	unset "$file_var"
}

server_option() { # server_option NAME MYSQLD [OPTIONS...]: the server's effective value, e.g. of datadir
	local name=$1
	shift
	"$@" --verbose --help 2>/dev/null | awk -v name="$name" '/^[^ \t]/ && $1 == name { print $2; exit }'
}

docker_setup_env() {
	DATADIR=$(server_option datadir "$@")
	SOCKET=$(server_option socket "$@")
	if [ -z "$DATADIR" ] || [ -z "$SOCKET" ]; then
		mysql_error "could not read datadir and socket from '$* --verbose --help'"
	fi
	file_env MYSQL_ROOT_HOST '%'
	file_env MYSQL_DATABASE
	file_env MYSQL_USER
	file_env MYSQL_PASSWORD
	file_env MYSQL_ROOT_PASSWORD
	DATABASE_ALREADY_EXISTS=
	if [ -d "$DATADIR/mysql" ]; then DATABASE_ALREADY_EXISTS=true; fi
}

# docker_process_sql [--dont-use-mysql-root-password] [mysql options...]: SQL from stdin, as root over the
# socket, in MYSQL_DATABASE unless a later --database names another.
docker_process_sql() {
	local use_password=true
	if [ "${1:-}" = --dont-use-mysql-root-password ]; then
		use_password=
		shift
	fi
	if [ -n "${MYSQL_DATABASE:-}" ]; then set -- --database="$MYSQL_DATABASE" "$@"; fi
	if [ "$use_password" ] && [ -n "${MYSQL_ROOT_PASSWORD:-}" ]; then
		MYSQL_PWD=$MYSQL_ROOT_PASSWORD mysql --protocol=socket --socket="$SOCKET" -uroot --comment "$@"
	else
		mysql --protocol=socket --socket="$SOCKET" -uroot --comment "$@"
	fi
}

docker_process_init_files() {
	local file
	for file in "$@"; do
		case "$file" in
		*.sh)
			if [ -x "$file" ]; then
				mysql_note "$0: running $file"
				"$file"
			else
				mysql_note "$0: sourcing $file"
				# shellcheck disable=SC1090 # the image user's scripts
				. "$file"
			fi
			;;
		*.sql)
			mysql_note "$0: running $file"
			docker_process_sql <"$file"
			;;
		*.sql.gz)
			mysql_note "$0: running $file"
			gunzip -c "$file" | docker_process_sql
			;;
		*.sql.xz)
			mysql_note "$0: running $file"
			xzcat "$file" | docker_process_sql
			;;
		*.sql.zst)
			mysql_note "$0: running $file"
			zstd -dc "$file" | docker_process_sql
			;;
		*) mysql_warn "$0: ignoring $file" ;;
		esac
	done
}

docker_verify_minimum_env() {
	if [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ] && [ -z "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
		mysql_error "Database is uninitialized and password option is not specified
	You need to specify one of MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD and MYSQL_RANDOM_ROOT_PASSWORD"
	fi
	if [ "$MYSQL_USER" = root ]; then
		mysql_error "MYSQL_USER=root: use MYSQL_ROOT_PASSWORD for root (MYSQL_USER creates another user)"
	fi
	if [ -n "$MYSQL_USER" ] && [ -z "$MYSQL_PASSWORD" ]; then
		mysql_error "MYSQL_USER is set without MYSQL_PASSWORD"
	fi
}

docker_temp_server_start() {
	"$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" &
	MYSQL_TEMP_PID=$!
	mysql_note "Waiting for the temporary server"
	local attempt
	for attempt in $(seq 1 60); do
		if docker_process_sql --dont-use-mysql-root-password --database=mysql <<<'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$MYSQL_TEMP_PID" 2>/dev/null; then mysql_error "the temporary server died"; fi
		sleep 1
	done
	mysql_error "the temporary server did not start in 60 s (attempt $attempt)"
}

docker_temp_server_stop() {
	MYSQL_PWD=$MYSQL_ROOT_PASSWORD mysqladmin --protocol=socket --socket="$SOCKET" -uroot shutdown
	wait "$MYSQL_TEMP_PID" || true
}

docker_setup_db() {
	if [ -n "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
		MYSQL_ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
		export MYSQL_ROOT_PASSWORD
		mysql_note "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
	fi
	local root_host_sql=
	if [ -n "$MYSQL_ROOT_HOST" ] && [ "$MYSQL_ROOT_HOST" != localhost ]; then
		root_host_sql="CREATE USER 'root'@'${MYSQL_ROOT_HOST}' IDENTIFIED BY '$(sql_escape "$MYSQL_ROOT_PASSWORD")';
			GRANT ALL ON *.* TO 'root'@'${MYSQL_ROOT_HOST}' WITH GRANT OPTION;"
	fi
	# No binary log for the setup statements; the anonymous and test leftovers go.
	docker_process_sql --dont-use-mysql-root-password --database=mysql <<-SQL
		SET @@SESSION.SQL_LOG_BIN=0;
		DELETE FROM mysql.global_priv WHERE user = '' OR (user = 'root' AND host != 'localhost');
		FLUSH PRIVILEGES;
		ALTER USER 'root'@'localhost' IDENTIFIED BY '$(sql_escape "$MYSQL_ROOT_PASSWORD")';
		${root_host_sql}
		DROP DATABASE IF EXISTS test;
	SQL
	if [ -n "$MYSQL_DATABASE" ]; then
		mysql_note "Creating database ${MYSQL_DATABASE}"
		docker_process_sql --database=mysql <<<"CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
	fi
	if [ -n "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
		mysql_note "Creating user ${MYSQL_USER}"
		docker_process_sql --database=mysql <<<"CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY '$(sql_escape "$MYSQL_PASSWORD")';"
		if [ -n "$MYSQL_DATABASE" ]; then
			mysql_note "Giving user ${MYSQL_USER} access to schema ${MYSQL_DATABASE}"
			docker_process_sql --database=mysql <<<"GRANT ALL ON \`${MYSQL_DATABASE//_/\\_}\`.* TO '$MYSQL_USER'@'%';"
		fi
	fi
}

sql_escape() { # a value inside '...' in SQL
	local value=${1//\\/\\\\}
	printf '%s' "${value//\'/\'\'}"
}

_main() {
	if [ "${1:0:1}" = - ]; then set -- mysqld "$@"; fi
	case "${1:-}" in
	mysqld | mariadbd) ;;
	*) exec "$@" ;;
	esac
	case " $* " in
	*" --help "* | *" --version "* | *" -V "* | *" -? "*) exec "$@" ;;
	esac

	docker_setup_env "$@"
	if [ "$(id -u)" = 0 ]; then
		mkdir -p "$DATADIR" "$(dirname "$SOCKET")"
		chown -R mysql:mysql "$DATADIR" "$(dirname "$SOCKET")"
		mysql_note "Switching to the mysql user"
		exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
	fi

	if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
		docker_verify_minimum_env
		ls /docker-entrypoint-initdb.d/ >/dev/null # a mount that cannot be read fails here, before init
		mysql_note "Initializing database files"
		mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
			--skip-test-db --skip-name-resolve >/dev/null
		mysql_note "Database files initialized"
		docker_temp_server_start "$@"
		docker_setup_db
		docker_process_init_files /docker-entrypoint-initdb.d/*
		docker_temp_server_stop
		mysql_note "Initialization finished: ready for start up"
	fi
	exec "$@"
}

_main "$@"
