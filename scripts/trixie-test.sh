#!/bin/bash
# The package story, the LDAP store and the Cockpit page on Debian 13
# "trixie", run as root (CI does, with `make test-trixie`):
#
#   scripts/build-deb.sh && scripts/trixie-chroot.sh scripts/trixie-test.sh [PYTEST-ARG...]
#
# In the chroot that scripts/trixie-chroot.sh provides ($TRIXIE_ROOT, this
# tree read-only at the same path), with that release's libpam, glibc,
# slapd and Cockpit:
#
# 1. scripts/package-test.sh runs inside, as it runs on Debian 12: trixie's
#    apt installs dist/*.deb (dependencies from trixie), the autopkgtest
#    enrolls, activates with a code from oathtool and logs in through
#    common-auth after `pam-auth-update --enable totp`, replays and wrong
#    codes are refused, and the purge leaves common-* as it found them.
# 2. The packages go in again, and the LDAP story of tests/ldap_store.rs
#    (its test binary, built on the host) runs inside against trixie's
#    slapd, with the schema and access rules the package installs, through
#    the installed pam_totp.so, pam_totp_ldap.so and totpctl; the shipped
#    access rules are checked on that slapd too (tests/ldap_directory.rs).
# 3. Cockpit: a system D-Bus, /run/cockpit/session (socat hands each
#    connection to cockpit-session, as systemd's socket would) and
#    cockpit-ws run inside, on 127.0.0.1 and a free port, set up by
#    scripts/browser-setup.sh as scripts/browser-test.sh sets up the host
#    (the same settings, users, PAM line and axe-core); the host's Chromium
#    runs tests/browser (or the files PYTEST-ARG names) against it, and
#    what the tests run as root or write (totpctl, the test users, slapd,
#    /etc/pam.d/cockpit) goes into the chroot (COCKPIT_ROOT,
#    tests/browser/cockpit_system.py). Screenshots land in
#    target/screenshots-trixie/.
#
# TRIXIE_STEPS picks the steps, from "package ldap cockpit" (the default:
# all three).
#
# Nothing here changes the host's configuration: all of it happens in the
# chroot's overlay, which scripts/trixie-chroot.sh throws away. (The cockpit
# step installs what the host's side of the browser tests needs, Chromium
# and the rest of `scripts/deps.sh browser`, when it is missing, and keeps
# axe-core in target/npm/, as scripts/browser-test.sh does.)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

log() { printf 'trixie-test: %s\n' "$*"; }
die() { printf 'trixie-test: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
root=${TRIXIE_ROOT:-}
[ -n "$root" ] && [ -x "$root/usr/bin/apt-get" ] || die "run through scripts/trixie-chroot.sh (no TRIXIE_ROOT)"

# A command inside the chroot, with a clean environment, from this tree.
inside() {
	chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		/bin/sh -c 'cd "$0" && exec "$@"' "$top" "$@"
}

deb=$(find dist -maxdepth 1 -name "libpam-totp_*.deb" 2>/dev/null | sort -V | tail -n 1 || true)
cockpit_deb=$(find dist -maxdepth 1 -name "cockpit-totp_*.deb" 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$deb" ] && [ -n "$cockpit_deb" ] || die "no dist/libpam-totp_*.deb or dist/cockpit-totp_*.deb: run scripts/build-deb.sh first"

work=$(mktemp -d /tmp/pamtotp-trixie.XXXXXX)
pids=()
cleanup() {
	local rc=$? pid
	set +e
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "$rc" != 0 ] && [ -s "$work/cockpit-ws.log" ]; then
		sed 's/^/cockpit-ws: /' "$work/cockpit-ws.log" | tail -n 20
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT TERM

# --- the release ----------------------------------------------------------
version() { inside dpkg-query -W -f='${Version}' "$1"; }
# shellcheck disable=SC1091 # the chroot's
codename=$(. "$root/etc/os-release" && echo "$VERSION_CODENAME $VERSION_ID")
pam=$(version libpam0g)
libc=$(version libc6)
slapd=$(version slapd)
cockpit=$(version cockpit-ws)
log "Debian $codename: libpam $pam, glibc $libc, slapd $slapd, cockpit-ws $cockpit"
case "$codename|$pam|$libc|$slapd|$cockpit" in
"trixie 13|1.7."*"|2.41-"*"|2.6."*"|337-"*) ;;
*) die "this is not the Debian 13 that the tests promise (libpam 1.7, glibc 2.41, OpenLDAP 2.6, Cockpit 337)" ;;
esac

steps=" ${TRIXIE_STEPS:-package ldap cockpit} "
for s in $steps; do
	case $s in package | ldap | cockpit) ;; *) die "unknown step in TRIXIE_STEPS: $s (package ldap cockpit)" ;; esac
done
step() { [[ "$steps" == *" $1 "* ]]; }

# --- 1. the package story ---------------------------------------------------
took() { log "$1: ${SECONDS}s"; SECONDS=0; }
SECONDS=0
if step package; then
	# The earlier release's .deb for the upgrade story, built (or found
	# cached) here on the host: the chroot has neither git nor cargo.
	previous=$(scripts/previous-deb.sh) || die "cannot build the earlier release's .deb"
	log "scripts/package-test.sh in Debian 13"
	inside env PAM_TOTP_PREVIOUS_DEB="$previous" scripts/package-test.sh
	took "the package cycle"
fi

log "installing $deb $cockpit_deb in Debian 13"
inside apt-get -o DPkg::Lock::Timeout=600 install -y -qq "./$deb" "./$cockpit_deb" >/dev/null

