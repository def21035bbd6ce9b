"""bench/compare section 6: the profile of one whole-process login per module
(instructions by object under callgrind, CPU time, page faults). Bench.profile."""

import os
import re
import subprocess

from benchlib import GA_PRISTINE, SECRET, log, median, now_step, reset_in_place, totp


def callgrind_objects(path):
    """Self instructions per object (shared library or program) of a callgrind file.

    Cost lines count toward the current "ob=" object; the cost line after a
    "calls=" line is the callee's inclusive cost and is skipped. Names may be
    compressed as "(id) name" the first time and "(id)" afterwards."""
    names, per = {}, {}
    obj, skip = "?", False
    with open(path) as f:
        for line in f:
            if line.startswith(("ob=", "cob=")):
                # A callee's object ("cob=") may be the first to name an id.
                m = re.match(r"c?ob=(?:\((\d+)\))?\s*(.*)", line.rstrip("\n"))
                name = m.group(2) or names.get(m.group(1), "?")
                if m.group(1) and m.group(2):
                    names[m.group(1)] = name
                if line.startswith("ob="):
                    obj = name
            elif line.startswith("calls="):
                skip = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip:
                    skip = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    per[obj] = per.get(obj, 0) + int(parts[1])
    return per


def object_group(name):
    """The row a shared object's instructions are reported under."""
    base = os.path.basename(name)
    for prefix, group in (
        ("ld-linux", "dynamic loader (ld.so)"),
        ("libpam_wrapper", "pam_wrapper (test only)"),
        ("libpam.so", "libpam"),
        ("libc.so", "libc"),
        ("pam_totp", "the module"),
        ("libpam_totp", "the module"),
        ("pam_google_authenticator", "the module"),
        ("pam_oath", "the module"),
        ("liboath", "liboath"),
        ("libcrypto", "libcrypto"),
        ("libgcrypt", "libgcrypt"),
        ("pamtester", "pamtester"),
    ):
        if base.startswith(prefix):
            return group
    return "other libraries"


def profile(self):
    """One login per module under callgrind; instructions per object."""
    log("6. profile: one pamtester login per module under callgrind")
    env = self.pam_env()
    totp_state = self.path("totp", "state", "root.state")
    first = [self.path("totpfirst", "state", f) for f in ("root.state", "root.lock")]

    def first_login():
        for f in first:
            if os.path.exists(f):
                os.remove(f)

    cases = {
        "pam_permit": ("permit", lambda: None),
        "pam_totp": ("totp1", lambda: reset_in_place(totp_state, self.totp_pristine)),
        "pam_totp first login": ("totpfirst", first_login),
        "google-authenticator": ("ga1", lambda: reset_in_place(self.path("ga1", "root"), GA_PRISTINE.encode())),
        "pam_oath": ("oath1", lambda: reset_in_place(self.path("oath1", "users"), self.oath1_pristine.encode())),
    }
    if self.args.ab_module:
        ab_state = self.path("totpab", "state", "root.state")
        cases["pam_totp B"] = ("totpab", lambda: reset_in_place(ab_state, self.ab_state(now_step())))
    res = {}
    for name, (service, reset) in cases.items():
        out = self.path(f"callgrind.{service}")
        # Twice: the first run warms the page cache; the second is counted.
        for _ in range(2):
            reset()
            r, w = os.pipe()
            os.write(w, (totp(SECRET, now_step()) + "\n").encode())
            os.close(w)
            rc = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                 "pamtester", service, "root", "authenticate"],
                stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            ).returncode
            os.close(r)
        # Page faults are the other cost of loading a module (mapping it,
        # writing its relocated pages): counted on plain runs.
        # CPU time (user + system) is what 16 logins at a time on two
        # cores share out (section 4), whatever a login waits for
        # besides: the mean of many runs, as the kernel samples it.
        faults, cpu = [], []
        for _ in range(self.args.profile_runs):
            reset()
            usage = self.pamtester(service, "root", totp(SECRET, now_step()), env, rusage=True)[2]
            faults.append(usage.ru_minflt)
            cpu.append(usage.ru_utime + usage.ru_stime)
        res[name] = {
            "ok": rc == 0,
            "objects": callgrind_objects(out),
            "minor_faults": median(faults),
            "cpu_ms": sum(cpu) / len(cpu) * 1e3,
        }
    self.results["profile"] = res
