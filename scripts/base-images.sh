#!/usr/bin/env bash
# `make base-images`: local stand-ins for the images the stack starts from, for hosts that reach no
# container registry. Built from Debian's packages and nothing else (Dockerfiles in docker/base/):
#
#   cloudeye-base/debian:bookworm   debootstrap --variant=minbase from the host's Debian mirror, imported
#   cloudeye-base/python:bookworm   python3 (3.11), venv, pip                       -> PYTHON_IMAGE
#   cloudeye-base/mysql:bookworm    MariaDB with the mysql image's contract          -> MYSQL_IMAGE
#   cloudeye-base/redis:bookworm    redis-server                                     -> REDIS_IMAGE
#   cloudeye-base/debian:forky      the same from Debian testing, for
#   cloudeye-base/nginx:forky       nginx >= 1.27.3 (bookworm's is 1.22)             -> NGINX_BASE_IMAGE
#
# then writes the four names into .env, so `make up` uses them; compose.yaml and the Dockerfiles keep
# the official images as their defaults. The host's local CA certificates (/usr/local/share/
# ca-certificates) and apt settings for its mirror (proxies, Valid-Until checks) go into the Debian
# bases, so apt and pip work in builds as they do on the host.
#
# An image is rebuilt only when its inputs change (mirror, CA certificates, apt settings, this recipe,
# its Dockerfile directory, its base): they are hashed into the label org.cloudeye.base-inputs, so a
# second run takes seconds. BASE_IMAGES_REBUILD=1 rebuilds everything (e.g. for Debian's updates).
#
#   scripts/base-images.sh [ENV_FILE]        (default: .env at the repository root; must exist)
#
# Settings (environment): BASE_IMAGES_MIRROR (default: the host's apt sources), BASE_IMAGES_SECURITY_MIRROR,
# BASE_IMAGES_PREFIX (cloudeye-base), BASE_IMAGES_REBUILD.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
env_file=${1:-$root/.env}
prefix=${BASE_IMAGES_PREFIX:-cloudeye-base}
label=org.cloudeye.base-inputs

log() { echo "[base-images] $*"; }
die() {
	echo "[base-images] error: $*" >&2
	exit 1
}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

[ -f "$env_file" ] || die "$env_file does not exist (make env writes it)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (scripts/ensure-docker.sh installs and starts one)"

# The legacy builder when buildx is missing (Debian's docker.io has none); the Dockerfiles need nothing
# BuildKit-only.
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi

# --- the host's Debian mirror, local CAs and apt proxy -------------------------------------------------
host_mirrors() { # prints "MIRROR SECURITY_MIRROR" from the host's apt sources (one-line and deb822)
	python3 - <<'PY'
import glob
import re
entries = []  # (uris, suites)
for path in sorted(glob.glob("/etc/apt/sources.list") + glob.glob("/etc/apt/sources.list.d/*.list")):
    for line in open(path, encoding="utf-8", errors="replace"):
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            entries.append(([words[1]], [words[2]]))
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path, encoding="utf-8", errors="replace").read()):
        fields = dict(
            (key.strip().lower(), value.split())
            for key, value in re.findall(r"^([A-Za-z-]+):(.*)$", stanza, flags=re.MULTILINE)
        )
        if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
            entries.append((fields.get("uris", []), fields.get("suites", [])))
def first(wanted, default):
    for uris, suites in entries:
        if uris and any(s.rstrip("/") in wanted for s in suites):
            return uris[0]
    return default
# A Debian mirror serves every suite: the host's, whichever it is.
codenames = {"bookworm", "trixie", "forky", "bullseye", "sid", "stable", "testing", "unstable"}
mirror = first(codenames, "http://deb.debian.org/debian")
security = first({f"{name}-security" for name in codenames}, "http://deb.debian.org/debian-security")
print(mirror, security)
PY
}
read -r host_mirror host_security < <(host_mirrors)
mirror=${BASE_IMAGES_MIRROR:-$host_mirror}
security_mirror=${BASE_IMAGES_SECURITY_MIRROR:-$host_security}
ca_files=()
if [ -d /usr/local/share/ca-certificates ]; then
	mapfile -t ca_files < <(find /usr/local/share/ca-certificates -type f -name '*.crt' | sort)
fi
# The host's rules for reaching its mirror: proxies, and whether Release files may be past their
# Valid-Until date (a mirror served from a snapshot is).
apt_conf=$(apt-config dump 2>/dev/null | grep -iE '^Acquire::([a-z]+::Proxy|Check-Valid-Until|Check-Date)' || true)

digest() { sha256sum | cut -c1-16; }
# Images a rebuild replaced (now untagged): removed at the end, derived ones before their bases; one a
# container still uses stays.
replaced=()
remove_replaced() { if [ -n "$1" ]; then replaced+=("$1"); fi; }
current_inputs() { docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null || true; }
up_to_date() { [ -z "${BASE_IMAGES_REBUILD:-}" ] && [ "$(current_inputs "$1")" = "$2" ]; }

