#!/bin/bash
# Package cycle test for libpam-totp, run as root (CI does):
#
#   scripts/build-deb.sh && scripts/package-test.sh
#
# First the upgrade from an earlier release (scripts/previous-deb.sh builds
# its .deb once and keeps it under target/): install it, enroll, log in
# with a code and with a recovery code, upgrade to dist/'s .deb, and check
# that the login state survived (both used codes refused, the next ones
# work), then purge. Then the cycle of this release:
# installs dist/libpam-totp_*.deb, enables the pam-auth-update profile,
# logs a test user in through the stock common-auth with pamtester
# (password + code from oathtool), disables the profile, purges the
# package, and checks that /etc/pam.d/common-* are byte for byte what
# they were before. Whatever happens, the trap puts the machine back:
# package purged, common-* restored, test user and service file removed.
#
# It changes the machine's PAM configuration while it runs: use it on a
# test machine or in CI, not on a host people are logging in to.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

user=pamtotp-pkg
service=pamtotp-pkgtest
service_file=/etc/pam.d/$service
record=/etc/pam_totp/users/$user.toml

passed=0
failed=0
created_user=0
work=""

log() { printf 'package-test: %s\n' "$*"; }
die() { printf 'package-test: error: %s\n' "$*" >&2; exit 1; }
ok() { passed=$((passed + 1)); printf 'ok     %s\n' "$*"; }
not_ok() {
	failed=$((failed + 1))
	printf 'FAILED %s\n' "$*"
	# Show what pamtester or totpctl said, if the failed check ran one.
	if [ -n "$work" ] && [ -s "$work/last.out" ]; then sed 's/^/       | /' "$work/last.out"; fi
}
check() { # check DESCRIPTION COMMAND...
	local what=$1; shift
	[ -z "$work" ] || rm -f "$work/last.out"
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs a package and edits PAM config)"
export DEBIAN_FRONTEND=noninteractive
# apt-get calls wait for the dpkg lock (another apt run, unattended-upgrades)
# instead of failing the test half-way.

