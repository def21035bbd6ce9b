#!/bin/bash
# Run a command beside a Debian 13 "trixie" chroot, as root (CI does):
#
#   scripts/trixie-chroot.sh COMMAND [ARG...]
#
# The first run builds a trixie root file system with debootstrap, from the
# Debian archive that this machine's apt already uses (TRIXIE_MIRROR names
# another), with the programs the tests run in it, and keeps it in
# target/trixie/rootfs. Later runs reuse it, until the package list below
# changes or TRIXIE_REBUILD=1 asks for a fresh one.
#
# Each run works on a throw-away overlay of that root, so nothing a test
# installs or writes there is kept. In a private mount namespace (the
# host's mounts never change), it mounts /proc, /sys, a minimal /dev with
# its own /dev/pts, /run and /tmp in the overlay, and this source tree,
# read-only, at the same path inside it. COMMAND runs on the host side with
# TRIXIE_ROOT set to the chroot's root (`chroot "$TRIXIE_ROOT" ...` enters
# it). On any exit, whatever still runs inside the chroot is stopped (one
# PID at a time: only processes whose root is this chroot), everything is
# unmounted in reverse order and the overlay is removed.
#
# It mounts file systems and starts services: the whole run holds
# /tmp/pam_totp-system.lock (a caller that holds it already sets
# PAM_TOTP_SYSTEM_LOCKED=1, or the two would wait for each other).
set -euo pipefail
[ -z "${TRIXIE_XTRACE:-}" ] || set -x

top=$(cd "$(dirname "$0")/.." && pwd)
self="$top/scripts/$(basename "$0")"

log() { printf 'trixie-chroot: %s\n' "$*" >&2; }
die() { printf 'trixie-chroot: error: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "must run as root (it runs debootstrap, mounts and chroot)"

if [ -z "${PAM_TOTP_SYSTEM_LOCKED:-}" ]; then
	exec env PAM_TOTP_SYSTEM_LOCKED=1 flock /tmp/pam_totp-system.lock "$self" "$@"
fi
if [ -z "${TRIXIE_CHROOT_NAMESPACE:-}" ]; then
	exec env TRIXIE_CHROOT_NAMESPACE=1 unshare -m --propagation private "$self" "$@"
fi

suite=trixie
# What the tests run inside: the package story (scripts/package-test.sh),
# the LDAP store against this release's slapd, and Cockpit (cockpit-ws,
# the bridge and its system D-Bus; socat hands cockpit-ws its sessions).
packages="libpam-runtime passwd login util-linux procps python3 pamtester oathtool
          libpam-wrapper slapd ldap-utils openssl cockpit-ws cockpit-bridge cockpit-system
          dbus socat sudo"
packages=$(printf '%s\n' $packages | sort | tr '\n' ' ')

# The Debian archive that apt on this machine uses (the first deb822 URIs
# or one-line entry ending in /debian), unless TRIXIE_MIRROR says.
host_mirror() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ ! -f "$f" ] || cat "$f"
	done |
		sed -n 's/^[[:space:]]*\(deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\|URIs:[[:space:]]*\)\(https\?:\/\/[^[:space:]]*\/debian\)\/\?\([[:space:]].*\)\?$/\3/p' |
		sed -n 1p
}
mirror=${TRIXIE_MIRROR:-$(host_mirror)}
[ -n "$mirror" ] || die "no Debian archive in /etc/apt/sources*: set TRIXIE_MIRROR"
mirror=${mirror%/}

cache="$top/target/trixie"
rootfs="$cache/rootfs"
stamp="$cache/rootfs.stamp"
want_stamp="suite=$suite mirror=$mirror packages=$packages"

# Every mount made, innermost last; cleanup undoes them in reverse.
mounts=()
run=""
root=""
cmd=""

mount_tracked() { # mount_tracked MOUNTPOINT MOUNT-ARGS...
	local point=$1
	shift
	mount "$@" "$point"
	mounts+=("$point")
}

