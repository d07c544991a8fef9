#!/bin/sh
# Entrypoint of the redis stand-in (make base-images), after the official image's: options alone (or a
# config file) mean redis-server with them, and protected mode is off unless asked for, since the
# container is reached over its network, not on loopback (the official image builds redis with that
# default).
set -eu
case "${1:-}" in
-* | *.conf) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ]; then
	case " $* " in
	*" --protected-mode "*) ;;
	*) set -- "$@" --protected-mode no ;;
	esac
fi
exec "$@"
