#!/bin/bash
# Try pam_totp without installing it: a sandboxed PAM login.
#
#   make demo                 (installs what it needs, builds, runs this)
#   scripts/demo.sh           (after `cargo build --workspace`)
#   DEMO_AUTO=1 scripts/demo.sh   no questions: codes come from oathtool
#
# Nothing under /etc changes. Everything lives in a temporary directory that
# is removed on exit: a config.toml pointing the user records and login state
# there, and a PAM service directory read through pam_wrapper
# (LD_PRELOAD=libpam_wrapper.so), whose stack is pam_matrix (a stand-in for
# the password, from libpam-wrapper) followed by the freshly built
# pam_totp.so. pamtester plays the login program.
#
# Environment: DEMO_AUTO=1 (non-interactive), DEMO_QR=FILE (where to copy the
# QR code image; default ./pam_totp-demo.jpg), DEMO_BUILD_DIR (where
# libpam_totp.so and totpctl are; default ${CARGO_TARGET_DIR:-target}/debug).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
auto=${DEMO_AUTO:-0}
qr_out=${DEMO_QR:-$PWD/pam_totp-demo.jpg}
password=demo-password
service=pam_totp-demo

if [ -t 1 ] && [ "$auto" != 1 ]; then
	bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' off=$'\e[0m'
else
	bold="" green="" red="" off=""
fi
say() { printf '%s\n' "$*"; }
step() { printf '\n%s== %s ==%s\n' "$bold" "$*" "$off"; }
die() {
	printf '%sdemo: %s%s\n' "$red" "$*" "$off" >&2
	exit 1
}

# totpctl and the module's files are root's, as they are once installed.
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "run me as root"
	say "The demo needs root (totpctl is root-only for now); asking sudo."
	exec sudo -- env "DEMO_AUTO=$auto" "DEMO_QR=$qr_out" "DEMO_BUILD_DIR=${DEMO_BUILD_DIR:-}" \
		"CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-}" "$0" "$@"
fi

build=${DEMO_BUILD_DIR:-${CARGO_TARGET_DIR:-$top/target}/debug}
module=$build/libpam_totp.so
totpctl=$build/totpctl
if [ ! -f "$module" ] || [ ! -x "$totpctl" ]; then
	die "$build has no libpam_totp.so or totpctl: run 'make demo' (or cargo build --workspace) first"
fi
for tool in pamtester oathtool perl; do
	command -v "$tool" >/dev/null || die "$tool is missing: run 'scripts/deps.sh demo' (or make demo)"
done
matrix=$(find /usr/lib -path '*/pam_wrapper/pam_matrix.so' -print -quit 2>/dev/null)
[ -n "$matrix" ] || die "pam_matrix.so is missing: apt-get install libpam-wrapper"

# The account to enroll must exist: use the person who ran the demo.
user=${SUDO_USER:-$(id -un)}
getent passwd "$user" >/dev/null || user=$(id -un)

tmp=$(mktemp -d /tmp/pam_totp-demo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -m 700 "$tmp/users" "$tmp/state"
# totpctl writes the .jpg with the enrolled user's own rights: give them a
# directory (and a way into $tmp, whose other contents stay private).
chmod 711 "$tmp"
install -d -m 700 -o "$user" -g "$(id -g "$user")" "$tmp/qr"
mkdir -m 755 "$tmp/pam.d"
cat >"$tmp/config.toml" <<EOF
[paths]
users_dir = "$tmp/users"
state_dir = "$tmp/state"
EOF
printf '%s:%s:%s\n' "$user" "$password" "$service" >"$tmp/passdb"
chmod 600 "$tmp/passdb"
cat >"$tmp/pam.d/$service" <<EOF
auth  required                                     $matrix passdb=$tmp/passdb
auth  [success=ok ignore=ignore default=die]       $module config=$tmp/config.toml
EOF
echo "auth required pam_deny.so" >"$tmp/pam.d/other"

say "${bold}pam_totp demo${off}: two-factor login (password + code) in a sandbox."
say "Nothing under /etc changes: the config, the user record and the PAM stack"
say "live in $tmp, which is removed when the demo ends."

# --- 1. Enroll -------------------------------------------------------------
step "1/3 Enroll '$user'"
say "totpctl creates a secret for '$user', prints it as a QR code and saves it as a .jpg."
"$totpctl" --config "$tmp/config.toml" enroll "$user" --issuer "pam_totp demo" \
	--qr "$tmp/qr/qr.jpg" </dev/null >"$tmp/enroll.out" 2>&1 ||
	{ cat "$tmp/enroll.out"; die "totpctl enroll failed"; }
# Its closing lines name the real paths and commands; the demo says its own.
sed -e '/^The QR code is saved in/d' -e '/^The enrollment is pending/d' "$tmp/enroll.out" |
	cat -s
secret=$(sed -n 's/.*[?&]secret=\([A-Z2-7]*\).*/\1/p' "$tmp/enroll.out" | head -n 1)
[ -n "$secret" ] || die "no secret in totpctl's output"
cp "$tmp/qr/qr.jpg" "$qr_out"
chmod 600 "$qr_out"
if [ -n "${SUDO_USER:-}" ] && [ "$user" = "$SUDO_USER" ]; then
	chown "$SUDO_USER" "$qr_out" 2>/dev/null || true
fi
say "The QR code image is also in ${bold}$qr_out${off} (a throwaway demo secret)."

# --- 2. Activate -----------------------------------------------------------
step "2/3 Activate"
now_code() { oathtool --totp -b "$1" "${@:2}"; }
activated=0
for attempt in 1 2 3; do
	if [ "$auto" = 1 ]; then
		code=$(now_code "$secret")
		say "DEMO_AUTO: oathtool gives $code"
	else
		if [ "$attempt" = 1 ]; then
			say "Scan the QR code with an authenticator app (Google Authenticator, Aegis,"
			say "FreeOTP, ...), then type the 6-digit code it shows."
			say "No phone? This computes the same codes:  oathtool --totp -b $secret"
		fi
		read -r -p "Code (or just Enter to let the demo run oathtool): " code || code=""
		if [ -z "$code" ]; then
			code=$(now_code "$secret")
			say "oathtool --totp -b $secret  ->  $code"
		fi
	fi
	if printf '%s\n' "$code" | "$totpctl" --config "$tmp/config.toml" activate "$user" >"$tmp/activate.out" 2>&1; then
		activated=1
		say "${green}$(head -n 1 "$tmp/activate.out")${off}"
		say "(totpctl also printed 10 one-time recovery codes; for this throwaway secret they don't matter.)"
		break
	fi
	sed 's/^/  /' "$tmp/activate.out"
	[ "$auto" = 1 ] && break
	say "That code was not accepted; try again with the code the app shows now."
done
[ "$activated" = 1 ] || die "the enrollment was not activated"

# --- 3. Log in --------------------------------------------------------------
# pamtester under pam_wrapper. pam_wrapper writes its debug lines, among them
# the module's syslog line, to stderr, where the prompts also go: keep all of
# it in a file and show everything but pam_wrapper's lines (perl, because the
# prompts end without a newline and a line filter would hold them back). A
# hidden answer echoes no newline, so one goes before whatever comes next.
# shellcheck disable=SC2016 # perl code, expanded by perl
show_prompts='
	$| = 1;
	open(my $log, ">>", $ARGV[0]) or die "$ARGV[0]: $!";
	my ($buf, $open) = ("", 0);
	sub show { my $s = shift; print "\n" if $open; print $s; $open = $s !~ /\n\z/; }
	while (sysread(STDIN, my $chunk, 4096)) {
		print $log $chunk;
		$buf .= $chunk;
		while ($buf =~ s/^(.*?\n)//) {
			my $line = $1;
			# A prompt and a pam_wrapper line can share a line: keep the prompt.
			$line = $1 if $line =~ /^(.*?)PWRAP_[A-Z]+\[/s;
			show($line) unless $line eq "" || $line eq "\n";
		}
		# Show a partial line (a prompt) at once, but hold back anything from
		# "PWRAP_" on, or a trailing piece that could be its start.
		my $cut = index($buf, "PWRAP_");
		if ($cut < 0) {
			for my $k (reverse 1 .. 5) {
				if (length($buf) >= $k && substr($buf, -$k) eq substr("PWRAP_", 0, $k)) {
					$cut = length($buf) - $k;
					last;
				}
			}
		}
		if ($cut < 0) {
			show($buf);
			$buf = "";
		} elsif ($cut > 0) {
			show(substr($buf, 0, $cut));
			$buf = substr($buf, $cut);
		}
	}
	show($buf) unless $buf eq "" || $buf =~ /^PWRAP_/;
	print "\n" if $open;
'
pamtester_wrapped() {
	env PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$tmp/pam.d" PAM_WRAPPER_DEBUGLEVEL=2 \
		LD_PRELOAD=libpam_wrapper.so pamtester "$service" "$user" authenticate
}
# Run one login; $1 is what to type (auto mode) or empty (the terminal).
login() {
	local input=$1 log=$tmp/login.$RANDOM.log rc line result reason
	: >"$log"
	set +e
	if [ "$auto" = 1 ]; then
		printf '%s\n%s\n' "$password" "$input" | pamtester_wrapped 2>&1 | perl -e "$show_prompts" "$log"
		rc=${PIPESTATUS[1]}
	else
		pamtester_wrapped 2>&1 | perl -e "$show_prompts" "$log"
		rc=${PIPESTATUS[0]}
	fi
	set -e
	line=$(sed -n 's/.*SYSLOG([0-9]*): \(user=.* result=.*\)$/\1/p' "$log" | tail -n 1)
	result=$(printf '%s' "$line" | sed -n 's/.* result=\([a-z]*\) .*/\1/p')
	reason=$(printf '%s' "$line" | sed -n 's/.* reason="\(.*\)"$/\1/p')
	if [ "$rc" = 0 ]; then
		say "${green}RESULT: login succeeded${off} (pam_totp: $reason)"
	elif [ -z "$line" ]; then
		say "${red}RESULT: login refused${off} before pam_totp ran (pamtester exit $rc)"
	elif [ "$result" = success ] || [ "$result" = ignored ]; then
		say "${red}RESULT: login refused${off}: the password was wrong (it is $password); pam_totp said: $reason"
	else
		say "${red}RESULT: login refused${off}: $reason"
	fi
	say "  pam_totp's log line: ${line:-(none)}"
	return "$rc"
}

step "3/3 Log in"
say "pamtester now logs '$user' in through the sandboxed PAM stack, as sshd or login would:"
say "first the password (it is ${bold}$password${off}), then the verification code."
if [ "$auto" = 1 ]; then
	# Activation used up the current code (each code works once), and the
	# module accepts the next step early (window of +-1 step): use that one.
	code=$(now_code "$secret" --now "+30 seconds")
	say "DEMO_AUTO: the next code, from oathtool: $code"
else
	wait_s=$((30 - $(date +%s) % 30))
	say "Use a ${bold}new${off} code: each code works once, and activation used the current one"
	say "(the app shows the next one in about $wait_s s; no phone: oathtool --totp -b $secret)."
	code=""
fi
first=0
login "$code" || first=$?

say ""
say "Replay protection: the same code a second time is refused, even within its 30 s."
again=y
if [ "$auto" != 1 ]; then
	read -r -p "Try a second login with the same code? [Y/n] " again || again=n
fi
second=skipped
case "$again" in
[nN]*) ;;
*)
	second=0
	login "$code" || second=$?
	;;
esac

step "Done"
say "The sandbox $tmp is removed now; nothing under /etc was touched."
say "To install for real: make deb, then see the README (Install)."
if [ "$auto" = 1 ]; then
	# For tests: the first login must pass and the replay must be refused.
	if [ "$first" != 0 ] || [ "$second" = 0 ] || [ "$second" = skipped ]; then
		die "DEMO_AUTO: expected success then a refused replay (got $first, $second)"
	fi
	say "DEMO_AUTO: OK"
fi
