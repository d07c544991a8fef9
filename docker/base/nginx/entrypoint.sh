#!/bin/sh
# Entrypoint of the nginx stand-in (make base-images), with the official image's contract: when the
# command is nginx, every executable /docker-entrypoint.d/*.sh runs first (and *.envsh are sourced), in
# name order; a failing one stops the container.
set -eu
if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
	for script in /docker-entrypoint.d/*; do
		[ -f "$script" ] || continue
		case "$script" in
		*.envsh)
			if [ -x "$script" ]; then
				echo "$0: sourcing $script"
				# shellcheck disable=SC1090 # the scripts are the image user's
				. "$script"
			fi
			;;
		*.sh)
			if [ -x "$script" ]; then
				echo "$0: running $script"
				"$script"
			else
				echo "$0: ignoring $script, not executable"
			fi
			;;
		*) echo "$0: ignoring $script" ;;
		esac
	done
fi
exec "$@"
