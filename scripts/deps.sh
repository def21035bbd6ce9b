#!/bin/sh
# Install the Debian packages that pam_totp's builds, demo and tests use.
#
#   scripts/deps.sh [demo|test|browser|trixie|all]     (default: all)
#
# Only missing packages are installed; run as root or with sudo available.
set -eu

demo="libpam0g-dev libpam-wrapper pamtester oathtool pkgconf"
test="$demo zbar-tools valgrind binutils gcc openssh-server openssh-client expect libpam-google-authenticator
      libpam-oath python3-pyotp debhelper devscripts lintian libpam-runtime passwd util-linux login sudo
      slapd ldap-utils openssl python3-pskc mandoc strace"

# The Cockpit page's browser test: a real Cockpit and a real Chromium.
# openssl checks the axe-core tarball that npm fetches (browser-test.sh).
browser="cockpit-ws cockpit-bridge cockpit-system chromium chromium-driver python3-selenium
         python3-pytest sudo zbar-tools oathtool openssl slapd ldap-utils"

# The Debian 13 chroot (scripts/trixie-chroot.sh); its own packages come from trixie.
trixie="debootstrap"

case "${1:-all}" in
demo) want=$demo ;;
browser) want=$browser ;;
trixie) want=$trixie ;;
test | all) want="$test $browser $trixie" ;;
*) echo "usage: $0 [demo|test|browser|trixie|all]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null; then
	sudo="sudo"
else
	echo "deps: missing packages:$missing; run as root or install them" >&2
	exit 1
fi
echo "deps: installing:$missing"
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
# The LDAP tests run their own slapd on free ports of 127.0.0.1. Installed
# with its defaults, the package would create a database for the host's
# domain and start a slapd on port 389; told "no configuration", it only
# installs the programs. Only asked when slapd is not installed yet.
case " $missing " in
*" slapd "*) echo "slapd slapd/no_configuration boolean true" | $sudo debconf-set-selections ;;
esac
# shellcheck disable=SC2086 # a list of package names
$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing
