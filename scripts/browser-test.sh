#!/bin/bash
# The Cockpit page in a real browser, run as root (CI does):
#
#   scripts/build-deb.sh && scripts/browser-test.sh
#
# Installs dist/libpam-totp_*.deb and dist/cockpit-totp_*.deb, turns
# self-service on, creates four test users, requires the code for Cockpit
# only (the line README.md gives for /etc/pam.d/cockpit), starts a private
# cockpit-ws on 127.0.0.1 (no TLS, no systemd), and drives headless
# Chromium through Selenium with tests/browser/test_panel.py. Screenshots
# of every step land in target/screenshots/. Whatever happens, the trap
# puts the machine back: cockpit-ws stopped, /etc/pam.d/cockpit restored,
# packages purged, test users removed.
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

# axe-core, the accessibility checker the tests run on every state of the
# page: fetched from the npm registry at this exact version and checked
# against the integrity the registry published for it, kept in target/ for
# the next run. Test-only: nothing of it is packaged.
axe_version=4.14.1
axe_integrity="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
axe_dir="$top/target/npm/axe-core-$axe_version"
if [ ! -s "$axe_dir/axe.min.js" ]; then
	# npm may come with a nodejs from elsewhere; Debian has it apart.
	if ! command -v npm >/dev/null; then
		apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends npm >/dev/null
	fi
	mkdir -p "$axe_dir"
	tarball=$(cd "$axe_dir" && npm pack --silent "axe-core@$axe_version" | tail -n 1)
	got="sha512-$(openssl dgst -sha512 -binary "$axe_dir/$tarball" | base64 -w0)"
	[ "$got" = "$axe_integrity" ] || die "axe-core $axe_version: integrity $got, expected $axe_integrity"
	tar -xzf "$axe_dir/$tarball" -C "$axe_dir" --strip-components=1 package/axe.min.js package/LICENSE
	rm -f "$axe_dir/$tarball"
fi
export AXE_JS="$axe_dir/axe.min.js"

users="pamtotp-cp-alice pamtotp-cp-bob pamtotp-cp-carol pamtotp-cp-dave"
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
	for u in $users; do
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
for u in $users; do
	remove_user "$u"
done

log "installing $deb $cockpit_deb"
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "./$deb" "./$cockpit_deb" >/dev/null

# Test settings: users who have not enrolled log in with the password (the
# story starts there), three failures lock for 15 min, no backoff so that
# the test measures results rather than delays, and a window of three
# steps so that one step's codes cover activation, two logins and a proof.
cat > /etc/pam_totp/config.toml <<'EOF'
[policy]
unenrolled = "allow"
[otp]
window = 3
[throttle]
max_failures = 3
backoff_seconds = 0
backoff_max_seconds = 0
EOF
totpctl self-service enable >/dev/null

# alice and bob may use self-service; carol is an administrator (sudo);
# dave is neither.
for u in $users; do
	useradd -m -s /bin/bash "$u"
	printf '%s:%s\n' "$u" "$u-Pw-1" | chpasswd
done
usermod -aG totp-users pamtotp-cp-alice
usermod -aG totp-users pamtotp-cp-bob
usermod -aG sudo pamtotp-cp-carol

# The code for Cockpit only: one line after common-auth (README.md).
cp -a "$pam_cockpit" "$work/cockpit.pam"
sed -i '/^auth[[:space:]]\+substack[[:space:]]\+common-auth/a auth       required     pam_totp.so' "$pam_cockpit"
grep -q '^auth[[:space:]]\+required[[:space:]]\+pam_totp.so' "$pam_cockpit" || die "could not add pam_totp to $pam_cockpit"

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

mkdir -p target/screenshots
rm -f target/screenshots/*.png
PANEL_URL="http://127.0.0.1:$port" SCREENSHOTS="$top/target/screenshots" \
	/usr/bin/python3 -m pytest -p no:cacheprovider -q tests/browser "$@"
