#!/usr/bin/env python3
"""Write the seed corpora (fuzz/seeds/<target>/) from valid and near-valid examples.

Run from anywhere: python3 fuzz/make_seeds.py. The seeds are committed; the
working corpora that libFuzzer grows (fuzz/corpus/) are not.
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")

SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RECOVERY = "ABCD-EFGH-JKMN-PQRS"  # normalises to ABCDEFGHJKMNPQRS
DOMAIN = b"pam_totp recovery code v1\0"


def recovery_entry(ident, code_norm, salt):
    digest = hashlib.sha256(DOMAIN + salt + code_norm.encode()).hexdigest()
    return f'\n[[recovery]]\nid = {ident}\nsalt = "{salt.hex()}"\nhash = "{digest}"\n'


MINIMAL = (
    'version = 1\nstatus = "active"\nsecret = "%s"\nalgorithm = "SHA1"\n'
    "digits = 6\nperiod = 30\n" % SECRET
)
FULL = (
    MINIMAL.replace("SHA1", "SHA256")
    + 'label = "alice"\nissuer = "Example Host"\ncreated_at = 1700000000\n'
    "activated_at = 1700000060\n"
    + recovery_entry(1, "ABCDEFGHJKMNPQRS", bytes(range(16)))
    + recovery_entry(2, "########12345678", bytes(range(16, 32)))
)
RECORDS = {
    "minimal": MINIMAL,
    "full": FULL,
    "pending": MINIMAL.replace("active", "pending"),
    "sha512_8_60": MINIMAL.replace("SHA1", "SHA512").replace("digits = 6", "digits = 8").replace("period = 30", "period = 60"),
    "short_secret": MINIMAL.replace(SECRET, "GEZDGNBV"),
    "bad_base32": MINIMAL.replace(SECRET, SECRET.replace("Q", "1")),
    "unknown_key": MINIMAL + 'colour = "blue"\n',
    "padded": MINIMAL.replace(SECRET, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDG==="),
    "hotp": MINIMAL.replace('status = "active"\n', 'status = "active"\ntype = "hotp"\n').replace("period = 30\n", ""),
    "hotp_with_period": MINIMAL.replace('status = "active"\n', 'status = "active"\ntype = "hotp"\n'),
}
STATES = {
    "fresh": "version = 1\n",
    "full": 'version = 1\nlast_step = 56666666\nfailures = 3\nlast_failure_at = 1700000000\n'
    'locked_until = 1700000900\nlast_success_at = 1699999000\nlast_success_rhost = "192.0.2.7"\n'
    "used_recovery = [2, 5]\n",
    "locked": "version = 1\nfailures = 10\nlocked_until = 18446744073709551615\n",
    "huge": "version = 1\nlast_step = 18446744073709551615\nlast_success_at = 18446744073709551615\n",
    "corrupt": "version = 1\nfailures = -1\n",
    "hotp": "version = 1\nhotp_next = 7\n",
    "skew": "version = 1\nlast_step = 56666666\nskew = -3\nresync_offset = 5\nresync_step = 56666671\nresync_at = 1700000000\n",
}
CONFIGS = {
    "empty": "",
    "full": """version = 1