# /proc, /sys, a minimal /dev (its own device nodes, as debootstrap makes
# them, and a new devpts instance), /run and /tmp, in the chroot at $1.
mount_system() {
	local r=$1 node name major minor
	mount_tracked "$r/proc" -t proc proc
	mount_tracked "$r/sys" -t sysfs -o ro,nosuid,nodev,noexec sysfs
	mount_tracked "$r/dev" -t tmpfs -o mode=0755,nosuid tmpfs
	for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
		IFS=: read -r name major minor <<<"$node"
		mknod -m 0666 "$r/dev/$name" c "$major" "$minor"
	done
	mkdir -p "$r/dev/pts" "$r/dev/shm"
	mount_tracked "$r/dev/pts" -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts
	ln -s pts/ptmx "$r/dev/ptmx"
	ln -s /proc/self/fd "$r/dev/fd"
	ln -s /proc/self/fd/0 "$r/dev/stdin"
	ln -s /proc/self/fd/1 "$r/dev/stdout"
	ln -s /proc/self/fd/2 "$r/dev/stderr"
	mount_tracked "$r/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs
	mount_tracked "$r/run" -t tmpfs -o mode=0755,nosuid,nodev tmpfs
	mount_tracked "$r/tmp" -t tmpfs -o mode=1777,nosuid,nodev tmpfs
}

# Stop what still runs with its root in the chroot (a service a test left,
# a session's D-Bus), by PID: TERM, a moment, then KILL.
stop_inside() {
	local r=$1 sig pid left
	[ -n "$r" ] && [ -d "$r" ] || return 0
	for sig in TERM KILL; do
		left=0
		for pid in $(ls /proc | grep -E '^[0-9]+$'); do
			[ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$r" ] || continue
			kill "-$sig" "$pid" 2>/dev/null && left=1
		done
		[ "$left" = 1 ] || return 0
		[ "$sig" = KILL ] || sleep 1
	done
}

cleanup() {
	local rc=$? i
	set +e
	if [ -n "$cmd" ] && kill -TERM "$cmd" 2>/dev/null; then
		wait "$cmd"
	fi
	stop_inside "$root"
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" ||
			log "cleanup: could not unmount ${mounts[i]}"
	done
	mounts=()
	[ -z "$run" ] || rm -rf "$run"
	[ ! -d "$rootfs.new" ] || rm -rf "$rootfs.new"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT TERM

# --- the cached root file system ---------------------------------------
build_rootfs() {
	local new="$rootfs.new" i
	rm -rf "$new" "$rootfs" "$stamp"
	mkdir -p "$cache"
	log "debootstrap $suite from $mirror into $new"
	debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
		"$suite" "$new" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
	# Nothing installed in the chroot starts a service by itself.
	printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
	chmod 0755 "$new/usr/sbin/policy-rc.d"
	rm -f "$new/etc/apt/sources.list"
	cat >"$new/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: $suite $suite-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: $mirror-security
		Suites: $suite-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	cp /etc/resolv.conf "$new/etc/resolv.conf"
	mount_system "$new"
	# The tests start their own slapd: no database for the package to make.
	echo "slapd slapd/no_configuration boolean true" | chroot "$new" debconf-set-selections
	log "installing in the chroot: $packages"
	# shellcheck disable=SC2086 # a list of package names
	chroot "$new" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" && apt-get clean' \
		_ $packages >"$cache/apt.log" 2>&1 ||
		{ tail -n 30 "$cache/apt.log" >&2; die "installing the test programs in the chroot failed (log: $cache/apt.log)"; }
	stop_inside "$new"
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}"
	done
	mounts=()
	mv "$new" "$rootfs"
	printf '%s\n' "$want_stamp" >"$stamp"
	log "cached $rootfs"
}

command -v debootstrap >/dev/null || "$top/scripts/deps.sh" trixie
if [ -n "${TRIXIE_REBUILD:-}" ] || [ ! -d "$rootfs" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want_stamp" ]; then
	build_rootfs
fi

# --- this run's overlay --------------------------------------------------
run=$(mktemp -d "$cache/run.XXXXXX")
mkdir "$run/upper" "$run/work" "$run/root"
root="$run/root"
mount_tracked "$root" -t overlay -o "lowerdir=$rootfs,upperdir=$run/upper,workdir=$run/work" overlay
mount_system "$root"
mkdir -p "$root$top"
mount_tracked "$root$top" --bind "$top"
mount -o remount,bind,ro "$root$top"

log "chroot ready in ${SECONDS}s"
export TRIXIE_ROOT="$root"
# In the background, so that a signal runs the cleanup at once.
"$@" &
cmd=$!
wait "$cmd"
