#!/bin/sh
# The Static-Built-Using value of libpam-totp: the source packages whose
# code is linked statically into its binaries besides the crates of
# Cargo.lock (listed in debian/copyright):
# - GCC's unwinder, libgcc_eh.a (pam_build/src/lib.rs links it, GPL-3+ with
#   the GCC Runtime Library Exception);
# - the Rust standard library, from the toolchain that builds (when that is
#   Debian's rustc; a rustup toolchain belongs to no package, and
#   debian/copyright covers its crates either way).
# Prints "src (= version), ..." as dpkg-query reports them; debian/rules
# passes it to dh_gencontrol as ${rust:Static-Built-Using}.
set -eu
files="$(${CC:-cc} -print-file-name=libgcc_eh.a)"
if sysroot="$(rustc --print sysroot 2>/dev/null)"; then
	for f in "$sysroot"/lib/rustlib/*/lib/libstd-*.rlib; do
		[ -e "$f" ] && files="$files $(readlink -f "$f")"
	done
fi
for f in $files; do
	dpkg -S "$(readlink -f "$f")" 2>/dev/null | sed 's/:.*//; s/, /\n/g' || true
done | sort -u | while read -r pkg; do
	[ -n "$pkg" ] && dpkg-query -W -f='${source:Package} (= ${source:Version})\n' "$pkg"
done | sort -u | paste -sd, - | sed 's/,/, /g'