[paths]
users_dir = "/tmp/u"
state_dir = "/tmp/s"
[policy]
unenrolled = "allow-until:2030-01-31"
require_groups = ["staff"]
exempt_groups = ["robots", "break-glass"]
[otp]
window = 2
look_ahead = 20
resync_window = 0
algorithm = "SHA256"
digits = 8
period = 60
[throttle]
max_failures = 5
lockout_seconds = 60
backoff_seconds = 0
backoff_max_seconds = 0
[enroll]
issuer = "Example"
self_service_group = "twofa"
""",
    "allow": '[policy]\nunenrolled = "allow"\n',
    "bad": "[otp]\nwindow = 11\n",
}
ARGS = {
    "none": b"",
    "all": b"config=/etc/pam_totp/config.toml\0debug\0nullok\0prompt=Code: \0try_first_pass\0grace_period=300",
    "forward": b"forward_pass\0prompt=Password and code: ",
    "use": b"use_first_pass",
    "dup": b"debug\0debug",
    "bad_number": b"grace_period=+5",
}
ANSWERS = {
    "code6": b"\x00123456",
    "code8": b"\x0112345678",
    "recovery": b"\x80" + RECOVERY.encode(),
    "scratch": b"\x8012345678",
    "spaces": b"\x00  123456\n",
    "nul": b"\x0012\x003456",
    "utf8": b"\x00\xff123456",
}


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


SLOT = 4096


def slotted(text, seq=1, torn=False):
    """The files store's state file (totp_core/src/store/slots.rs): two slots."""
    out = b""
    for n in (seq, seq + 1):
        body = text.encode()
        h = 0xCBF29CE484222325  # FNV-1a, 64 bits
        for b in b"pam_totp state slot\0" + struct.pack("<Q", n) + body:
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        digest = f"{h:016x}"
        head = f"#pam_totp-state-slot v1 seq={n:016x} len={len(body):04x} sum={digest}\n".encode()
        out += (head + body).ljust(SLOT, b"\n")
    if torn:
        out = out[: SLOT + 100]
    return out


def login_seed(user=0, answer=1, state=4, record=0, offset=0, fields=()):
    header = bytes([user, answer, state, record]) + struct.pack("<I", offset)
    parts = [f if isinstance(f, bytes) else f.encode() for f in fields]
    return header + b"\n%%\n".join(parts)


def main():
    for name, text in RECORDS.items():
        write("record", name, text)
    for name, text in STATES.items():
        write("state", name, text)
    write("state", "slotted", slotted(STATES["full"], seq=6))
    write("state", "slotted-torn", slotted(STATES["hotp"], seq=2, torn=True))
    for name, text in CONFIGS.items():
        write("config", name, text)
    for name, data in ARGS.items():
        write("module_args", name, data)
    for name, data in ANSWERS.items():
        write("answer", name, data)

    # login: record, state, answer, user, rhost, args, config extra, token
    full_state = STATES["full"]
    seeds = {
        # a valid code (header answer mode 1) over a fresh state
        "good_code": login_seed(answer=1, state=4, fields=(MINIMAL, "", "", "", "192.0.2.1", "", "")),
        # a code one step ahead, existing state, rhost unset
        "ahead": login_seed(answer=1 | (3 << 2) | 0x20, state=0, fields=(MINIMAL, full_state, "", "", "", "", "")),
        # a wrong code
        "wrong": login_seed(answer=0, state=0, fields=(MINIMAL, STATES["fresh"], "000000\n", "", "192.0.2.1", "", "")),
        # a recovery code against the full record
        "recovery": login_seed(answer=0, state=0, fields=(FULL, STATES["fresh"], RECOVERY, "", "", "", "")),
        "scratch": login_seed(answer=0, state=0, fields=(FULL, STATES["fresh"], "12345678", "", "", "", "")),
        # forward_pass: a password followed by a valid code
        "forward": login_seed(answer=2, state=4, fields=(MINIMAL, "", "hunter2", "", "", "forward_pass", "")),
        # try_first_pass with a previous token
        "try_first": login_seed(answer=1, state=4, fields=(MINIMAL, "", "", "", "", "try_first_pass", "", "123456")),
        "use_first": login_seed(answer=1, state=4, fields=(MINIMAL, "", "", "", "", "use_first_pass", "", "")),
        # grace period from the same host
        "grace": login_seed(answer=0, state=0, offset=100, fields=(
            MINIMAL, 'version = 1\nlast_success_at = 1700000050\nlast_success_rhost = "192.0.2.1"\n',
            "", "", "192.0.2.1", "grace_period=300", "")),
        # locked out
        "locked": login_seed(answer=1, state=0, fields=(MINIMAL, 'version = 1\nfailures = 10\nlocked_until = 1700009999\n', "", "", "", "", "")),
        # lockout on this failure
        "lock_now": login_seed(answer=0, state=0, fields=(MINIMAL, 'version = 1\nfailures = 2\n', "1", "", "", "", "[throttle]\nmax_failures = 3\n")),
        # replay of the last step
        "replay": login_seed(answer=1, state=0, fields=(MINIMAL, 'version = 1\nlast_step = 56666666\n', "", "", "", "", "")),
        # not enrolled, policy variants
        "unenrolled": login_seed(answer=0, record=4, fields=("", "", "", "", "", "", '[policy]\nunenrolled = "allow-until:2030-01-31"\n')),
        "pending": login_seed(answer=1, fields=(RECORDS["pending"], "", "", "", "", "nullok", "")),
        "groups": login_seed(answer=1, fields=(MINIMAL, "", "", "", "", "debug", '[policy]\nexempt_groups = ["root"]\n')),
        # bad files and names
        "symlink_state": login_seed(answer=1, state=6, fields=(MINIMAL, STATES["fresh"], "", "", "", "", "")),
        "corrupt_state": login_seed(answer=1, state=0, fields=(MINIMAL, "garbage", "", "", "", "", "")),
        "symlink_record": login_seed(answer=1, record=5, fields=(MINIMAL, "", "", "", "", "", "")),
        "raw_user": login_seed(user=6, answer=0, fields=(MINIMAL, "", "123456", "../etc/x", "", "", "")),
        "conv_error": login_seed(answer=3, fields=(MINIMAL, "", "", "", "", "", "")),
        "null_reply": login_seed(answer=0x40, fields=(MINIMAL, "", "", "", "", "", "")),
        # a config value and a record value with control characters, which the
        # log line must escape (found by this target: a raw tab/newline in the line)
        "control_chars": login_seed(answer=1, fields=(
            MINIMAL.replace('"SHA1"', '"\\tSHA1\\nresult=success"'), "", "", "", "", "",
            '[policy]\nrequire_groups = ["a\\nb"]\n')),
        # HOTP: the code for counter 0 (RFC 4226 Appendix D), then one ahead of hotp_next
        "hotp": login_seed(answer=0, state=4, fields=(RECORDS["hotp"], "", "755224", "", "", "", "")),
        "hotp_ahead": login_seed(answer=0, state=0, fields=(RECORDS["hotp"], STATES["hotp"], "162583", "", "", "", "[otp]\nlook_ahead = 3\n")),
        # TOTP with a learned skew and a pending resync candidate
        "skew": login_seed(answer=1 | (5 << 2), state=0, fields=(MINIMAL, STATES["skew"], "", "", "", "", "[otp]\nresync_window = 4\n")),
        "sha512": login_seed(answer=1, fields=(RECORDS["sha512_8_60"], "", "", "", "", "", "[otp]\nwindow = 3\n")),
    }
    for name, data in seeds.items():
        write("login", name, data)

    # ldap_entry: BER search result entries (RFC 4511 4.5.2) as a server
    # sends them, for the user "fuzz".
    for name, attrs in LDAP_ENTRIES.items():
        write("ldap_entry", name, ldap_entry("uid=fuzz,ou=pam_totp,dc=example,dc=org", attrs))


