#!/bin/bash
# Run a command with a private /dev/log, and keep every line sent to it.
#
#   scripts/with-syslog.sh LOGFILE COMMAND [ARG...]
#
# As root: in a new mount namespace (unshare -m), /dev gets an overlay in
# which /dev/log is a datagram socket read by a small sink, as journald or
# rsyslog would be; the host's /dev is not changed. COMMAND and everything
# it starts (setuid programs included) log there, and each message is
# appended to LOGFILE, one a line. The exit status is COMMAND's.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 LOGFILE COMMAND [ARG...]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "with-syslog: must run as root" >&2; exit 2; }

if [ -z "${WITH_SYSLOG_INSIDE:-}" ]; then
	exec env WITH_SYSLOG_INSIDE=1 unshare -m --propagation private "$0" "$@"
fi

log=$1
shift
work=$(mktemp -d /tmp/with-syslog.XXXXXX)
mkdir "$work/upper" "$work/work"
mount -t overlay overlay -o "lowerdir=/dev,upperdir=$work/upper,workdir=$work/work" /dev
rm -f /dev/log
touch "$log"

/usr/bin/python3 - "$log" "$work/ready" <<'EOF' &
import os, socket, sys
log, ready = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
open(ready, "w").close()
with open(log, "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
EOF
sink=$!
for _ in $(seq 100); do
	[ -e "$work/ready" ] && break
	sleep 0.02
done
[ -e "$work/ready" ] || { echo "with-syslog: the sink did not start" >&2; kill "$sink"; exit 1; }

set +e
"$@"
rc=$?
set -e
# Let the sink take what is still queued, then stop it.
sleep 0.1
kill "$sink" 2>/dev/null || true
wait "$sink" 2>/dev/null || true
umount /dev
rm -rf "$work"
exit "$rc"
