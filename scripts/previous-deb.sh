#!/bin/sh
# Build the libpam-totp .deb of an earlier commit once, for the upgrade
# test in scripts/package-test.sh, and print its path.
#
#   scripts/previous-deb.sh [COMMIT]     (default: $PAM_TOTP_PREVIOUS or 6e5854c)
#
# The earlier tree is checked out with `git worktree add` under
# target/previous-deb/, built there with its own scripts/build-deb.sh, and
# its .deb kept in target/previous-deb/<commit>/; the next run finds it and
# builds nothing. To save the second release build most of its time, the
# earlier tree's target/ starts as a copy (reflinked where the file system
# can) of this tree's target/release: the dependencies are reused and only
# the workspace's own crates are compiled again. The work tree and its
# target/ are removed once the .deb is kept.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

log() { printf 'previous-deb: %s\n' "$*" >&2; }
die() { printf 'previous-deb: error: %s\n' "$*" >&2; exit 1; }

commit=$(git rev-parse --verify "${1:-${PAM_TOTP_PREVIOUS:-6e5854c}}^{commit}") ||
	die "unknown commit ${1:-${PAM_TOTP_PREVIOUS:-6e5854c}}"
short=$(git rev-parse --short=12 "$commit")
cache="$top/target/previous-deb/$short"
found() { find "$cache" -maxdepth 1 -name 'libpam-totp_*.deb' 2>/dev/null | sort -V | tail -n 1; }

deb=$(found)
if [ -n "$deb" ]; then
	log "cached: $deb"
	printf '%s\n' "$deb"
	exit 0
fi

src="$cache/src"
mkdir -p "$cache"
if [ -e "$src" ]; then
	git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
	git worktree prune
fi
log "git worktree add $src $short"
git worktree add --detach --quiet "$src" "$commit"
trap 'git worktree remove --force "$src" >/dev/null 2>&1 || true; git worktree prune' EXIT
if [ -d "$top/target/release" ]; then
	log "seeding its target/release from this tree's"
	mkdir -p "$src/target"
	cp -a --reflink=auto "$top/target/release" "$src/target/release"
fi
log "building the .deb of $short"
(cd "$src" && scripts/build-deb.sh) >&2
for f in "$src"/dist/libpam-totp_*.deb; do
	[ -f "$f" ] || die "the build of $short made no libpam-totp .deb"
	cp "$f" "$cache/"
done
deb=$(found)
log "kept: $deb"
printf '%s\n' "$deb"
