#!/bin/sh
# Build the libpam-totp .deb from this work tree and lint it.
#
#   scripts/build-deb.sh
#
# Installs the build dependencies when they are missing (needs root for
# that), runs dpkg-buildpackage, collects the results in dist/ and fails
# if lintian reports any error or warning (pedantic tags included).
# Rust comes from rustup (~/.cargo/bin), not from Debian.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

log() { printf 'build-deb: %s\n' "$*"; }
die() { printf 'build-deb: error: %s\n' "$*" >&2; exit 1; }

# Build dependencies.
build_deps="debhelper devscripts lintian libpam0g-dev pkgconf python3"
missing=""
for p in $build_deps; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	[ "$(id -u)" -eq 0 ] || die "missing build dependencies:$missing (run as root or install them)"
	log "installing:$missing"
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	# shellcheck disable=SC2086 # a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing
fi

PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export PATH
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup"

# debian/copyright must name every crate linked into the binaries.
/usr/bin/python3 scripts/copyright.py --check

version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
changes="pam-totp_${version}_${arch}.changes"
parent=$(dirname "$top")

# dpkg-buildpackage writes its results next to the source tree; remove
# stale ones so that what lands in dist/ is from this build.
rm -f "$parent"/libpam-totp_"$version"_* "$parent"/libpam-totp-dbgsym_"$version"_* \
	"$parent"/cockpit-totp_"$version"_* "$parent"/pam-totp_"$version"_*

log "dpkg-buildpackage -us -uc -b ($version, $arch)"
dpkg-buildpackage -us -uc -b

# Collect every file the .changes lists, plus the .changes itself.
mkdir -p dist
# Nothing in dist/ belongs in git.
printf '*\n' > dist/.gitignore
rm -f dist/libpam-totp_* dist/libpam-totp-dbgsym_* dist/cockpit-totp_* dist/pam-totp_*
files=$(awk '/^Files:/ {f=1; next} /^[^ ]/ {f=0} f {print $5}' "$parent/$changes")
[ -n "$files" ] || die "$changes lists no files"
for f in $files; do
	mv "$parent/$f" dist/
done
mv "$parent/$changes" dist/

# The build must leave nothing behind that git would show.
dirty=$(git status --porcelain --untracked-files=all -- debian 2>/dev/null || true)
[ -z "$dirty" ] || die "the build left files in debian/ that git sees:
$dirty"

log "lintian --pedantic dist/$changes"
lintian_out=$(lintian --pedantic --display-info --tag-display-limit 0 --fail-on none "dist/$changes" 2>&1) || true
[ -z "$lintian_out" ] || printf '%s\n' "$lintian_out"
bad=$(printf '%s\n' "$lintian_out" | grep -E '^(E|W|P): ' || true)
[ -z "$bad" ] || die "lintian found errors, warnings or pedantic tags (see above)"

log "built: $(find dist -maxdepth 1 -name '*.deb' | tr '\n' ' ')"