# --- 2. the LDAP store against trixie's slapd ---------------------------------
# The test binary of tests/NAME.rs, built here (make test has built it).
test_binary() {
	PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" \
		cargo test --locked -q -p integration --test "$1" --no-run --message-format=json 2>/dev/null |
		/usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}

# The test binaries of tests/ldap_store.rs and tests/ldap_directory.rs run
# inside; they find the module, totpctl and a writable target directory
# through CARGO_TARGET_DIR, which inside points at the installed files.
ldap_step() {
	staged=/opt/pam_totp-test
	mkdir -p "$root$staged/target/debug"
	for t in ldap_store ldap_directory; do
		bin=$(test_binary "$t")
		[ -x "$bin" ] || die "could not build the $t test binary (cargo test -p integration --test $t --no-run)"
		cp "$bin" "$root$staged/$t"
	done
	module=$(inside dpkg-query -L libpam-totp | grep '/security/pam_totp\.so$')
	ldap_module=$(inside dpkg-query -L libpam-totp | grep '/security/pam_totp_ldap\.so$')
	[ -n "$module" ] && [ -n "$ldap_module" ] || die "libpam-totp installed no pam_totp.so or pam_totp_ldap.so"
	ln -s "$module" "$root$staged/target/debug/libpam_totp.so"
	ln -s "$ldap_module" "$root$staged/target/debug/libpam_totp_ldap.so"
	ln -s /usr/bin/totpctl "$root$staged/target/debug/totpctl"
	# The tests load the schema and access rules from this tree's ldap/: they
	# must be what the package installed.
	for f in pam_totp.schema acl.conf pam_totp.ldif acl.ldif; do
		inside cmp "/usr/share/pam_totp/ldap/$f" "ldap/$f" || die "/usr/share/pam_totp/ldap/$f is not this tree's ldap/$f"
	done
	ldap_test() { # ldap_test BINARY TEST-ARG...
		local bin=$1
		shift
		inside env CARGO_TARGET_DIR="$staged/target" RUST_BACKTRACE=1 "$staged/$bin" --test-threads=1 "$@"
	}
	log "the LDAP store through the installed modules, against slapd $slapd"
	ldap_test ldap_store --exact enroll_activate_log_in_and_replay_through_ldap a_code_works_once_across_the_fleet \
		failures_on_two_hosts_add_up_and_an_unlock_on_a_third_clears_them
	log "the shipped access rules on slapd $slapd"
	ldap_test ldap_directory
}
if step ldap; then
	ldap_step
	took "the LDAP store"
fi

# --- 3. Cockpit 337 -------------------------------------------------------------
if ! step cockpit; then
	log "Debian 13: passed (steps:$steps)"
	exit 0
fi
# What scripts/browser-test.sh sets up on this machine, set up in the
# chroot (scripts/browser-setup.sh): the settings, the test users, the
# code for Cockpit only; Chromium and axe-core here.
scripts/deps.sh browser
# shellcheck source=scripts/browser-setup.sh
. scripts/browser-setup.sh
sys_root=$root
sys() { inside "$@"; }
browser_axe
browser_setup

# Started in the background from here, each by its PID (chroot execs the
# program, so the PID is the program's).
background() { # background LOGFILE COMMAND...
	local out=$1
	shift
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@" >"$out" 2>&1 &
	pids+=($!)
}
wait_for() { # wait_for WHAT COMMAND...: up to 10 s
	local what=$1 i
	shift
	for i in $(seq 100); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	die "$what did not come up"
}
# The bridge of 337 talks to the system bus (no systemd here to start it).
inside dbus-uuidgen --ensure
mkdir -p "$root/run/dbus"
background "$work/dbus.log" dbus-daemon --system --nofork --nopidfile
wait_for "the chroot's system D-Bus" test -S "$root/run/dbus/system_bus_socket"
# The bridge of 337 wants the user's session bus, which a systemd user
# manager would give it (the bridge of 287 started one itself): each
# session's bridge gets one from dbus-run-session (cockpit-session finds
# /usr/local/bin first in its PATH). The privileged bridge needs none.
cat >"$root/usr/local/bin/cockpit-bridge" <<'EOF'
#!/bin/sh
case " $* " in
*" --privileged "*) exec /usr/bin/cockpit-bridge "$@" ;;
esac
exec dbus-run-session -- /usr/bin/cockpit-bridge "$@"
EOF
chmod 0755 "$root/usr/local/bin/cockpit-bridge"
# What cockpit-session.socket and cockpit-session@.service do under systemd:
# every connection to /run/cockpit/session becomes cockpit-session's stdin.
mkdir -p "$root/run/cockpit"
background "$work/session.log" socat UNIX-LISTEN:/run/cockpit/session,fork,mode=0600 \
	EXEC:/usr/lib/cockpit/cockpit-session,nofork
wait_for "/run/cockpit/session" test -S "$root/run/cockpit/session"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
background "$work/cockpit-ws.log" /usr/lib/cockpit/cockpit-ws --no-tls --address 127.0.0.1 --port "$port"
wait_for "cockpit-ws $cockpit on 127.0.0.1:$port" \
	/usr/bin/python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')"
log "cockpit-ws $cockpit in Debian 13 on 127.0.0.1:$port"

# The tests run totpctl, and change users and files, in the chroot
# (COCKPIT_ROOT, tests/browser/cockpit_system.py).
browser_pytest "http://127.0.0.1:$port" "$top/target/screenshots-trixie" "$@"
took "Cockpit 337"
log "Debian 13: passed (steps:$steps)"
