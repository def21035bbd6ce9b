"""What bench/compare's sections share: the test key and its codes, small
file and statistics helpers, and pam_totp's state file format."""

import base64
import hashlib
import hmac
import os
import re
import struct
import sys
import time

SECRET = b"12345678901234567890"  # RFC 6238's test key: every module gets the same
SECRET_B32 = base64.b32encode(SECRET).decode()
SECRET_HEX = SECRET.hex()
STEP = 30


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def totp(key, step, digits=6):
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def now_step():
    return int(time.time()) // STEP


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def reset_in_place(path, data):
    """Rewrite `path` in place: pwrite from 0, then cut to length (see the module doc)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(values):
    return pct(values, 50)


GA_PRISTINE = f'{SECRET_B32}\n" RATE_LIMIT 100 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n'
# The state of an earlier release's module (bare TOML), for an A/B module.
TOTP_RESET = "version = 1\nlast_step = {prev}\nfailures = 0\n"

# pam_totp's state file: two 4 KiB slots, each a header line (sequence
# number, body length, checksum), the state as TOML, '\n' padding. See
# totp_core/src/store/slots.rs; the newest slot with a valid checksum counts.
SLOT = 4096
SLOT_MAGIC = b"#pam_totp-state-slot v1 "


def slot_sum(seq, body):
    """FNV-1a, 64 bits, over the domain, the sequence number and the body."""
    h = 0xCBF29CE484222325
    for b in b"pam_totp state slot\0" + struct.pack("<Q", seq) + body:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def totp_state(body, seq=1):
    """A whole state file holding `body` (TOML) in both slots."""
    out = b""
    for n in (seq, seq + 1):
        b = body.encode()
        head = SLOT_MAGIC + f"seq={n:016x} len={len(b):04x} sum={slot_sum(n, b)}\n".encode()
        out += (head + b).ljust(SLOT, b"\n")
    return out


def totp_body(data, verify=True):
    """The newest valid slot's TOML of a state file ('' if none). Without
    verify, the checksum is not computed (FNV-1a byte by byte in Python is
    the dearest part of a check; the final checks verify it)."""
    best = (-1, "")
    for i in (0, 1):
        slot = data[i * SLOT : (i + 1) * SLOT]
        m = re.match(rb"#pam_totp-state-slot v1 seq=([0-9a-f]{16}) len=([0-9a-f]{4}) sum=([0-9a-f]{16})\n", slot)
        if not m:
            continue
        seq, n = int(m.group(1), 16), int(m.group(2), 16)
        body = slot[m.end() : m.end() + n]
        if len(body) == n and seq > best[0] and (not verify or slot_sum(seq, body) == m.group(3).decode()):
            best = (seq, body.decode())
    return best[1]