def ber(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def ldap_entry(dn, attrs):
    """SearchResultEntry: [APPLICATION 4] { objectName, attributes }."""
    parts = b"".join(
        ber(0x30, ber(0x04, k.encode()) + ber(0x31, b"".join(ber(0x04, v.encode()) for v in vs)))
        for k, vs in attrs
    )
    return ber(0x64, ber(0x04, dn.encode()) + ber(0x30, parts))


LDAP_BASE = [("objectClass", ["totpUser"]), ("uid", ["fuzz"]), ("totpRecord", [MINIMAL]), ("totpSerial", ["7"])]
LDAP_ENTRIES = {
    "fresh": LDAP_BASE,
    "state": LDAP_BASE + [
        ("totpLastStep", ["56666666"]), ("totpFailures", ["3"]), ("totpHotpNext", ["12"]),
        ("totpSkew", ["-2"]), ("totpLockedUntil", ["1700000900"]),
        ("totpLastSuccessRhost", ["192.0.2.7"]), ("totpUsedRecovery", ["2", "5"]),
    ],
    "several_values": LDAP_BASE + [("totpFailures", ["1", "2"])],
    "hidden_record": LDAP_BASE[:2],
    "other_spelling": [("objectClass", ["totpUser"]), ("uid", ["Fuzz"]), ("totpRecord", [MINIMAL])],
}


if __name__ == "__main__":
    main()