deb=$(find dist -maxdepth 1 -name "libpam-totp_*.deb" 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$deb" ] || die "no dist/libpam-totp_*.deb: run scripts/build-deb.sh first"
cockpit_deb=$(find dist -maxdepth 1 -name "cockpit-totp_*.deb" 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$cockpit_deb" ] || die "no dist/cockpit-totp_*.deb: run scripts/build-deb.sh first"

need=""
command -v pamtester >/dev/null || need="$need pamtester"
command -v oathtool >/dev/null || need="$need oathtool"
if [ -n "$need" ]; then
	log "installing:$need"
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	# shellcheck disable=SC2086 # a list of package names
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq $need >/dev/null
fi

# True while dpkg knows the package in any state short of purged.
installed() {
	local s
	s=$(dpkg-query -W -f='${db:Status-Status}' "${1:-libpam-totp}" 2>/dev/null || true)
	[ -n "$s" ] && [ "$s" != not-installed ]
}

# A run that died half-way (killed, so no trap ran) may have left the
# packages behind, with a setuid totpctl; start clean, and say so.
if installed cockpit-totp || installed; then
	log "purging cockpit-totp and libpam-totp left installed before this run"
	apt-get -o DPkg::Lock::Timeout=600 purge -y -qq cockpit-totp libpam-totp >/dev/null
fi
if dpkg-statoverride --list /usr/bin/totpctl >/dev/null 2>&1; then
	log "removing a dpkg-statoverride for /usr/bin/totpctl left before this run"
	dpkg-statoverride --remove /usr/bin/totpctl >/dev/null
fi

work=$(mktemp -d /tmp/pamtotp-pkgtest.XXXXXX)
mkdir "$work/pam.d"
cp -a /etc/pam.d/common-* "$work/pam.d/"
(cd /etc/pam.d && sha256sum common-*) > "$work/common.sha256"

cleanup() {
	local rc=$?
	set +e
	rm -f "$service_file"
	if installed cockpit-totp; then
		log "cleanup: purging cockpit-totp"
		apt-get -o DPkg::Lock::Timeout=600 purge -y -qq cockpit-totp >/dev/null 2>&1
	fi
	if installed; then
		log "cleanup: purging libpam-totp"
		apt-get -o DPkg::Lock::Timeout=600 purge -y -qq libpam-totp >/dev/null 2>&1
	fi
	if ! (cd /etc/pam.d && sha256sum --quiet -c "$work/common.sha256" >/dev/null 2>&1); then
		log "cleanup: restoring /etc/pam.d/common-* from $work/pam.d"
		cp -a "$work"/pam.d/common-* /etc/pam.d/
	fi
	if [ "$created_user" = 1 ] || id "$user" >/dev/null 2>&1; then
		userdel -r "$user" >/dev/null 2>&1
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT TERM

common_unchanged() { (cd /etc/pam.d && sha256sum --quiet -c "$work/common.sha256"); }
totp_in_common_auth() { grep -Eq '^[^#]*pam_totp\.so' /etc/pam.d/common-auth; }
dir_is_private() { [ -d "$1" ] && [ "$(stat -c '%a %U:%G' "$1")" = "700 root:root" ]; }
mode_is() { [ "$(stat -c '%a %U:%G' "$2")" = "$1" ]; }

# --- upgrade from an earlier release keeps every login state ------------
# PAM_TOTP_PREVIOUS=COMMIT picks the earlier release (scripts/previous-deb.sh);
# PAM_TOTP_PREVIOUS_DEB names one built already (the Debian 13 run passes
# the host's, since its chroot has neither git nor cargo).
previous=${PAM_TOTP_PREVIOUS_DEB:-$(scripts/previous-deb.sh)} || die "cannot build the earlier release's .deb"
log "installing the earlier release: $previous"
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$previous" >/dev/null
check "the earlier release installs" installed
if ! id "$user" >/dev/null 2>&1; then
	useradd -m "$user"
	created_user=1
fi
printf 'auth required pam_totp.so\n' > "$service_file"
code_login() { # code_login CODE: a login with the module alone
	printf '%s\n' "$1" | pamtester "$service" "$user" authenticate >"$work/last.out" 2>&1
}
code_login_fails() { ! code_login "$@"; }
# The .jpg is written as the user it is for: into their home.
totpctl --json enroll "$user" --qr "$(getent passwd "$user" | cut -d: -f6)/upgrade.jpg" >"$work/last.out" 2>&1 || true
check "earlier release: totpctl enroll" test -f "/etc/pam_totp/users/$user.toml"
up_secret=$(sed -n 's/^secret = "\(.*\)"$/\1/p' "/etc/pam_totp/users/$user.toml" 2>/dev/null || true)
up_now=$(date +%s)
# Three steps in a row, all inside the window (one step either way) of the
# clock while they are used: activation a step back, the login now, the
# code after the upgrade a step ahead.
activation=$(oathtool --totp -b "$up_secret" -N "@$((up_now - 30))" |
	totpctl --json activate "$user" 2>/dev/null) || true
recovery=$(printf '%s' "$activation" | grep -oE '[0-9A-Z]{4}(-[0-9A-Z]{4}){3}' || true)
check "earlier release: enrolled and activated, with recovery codes" test "$(printf '%s\n' "$recovery" | grep -c .)" = 10
up_code=$(oathtool --totp -b "$up_secret" -N "@$up_now")
check "earlier release: a code logs in" code_login "$up_code"
used_recovery=$(printf '%s\n' "$recovery" | sed -n 1p)
check "earlier release: a recovery code logs in" code_login "$used_recovery"
check "earlier release: its state is TOML" grep -q '^last_step = ' "/var/lib/pam_totp/$user.state"
log "upgrading to $deb"
# dpkg -i: apt would skip a .deb of the version already installed.
dpkg -i "$deb" >/dev/null
up_moddir="$(pkg-config --variable=libdir pam 2>/dev/null || echo /lib/x86_64-linux-gnu)/security"
module_is_new() {
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ".$up_moddir/pam_totp.so" | cmp -s - "$up_moddir/pam_totp.so"
}
check "upgraded: the installed module is this release's" module_is_new
check "after the upgrade: the code used before is refused" code_login_fails "$up_code"
check "after the upgrade: the recovery code used before is refused" code_login_fails "$used_recovery"
check "after the upgrade: the state is converted to the slotted form" \
	bash -c "head -c 24 '/var/lib/pam_totp/$user.state' | grep -q '^#pam_totp-state-slot v1'"
check "after the upgrade: the next code works" code_login "$(oathtool --totp -b "$up_secret" -N "@$((up_now + 30))")"
check "after the upgrade: an unused recovery code works" code_login "$(printf '%s\n' "$recovery" | sed -n 2p)"
check "after the upgrade: the failures before were kept and cleared by the success" \
	bash -c "totpctl status '$user' --json | grep -q '\"failures\":0'"
totpctl reset "$user" >/dev/null 2>&1 || true
rm -f "$service_file"
apt-get -o DPkg::Lock::Timeout=600 purge -y -qq libpam-totp >/dev/null
check "purged after the upgrade test" bash -c '! dpkg-query -W -f="\${Status}" libpam-totp 2>/dev/null | grep -q installed'

# --- install ---------------------------------------------------------
log "installing $deb"
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "./$deb" >/dev/null
check "package installs" installed
check "module installed" test -f "$(pkg-config --variable=libdir pam 2>/dev/null || echo /lib/x86_64-linux-gnu)/security/pam_totp.so"
check "totpctl installed" test -x /usr/bin/totpctl
check "config.toml installed 0644 root" mode_is "644 root:root" /etc/pam_totp/config.toml
check "config.toml is a conffile" grep -qx /etc/pam_totp/config.toml /var/lib/dpkg/info/libpam-totp.conffiles
check "pam-auth-update profile installed" test -f /usr/share/pam-configs/totp
check "users dir created 0700 root" dir_is_private /etc/pam_totp/users
check "state dir created 0700 root" dir_is_private /var/lib/pam_totp
check "profile not enabled by default" common_unchanged

# --- the Cockpit page ------------------------------------------------
cockpit_files="manifest.json index.html totp.js resync.js totp.css"
cockpit_installed() {
	local f
	for f in $cockpit_files; do
		[ "$(stat -c '%a %U:%G' "/usr/share/cockpit/totp/$f" 2>/dev/null)" = "644 root:root" ] || return 1
	done
}
log "installing $cockpit_deb"
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "./$cockpit_deb" >/dev/null
check "cockpit-totp installs" installed cockpit-totp
check "cockpit-totp installs its page, 0644 root" cockpit_installed
check "cockpit-totp's page is the tree's" bash -c 'for f in '"$cockpit_files"'; do cmp -s "cockpit/$f" "/usr/share/cockpit/totp/$f" || exit 1; done'
check "cockpit-totp depends on this libpam-totp and cockpit-bridge" bash -c \
	"dpkg-query -W -f='\${Depends}' cockpit-totp | grep -q 'cockpit-bridge (>= 287)' && dpkg-query -W -f='\${Depends}' cockpit-totp | grep -q \"libpam-totp (>= \$(dpkg-query -W -f='\${Version}' libpam-totp))\""
apt-get -o DPkg::Lock::Timeout=600 remove -y -qq cockpit-totp >/dev/null
check "cockpit-totp removes cleanly" test ! -e /usr/share/cockpit/totp
check "libpam-totp stays when cockpit-totp goes" installed
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "./$cockpit_deb" >/dev/null
check "cockpit-totp installs again" cockpit_installed

# --- the autopkgtest (debian/tests), on the installed package ---------
# Run directly rather than through `autopkgtest -- null`, which would
# install the test dependencies and the package into this host by itself
# and leave them: this script already owns the install and purge cycle.
check "autopkgtest login-with-code: enroll, log in with password and code, replay refused" \
	bash -c 'debian/tests/login-with-code > "$1" 2>&1' _ "$work/last.out"
check "the autopkgtest leaves common-* as it found them" common_unchanged

# --- enable ----------------------------------------------------------
pam-auth-update --enable totp
check "pam-auth-update --enable adds pam_totp to common-auth" totp_in_common_auth

# --- test user and record ---------------------------------------------
if ! id "$user" >/dev/null 2>&1; then
	useradd -m "$user"
	created_user=1
fi
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s:%s\n' "$user" "$password" | chpasswd
secret=$(head -c 20 /dev/urandom | base32 | tr -d =)
(
	umask 077
	printf 'version = 1\nstatus = "active"\nsecret = "%s"\nalgorithm = "SHA1"\ndigits = 6\nperiod = 30\n' \
		"$secret" > "$record"
)
chown root:root "$record"
chmod 0600 "$record"
printf '@include common-auth\n' > "$service_file"

login() { # login PASSWORD CODE
	printf '%s\n%s\n' "$1" "$2" | pamtester "$service" "$user" authenticate >"$work/last.out" 2>&1
}
login_fails() { ! login "$@"; }
totpctl_status() { totpctl status "$user" >"$work/last.out" 2>&1; }

check "totpctl reads the record (status)" totpctl_status
code=$(oathtool --totp -b "$secret")
check "password + valid code is accepted" login "$password" "$code"
check "the same code again is refused (replay)" login_fails "$password" "$code"
wrong=$(printf '%06d' $(( (10#$code + 500000) % 1000000 )))
check "password + wrong code is refused" login_fails "$password" "$wrong"
check "wrong password + valid code is refused" login_fails "not-$password" "$(oathtool --totp -b "$secret")"

# --- self-service mode on the installed binary -------------------------
totpctl_mode() { stat -c '%a %U:%G' /usr/bin/totpctl; }
self_service_on() {
	totpctl self-service enable >"$work/last.out" 2>&1 &&
		[ "$(totpctl_mode)" = "4754 root:totp-users" ] &&
		dpkg-statoverride --list /usr/bin/totpctl | grep -q '^root totp-users 4754 '
}
self_service_off() {
	totpctl self-service disable >"$work/last.out" 2>&1 &&
		[ "$(totpctl_mode)" = "755 root:root" ] &&
		! dpkg-statoverride --list /usr/bin/totpctl >/dev/null
}
check "self-service is off after install (totpctl 0755 root:root)" test "$(totpctl_mode)" = "755 root:root"
check "self-service enable: dpkg-statoverride root:totp-users 4754" self_service_on
check "self-service disable: override removed, 0755 root:root again" self_service_off
# Left on, so that the purge below must remove it.
check "self-service enabled again before purge" self_service_on

# --- log lines, through a private /dev/log (scripts/with-syslog.sh) -----
# The module's outcome line and totpctl's audit lines, as a syslog daemon
# receives them. Self-service runs go through the installed setuid totpctl.
syslog="$work/syslog.log"
logged() { grep -qF -- "$1" "$syslog"; }
with_syslog() { scripts/with-syslog.sh "$syslog" "$@" >"$work/last.out" 2>&1; }
logged_login() { # logged_login PASSWORD CODE: a pamtester login under with-syslog
	with_syslog bash -c 'printf "%s\n%s\n" "$1" "$2" | pamtester "$3" "$4" authenticate' \
		_ "$1" "$2" "$service" "$user"
}
usermod -aG totp-users "$user"
uid=$(id -u "$user")

code=$(oathtool --totp -b "$secret" -N "@$(( $(date +%s) + 30 ))")
logged_login "$password" "$code" || true
check "log: a login's one outcome line" logged \
	"pam_totp($service:auth): user=$user service=$service rhost=- result=success reason=\"code accepted\""
logged_login "$password" "$code" || true
check "log: a replay's one outcome line" logged \
	"pam_totp($service:auth): user=$user service=$service rhost=- result=denied reason=\"replayed code (already used) (1 of 10 failures)\""
check "log: one outcome line per login" test "$(grep -c 'pam_totp(' "$syslog")" = 2
with_syslog totpctl unlock "$user" || true
check "log: root's unlock is audited, with the failures it cleared" logged \
	"action=unlock user=$user by=uid:0 result=done failures=1"
with_syslog setpriv --reuid="$user" --regid="$user" --init-groups totpctl status || true
check "log: a self-service status is audited" logged \
	"action=status user=$user by=uid:$uid result=done mode=self-service"
# A wrong proof with a long backoff, killed during its delay: the attempt
# was logged before the compare, and the refusal before the delay.
sed -i 's/^#\?backoff_seconds = .*/backoff_seconds = 30/; s/^#\?backoff_max_seconds = .*/backoff_max_seconds = 30/' /etc/pam_totp/config.toml
with_syslog bash -c 'printf "%s\n" "$1" | timeout -s KILL 3 setpriv --reuid="$2" --regid="$2" --init-groups totpctl disable' _ "$wrong" "$user" || true
check "log: a self-service proof is audited before it is compared" logged \
	"action=change-active user=$user by=uid:$uid result=attempt mode=self-service caller=$user"
check "log: its refusal is audited before the delay (the process was killed in it)" logged \
	"action=change-active user=$user by=uid:$uid result=refused mode=self-service caller=$user reason=proof-failed why=\"wrong code\""
check "the killed proof still counted" bash -c "totpctl status '$user' --json | grep -q '\"failures\":1'"
with_syslog totpctl reset "$user" || true
check "log: root's reset is audited" logged "action=reset user=$user by=uid:0 result=done"
# A self-service change is audited before it is written, not only after:
# the caller may kill their own setuid process between the two.
with_syslog setpriv --reuid="$user" --regid="$user" --init-groups totpctl --json enroll || true
started="action=enroll user=$user by=uid:$uid result=start mode=self-service"
check "log: a self-service enrollment is audited before it is written" logged "$started"
check "log: ... and once done, after the start line" bash -c \
	'[ "$(grep -nF -- "$1" "$3" | cut -d: -f1)" -lt "$(grep -nF -- "$2" "$3" | cut -d: -f1)" ]' _ \
	"$started" "action=enroll user=$user by=uid:$uid result=done mode=self-service" "$syslog"
totpctl reset "$user" >/dev/null 2>&1 || true

# --- the LDAP store: pam_totp.so hands such logins to pam_totp_ldap.so ---
# No directory here (tests/ldap_store.rs has a real one): a socket that does
# not exist. The outcome line must come from the LDAP module, found beside
# the installed pam_totp.so, naming the server it could not reach.
moddir="$(pkg-config --variable=libdir pam 2>/dev/null || echo /lib/x86_64-linux-gnu)/security"
check "pam_totp_ldap.so installed beside pam_totp.so" test -f "$moddir/pam_totp_ldap.so"
check "pam_totp.so carries no LDAP client" bash -c "! grep -q ldap3 '$moddir/pam_totp.so'"
check "the LDAP schema and access rules are installed" test -f /usr/share/pam_totp/ldap/pam_totp.schema -a -f /usr/share/pam_totp/ldap/acl.conf
ldap_config="$work/ldap.toml"
printf '[store]\nbackend = "ldap"\n[ldap]\nuris = ["ldapi://%%2Fnonexistent%%2Fpam_totp"]\nbase_dn = "ou=pam_totp,dc=example,dc=org"\ntimeout_ms = 500\n' >"$ldap_config"
chmod 0644 "$ldap_config"
printf 'auth required pam_totp.so config=%s\n' "$ldap_config" >"$service_file"
logged_login "$password" "$code" || true
check "log: an LDAP login through the installed modules names the unreachable server" logged \
	"result=error reason=\"LDAP server ldapi://%2Fnonexistent%2Fpam_totp: cannot connect to /nonexistent/pam_totp"

# --- disable, purge ------------------------------------------------------
rm -f "$service_file"
pam-auth-update --disable totp
check "pam-auth-update --disable removes pam_totp from common-auth" bash -c '! grep -Eq "^[^#]*pam_totp\.so" /etc/pam.d/common-auth'
apt-get -o DPkg::Lock::Timeout=600 purge -y -qq cockpit-totp libpam-totp >/dev/null
check "cockpit-totp purged" bash -c "! dpkg-query -W -f='\${Status}' cockpit-totp 2>/dev/null | grep -q installed"
check "/usr/share/cockpit/totp removed" test ! -e /usr/share/cockpit/totp
check "package purged" bash -c "! dpkg-query -W -f='\${Status}' libpam-totp 2>/dev/null | grep -q installed"
check "/etc/pam.d/common-* identical to before" common_unchanged
check "/etc/pam_totp removed on purge" test ! -e /etc/pam_totp
check "purge removes the self-service override" bash -c '! dpkg-statoverride --list /usr/bin/totpctl >/dev/null'
check "/var/lib/pam_totp removed on purge" test ! -e /var/lib/pam_totp
check "pam-auth-update profile removed" test ! -e /usr/share/pam-configs/totp

userdel -r "$user" >/dev/null 2>&1 || true
created_user=0
check "test user removed" bash -c "! id $user >/dev/null 2>&1"

printf 'package-test: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