# --- cloudeye-base/debian: debootstrap, configured, imported ----------------------------------------
configure_rootfs() {
	local rootfs=$1 suite=$2
	rm -f "$rootfs/etc/apt/sources.list"
	cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<-SOURCES
		Types: deb
		URIs: $mirror
		Suites: $suite $suite-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: $security_mirror
		Suites: $suite-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	SOURCES
	# As Debian's own slim images: no documentation, manuals or translations.
	cat >"$rootfs/etc/dpkg/dpkg.cfg.d/container-slim" <<-'DPKG'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-exclude /usr/share/lintian/*
	DPKG
	printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
		>"$rootfs/etc/apt/apt.conf.d/90container"
	# No package cache left in image layers (as in Debian's own images).
	cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<-'APT'
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		Dir::Cache::pkgcache "";
		Dir::Cache::srcpkgcache "";
	APT
	# Packages never start their services inside a build (as in Debian's own images).
	printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
	chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
	if [ -n "$apt_conf" ]; then printf '%s\n' "$apt_conf" >"$rootfs/etc/apt/apt.conf.d/01host-mirror"; fi
	if [ "${#ca_files[@]}" -gt 0 ]; then
		mkdir -p "$rootfs/usr/local/share/ca-certificates"
		cp "${ca_files[@]}" "$rootfs/usr/local/share/ca-certificates/"
	fi
	chroot "$rootfs" update-ca-certificates >/dev/null
	chroot "$rootfs" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get upgrade -y -qq >/dev/null
	chroot "$rootfs" apt-get clean
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
		"$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/* "$rootfs"/tmp/*
}

build_debian() {
	local image=$1 inputs=$2 suite=$3 rootfs script previous
	command -v debootstrap >/dev/null 2>&1 || {
		log "installing debootstrap"
		as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends debootstrap >/dev/null
	}
	# A debootstrap older than the suite has no script for it; testing's is unstable's.
	script=/usr/share/debootstrap/scripts/$suite
	[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
	previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
	rootfs=$(mktemp -d /var/tmp/cloudeye-rootfs.XXXXXX)
	# shellcheck disable=SC2064 # the path is fixed now
	trap "as_root rm -rf '$rootfs'" EXIT
	log "debootstrap $suite from $mirror"
	as_root debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "$mirror" "$script" >/dev/null
	as_root bash -c "$(declare -p mirror security_mirror apt_conf ca_files); $(declare -f configure_rootfs); configure_rootfs '$rootfs' '$suite'"
	as_root tar -C "$rootfs" --numeric-owner -c . | docker import \
		--change "LABEL $label=$inputs" --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' - "$image" >/dev/null
	as_root rm -rf "$rootfs"
	trap - EXIT
	remove_replaced "$previous"
}

declare -A debian_inputs
debian_base() { # debian_base SUITE: $prefix/debian:SUITE, built when its inputs changed
	local suite=$1 image=$prefix/debian:$1 inputs
	inputs=$(
		{
			echo "$suite $mirror $security_mirror"
			echo "$apt_conf"
			[ "${#ca_files[@]}" -eq 0 ] || cat "${ca_files[@]}"
			declare -f configure_rootfs build_debian
		} | digest
	)
	debian_inputs[$suite]=$inputs
	if up_to_date "$image" "$inputs"; then
		log "$image is up to date"
	else
		build_debian "$image" "$inputs" "$suite"
		log "built $image"
	fi
}

# --- the images on top of them -------------------------------------------------------------------
build_on_debian() { # build_on_debian NAME SUITE: docker/base/NAME/ on $prefix/debian:SUITE -> $prefix/NAME:SUITE
	local suite=$2 directory=$root/docker/base/$1 image=$prefix/$1:$2 inputs build_log
	inputs=$(
		{
			echo "${debian_inputs[$suite]}"
			cd "$directory" && find . -type f | LC_ALL=C sort | while read -r file; do
				echo "$file $(stat -c %a "$file")"
				cat "$file"
			done
		} | digest
	)
	if up_to_date "$image" "$inputs"; then
		log "$image is up to date"
		return
	fi
	log "building $image"
	local started=$SECONDS previous
	previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
	build_log=$(mktemp)
	if ! docker build --build-arg "DEBIAN_IMAGE=$prefix/debian:$suite" --label "$label=$inputs" \
		-t "$image" "$directory" >"$build_log" 2>&1; then
		tail -n 40 "$build_log" >&2
		rm -f "$build_log"
		die "building $image failed"
	fi
	rm -f "$build_log"
	remove_replaced "$previous"
	log "built $image in $((SECONDS - started)) s"
}

debian_base bookworm
build_on_debian python bookworm
build_on_debian redis bookworm
build_on_debian mysql bookworm
debian_base forky
build_on_debian nginx forky
for ((i = ${#replaced[@]} - 1; i >= 0; i--)); do docker image rm "${replaced[i]}" >/dev/null 2>&1 || true; done

# --- .env: the names compose and the Dockerfiles read ----------------------------------------------
python3 - "$env_file" "$prefix" <<'PY'
import sys

path, prefix = sys.argv[1:]
names = {
    "PYTHON_IMAGE": f"{prefix}/python:bookworm",
    "NGINX_BASE_IMAGE": f"{prefix}/nginx:forky",
    "MYSQL_IMAGE": f"{prefix}/mysql:bookworm",
    "REDIS_IMAGE": f"{prefix}/redis:bookworm",
}
marker = "# --- make base-images: local stand-ins for the official images (remove these lines to use those)"
lines = open(path, encoding="utf-8").read().splitlines()
kept = [line for line in lines if line != marker and line.split("=", 1)[0] not in names]
while kept and not kept[-1].strip():
    kept.pop()
kept += ["", marker, *(f"{name}={value}" for name, value in names.items())]
with open(path, "w", encoding="utf-8") as out:
    out.write("\n".join(kept) + "\n")
print(f"[base-images] {path}: " + " ".join(f"{name}={value}" for name, value in names.items()))
PY
