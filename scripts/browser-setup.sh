# shellcheck shell=bash disable=SC2154 # top and sys_root are the caller's
# What the browser tests (tests/browser) need, whichever Cockpit they drive:
# sourced by scripts/browser-test.sh (Debian 12's Cockpit on this machine)
# and scripts/trixie-test.sh (Debian 13's Cockpit in its chroot), so that
# both set up the same things the same way.
#
# The caller defines, before calling these functions:
#   top       this source tree
#   sys_root  the root of the system that cockpit-ws runs in, as seen from
#             here: "" for this machine, the chroot's directory otherwise
#   sys       a function that runs a command in that system
#   die       a function that prints an error and exits
# and has installed dist/*.deb in that system.

# The test users: alice and bob may use self-service; carol is an
# administrator (sudo); dave is neither.
browser_users="pamtotp-cp-alice pamtotp-cp-bob pamtotp-cp-carol pamtotp-cp-dave"

# axe-core, the accessibility checker the tests run on every state of the
# page: fetched from the npm registry at this exact version and checked
# against the integrity the registry published for it, kept in target/ for
# the next run. Test-only: nothing of it is packaged. Exports AXE_JS.
browser_axe() {
	local version=4.14.1
	local integrity="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
	local dir="$top/target/npm/axe-core-$version" tarball got
	if [ ! -s "$dir/axe.min.js" ]; then
		# npm may come with a nodejs from elsewhere; Debian has it apart.
		if ! command -v npm >/dev/null; then
			apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends npm >/dev/null
		fi
		mkdir -p "$dir"
		tarball=$(cd "$dir" && npm pack --silent "axe-core@$version" | tail -n 1)
		got="sha512-$(openssl dgst -sha512 -binary "$dir/$tarball" | base64 -w0)"
		[ "$got" = "$integrity" ] || die "axe-core $version: integrity $got, expected $integrity"
		tar -xzf "$dir/$tarball" -C "$dir" --strip-components=1 package/axe.min.js package/LICENSE
		rm -f "$dir/$tarball"
	fi
	export AXE_JS="$dir/axe.min.js"
}

# The settings, users and PAM line of the tests, in the system: users who
# have not enrolled log in with the password (the story starts there),
# three failures lock for 15 min, no backoff so that the tests measure
# results rather than delays, and a window of three steps so that one
# step's codes cover activation, two logins and a proof; self-service on;
# the code for Cockpit only (the line README.md gives for
# /etc/pam.d/cockpit, after common-auth). The caller keeps what it must
# put back.
browser_setup() {
	local u pam="$sys_root/etc/pam.d/cockpit"
	cat >"$sys_root/etc/pam_totp/config.toml" <<-'EOF'
		[policy]
		unenrolled = "allow"
		[otp]
		window = 3
		[throttle]
		max_failures = 3
		backoff_seconds = 0
		backoff_max_seconds = 0
	EOF
	sys totpctl self-service enable >/dev/null
	for u in $browser_users; do
		sys useradd -m -s /bin/bash "$u"
		printf '%s:%s\n' "$u" "$u-Pw-1" | sys chpasswd
	done
	sys usermod -aG totp-users pamtotp-cp-alice
	sys usermod -aG totp-users pamtotp-cp-bob
	sys usermod -aG sudo pamtotp-cp-carol
	sed -i '/^auth[[:space:]]\+substack[[:space:]]\+common-auth/a auth       required     pam_totp.so' "$pam"
	grep -q '^auth[[:space:]]\+required[[:space:]]\+pam_totp.so' "$pam" || die "could not add pam_totp to $pam"
}

# pytest on tests/browser against the cockpit-ws at URL, screenshots in
# SHOTS (emptied first): browser_pytest URL SHOTS [PYTEST-ARG...]. Arguments
# that name files or tests (tests/browser/test_panel.py::test_x) run those
# instead of the whole directory; others (-k, -x) are added to it.
browser_pytest() {
	local url=$1 shots=$2 a
	shift 2
	local where=(tests/browser)
	for a in "$@"; do
		case $a in
		-*) ;;
		*) if [ -e "${a%%::*}" ]; then where=(); fi ;;
		esac
	done
	mkdir -p "$shots"
	rm -f "$shots"/*.png
	PANEL_URL="$url" SCREENSHOTS="$shots" COCKPIT_ROOT="$sys_root" \
		/usr/bin/python3 -m pytest -p no:cacheprovider -q "${where[@]}" "$@"
}
