#!/bin/bash
# The Cockpit page in a real browser, run as root (CI does):
#
#   scripts/build-deb.sh && scripts/browser-test.sh [PYTEST-ARG...]
#
# Installs dist/libpam-totp_*.deb and dist/cockpit-totp_*.deb, sets up
# what scripts/browser-setup.sh sets up for the tests (self-service on,
# four test users, the code for Cockpit only: the line README.md gives for
# /etc/pam.d/cockpit; axe-core), starts a private cockpit-ws on 127.0.0.1
# (no TLS, no systemd), and drives headless Chromium through Selenium with
# tests/browser (or the files that PYTEST-ARG names). Screenshots of every
# step land in target/screenshots/. Whatever happens, the trap puts the
# machine back: cockpit-ws stopped, /etc/pam.d/cockpit restored, packages
# purged, test users removed. scripts/trixie-test.sh runs the same tests
# against Debian 13's Cockpit.
#
# It changes the machine's PAM configuration for Cockpit while it runs: use
# it on a test machine or in CI.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

log() { printf 'browser-test: %s\n' "$*"; }
die() { printf 'browser-test: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and edits /etc/pam.d/cockpit)"
export DEBIAN_FRONTEND=noninteractive

deb=$(find dist -maxdepth 1 -name "libpam-totp_*.deb" | sort -V | tail -n 1)
cockpit_deb=$(find dist -maxdepth 1 -name "cockpit-totp_*.deb" | sort -V | tail -n 1)
[ -n "$deb" ] && [ -n "$cockpit_deb" ] || die "no dist/libpam-totp_*.deb or dist/cockpit-totp_*.deb: run scripts/build-deb.sh first"
scripts/deps.sh browser

# shellcheck source=scripts/browser-setup.sh
. scripts/browser-setup.sh
sys_root=""
sys() { "$@"; }
browser_axe

pam_cockpit=/etc/pam.d/cockpit
work=$(mktemp -d /tmp/pamtotp-browser.XXXXXX)
ws_pid=""

# Stop what a test user's Cockpit session left running (cockpit-bridge
# starts a session dbus-daemon that outlives cockpit-ws), one PID at a
# time, then remove the user.
remove_user() {
	local pid
	id "$1" >/dev/null 2>&1 || return 0
	for pid in $(pgrep -u "$1" || true); do
		kill "$pid" 2>/dev/null || true
	done
	sleep 0.2
	userdel -r "$1" >/dev/null 2>&1 || userdel -rf "$1" >/dev/null 2>&1 || true
}

installed() {
	local s
	s=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)
	[ -n "$s" ] && [ "$s" != not-installed ]
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$ws_pid" ]; then
		kill "$ws_pid" 2>/dev/null
		wait "$ws_pid" 2>/dev/null
		[ ! -s "$work/cockpit-ws.log" ] || [ "$rc" = 0 ] || sed 's/^/cockpit-ws: /' "$work/cockpit-ws.log" | tail -20
	fi
	if [ -f "$work/cockpit.pam" ]; then
		cp -a "$work/cockpit.pam" "$pam_cockpit"
	fi
	if installed cockpit-totp || installed libpam-totp; then
		apt-get -o DPkg::Lock::Timeout=600 purge -y -qq cockpit-totp libpam-totp >/dev/null 2>&1
	fi
	for u in $browser_users; do
		remove_user "$u"
	done
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT TERM

# A run that was killed (no trap) may have left the packages behind.
if installed cockpit-totp || installed libpam-totp; then
	log "purging cockpit-totp and libpam-totp left installed before this run"
	apt-get -o DPkg::Lock::Timeout=600 purge -y -qq cockpit-totp libpam-totp >/dev/null
fi
for u in $browser_users; do
	remove_user "$u"
done

log "installing $deb $cockpit_deb"
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "./$deb" "./$cockpit_deb" >/dev/null

# What the tests expect (scripts/browser-setup.sh); /etc/pam.d/cockpit is
# kept for the cleanup to put back.
cp -a "$pam_cockpit" "$work/cockpit.pam"
browser_setup

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/lib/cockpit/cockpit-ws --no-tls --address 127.0.0.1 --port "$port" > "$work/cockpit-ws.log" 2>&1 &
ws_pid=$!
for _ in $(seq 50); do
	if /usr/bin/python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null; then
		break
	fi
	sleep 0.1
done
log "cockpit-ws on 127.0.0.1:$port (pid $ws_pid)"

browser_pytest "http://127.0.0.1:$port" "$top/target/screenshots" "$@"
