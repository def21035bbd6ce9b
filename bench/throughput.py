"""bench/compare section 4: throughput, 1,000 logins over 100 users, 16 at
a time, every state checked. Bench.throughput and Bench.throughput_run."""

import base64
import multiprocessing
import os
import re
import resource
import time

from benchlib import SLOT_MAGIC, log, median, now_step, pct, totp, totp_body, write


def throughput(self):
    """1,000 logins over 100 users, 16 pamtester processes at a time.

    How every login is valid and every update checked: pam_totp's config
    sets [otp] window = 10 (google-authenticator: WINDOW_SIZE 21, the same
    +-10 steps), so a code for any step within 10 of now is accepted, once,
    and (pam_totp) only if its step is newer than the user's last_step.
    User u's k-th login (k = 0..9) answers with the code for step T0 + 1 + k,
    T0 being the step at the start; these steps stay inside the window for
    at least 5 minutes. 16 driver processes share the users out; each keeps
    one login in flight, going round its users (login k of each, then
    login k + 1), so no user ever has two logins in flight and each login
    is expected to succeed. (Threads of this one process, one per user and
    16 at a time, kept only 5 to 8 logins in flight on average: they took
    turns at Python's global lock, and the driver set the rate.) Before login k the driver reads the
    user's state and requires that it shows step T0 + k as the newest used
    (the previous update is there and nothing clobbered it); after it, T0 +
    k + 1. At the end every user's state must show T0 + 10 (pam_totp: also
    failures = 0 and a last_success_at; google-authenticator: all ten steps
    in DISALLOW_REUSE), no stray files may be left, and a replay of each
    user's last code must be refused.

    pamtester runs without pam_wrapper here: pam_wrapper picks its
    per-process copy of the service dir among 62 names /tmp/pam.X with
    lstat-then-mkdir and deletes "stale" ones by pid, which races when 16
    start at once (about 1% of pam_start calls failed that way, before any
    module ran). Instead the sandbox's service dir is bind-mounted on
    /etc/pam.d inside this private mount namespace only; the host's
    /etc/pam.d is neither changed nor seen. Users come from nss_wrapper.
    """
    users, per_user = self.args.tp_users, self.args.tp_logins // self.args.tp_users
    base = self.totp_sandbox("tp", "tp", users=0, extra="[otp]\nwindow = 10\n")
    os.remove(os.path.join(base, "users", "root.toml"))
    # --ab-module: the same users again, in a sandbox of their own.
    bases = {"tp": base}
    if self.args.ab_module:
        bases["tpab"] = self.totp_sandbox("tpab-tp", "tpab", users=0, extra="[otp]\nwindow = 10\n",
                                          module=os.path.abspath(self.args.ab_module))
        os.remove(os.path.join(bases["tpab"], "users", "root.toml"))
    ga_dir = self.path("tpga")
    os.makedirs(ga_dir, mode=0o700)
    self.ga_service("tpga", ga_dir)
    keys = {}
    passwd = ["root:x:0:0:root:/root:/bin/bash\n"]
    for i in range(users):
        u = f"tp{i:03d}"
        keys[u] = os.urandom(20)
        b32 = base64.b32encode(keys[u]).decode()
        for b in bases.values():
            write(
                os.path.join(b, "users", u + ".toml"),
                f'version = 1\nstatus = "active"\nsecret = "{b32}"\n'
                'algorithm = "SHA1"\ndigits = 6\nperiod = 30\n',
            )
        write(os.path.join(ga_dir, u), f'{b32}\n" RATE_LIMIT 100 30\n" WINDOW_SIZE 21\n" DISALLOW_REUSE\n" TOTP_AUTH\n')
        passwd.append(f"{u}:x:{20000 + i}:{20000 + i}:bench:/nonexistent:/usr/sbin/nologin\n")
    write(os.path.join(base, "passwd"), "".join(passwd), 0o644)
    write(os.path.join(base, "group"), "root:x:0:\n", 0o644)
    self.mount("--bind", self.pamd, "/etc/pam.d")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LD_PRELOAD": "libnss_wrapper.so",
        "NSS_WRAPPER_PASSWD": os.path.join(base, "passwd"),
        "NSS_WRAPPER_GROUP": os.path.join(base, "group"),
    }

    def totp_checks(state_dir):
        """newest() and final() of a pam_totp state directory."""

        def read_state(u, verify=False):
            try:
                with open(os.path.join(state_dir, u + ".state"), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                return ""
            # Builds before the two-slot state (--ab-state toml) write bare TOML.
            return totp_body(data, verify) if data.startswith(SLOT_MAGIC) else data.decode()

        def newest(u):
            m = re.search(r"^last_step = (\d+)$", read_state(u), re.M)
            return int(m.group(1)) if m else None

        def final(u, t0):
            text = read_state(u, verify=True)
            return bool(
                re.search(rf"^last_step = {t0 + per_user}$", text, re.M)
                and re.search(r"^failures = 0$", text, re.M)
                and re.search(r"^last_success_at = \d+$", text, re.M)
            )

        return newest, final

    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def ga_used(u):
        m = re.search(r'^" DISALLOW_REUSE(.*)$', read(os.path.join(ga_dir, u)), re.M)
        return [int(x) for x in m.group(1).split()] if m else []

    def ga_newest(u):
        used = ga_used(u)
        return max(used) if used else None

    def ga_final(u, t0):
        return sorted(ga_used(u)) == list(range(t0 + 1, t0 + per_user + 1))

    totp_files = {f"{u}{sfx}" for u in keys for sfx in (".state", ".lock")}
    res = {}
    runs = []
    for name, service in [("pam_totp", "tp"), ("pam_totp B", "tpab"), ("google-authenticator", "tpga")]:
        if service == "tpga":
            if self.args.tp_peer:
                runs.append((name, service, ga_newest, ga_final, ga_dir, set(keys)))
        elif service in bases:
            directory = os.path.join(bases[service], "state")
            (newest, final), files = totp_checks(directory), set(totp_files)
            if self.args.ab_state == "toml" and service == "tpab":
                # Those builds keep each user's temporary state file.
                files |= {f".{u}.state.tmp" for u in keys}
            runs.append((name, service, newest, final, directory, files))

    def fresh(service, directory):
        """Every user as before their first login of the round."""
        for f in os.listdir(directory):
            os.remove(os.path.join(directory, f))
        if service == "tpga":
            for u, key in keys.items():
                b32 = base64.b32encode(key).decode()
                write(os.path.join(ga_dir, u), f'{b32}\n" RATE_LIMIT 100 30\n" WINDOW_SIZE 21\n" DISALLOW_REUSE\n" TOTP_AUTH\n')

    # Rounds, the modules in a rotating order, so that a drift of the
    # machine (the page cache, the disk) does not always hit the same one;
    # each module's round with the median rate is reported.
    rounds = {name: [] for name, *_ in runs}
    for r in range(self.args.tp_rounds):
        for name, service, newest, final, directory, files in runs[r % len(runs):] + runs[: r % len(runs)]:
            fresh(service, directory)
            log(f"4. throughput, round {r + 1}, {name}: {users * per_user} logins over {users} users, "
                f"{self.args.tp_parallel} at a time")
            rounds[name].append(self.throughput_run(service, keys, per_user, env, newest, final, directory, files))
    for name, got in rounds.items():
        got.sort(key=lambda g: g["logins_per_s"])
        res[name] = dict(got[len(got) // 2], rounds=[g["logins_per_s"] for g in got],
                         error_count=sum(g["error_count"] for g in got),
                         errors=[e for g in got for e in g["errors"]][:10])
    self.umount("/etc/pam.d")
    self.results["throughput"] = res

def throughput_run(self, service, keys, per_user, env, newest, final, directory, files):
    t0_step = now_step()

    def worker(mine, results):
        """One driver process: one login in flight, its users in turn
        (login k of each, then login k + 1); what it saw goes back on
        `results`."""
        errors, lat, cpu, ok_count = [], [], 0.0, 0
        for k in range(per_user):
            for u in mine:
                step = t0_step + 1 + k
                before = newest(u)
                if before != (step - 1 if k else None):
                    errors.append(f"{u} login {k}: newest step {before} before, expected {step - 1}")
                ok, ns, usage = self.pamtester(service, u, totp(keys[u], step), env, rusage=True)
                after = newest(u)
                lat.append(ns)
                cpu += usage.ru_utime + usage.ru_stime
                ok_count += ok
                if not ok:
                    errors.append(f"{u} login {k}: refused")
                if after != step:
                    errors.append(f"{u} login {k}: newest step {after} after, expected {step}")
        own = resource.getrusage(resource.RUSAGE_SELF)
        results.put({"errors": errors, "lat": lat, "cpu": cpu, "ok": ok_count,
                     "driver_cpu": own.ru_utime + own.ru_stime})

    # Driver processes, not threads: 16 threads of one Python process
    # take turns at its lock (the GIL) to start and check logins, and
    # kept only 4 to 8 logins in flight on average; the driver, not the
    # module, set the rate, and the faster module lost.
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    users, n = list(keys), self.args.tp_parallel
    procs = [ctx.Process(target=worker, args=(users[w::n], results)) for w in range(n)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    got = [results.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    errors = [e for g in got for e in g["errors"]]
    lat = [x for g in got for x in g["lat"]]
    succeeded = [sum(g["ok"] for g in got)]
    cpu = [sum(g["cpu"] for g in got)]
    driver_cpu = sum(g["driver_cpu"] for g in got)
    bad_states = [u for u in keys if not final(u, t0_step)]
    errors += [f"{u}: wrong final state" for u in bad_states]
    stray = sorted(set(os.listdir(directory)) - files)
    if stray:
        errors.append(f"unexpected files: {stray[:5]}")
    replays_admitted = sum(self.pamtester(service, u, totp(keys[u], t0_step + per_user), env)[0] for u in keys)
    if replays_admitted:
        errors.append(f"{replays_admitted} replays admitted")
    return {
        "logins": len(keys) * per_user,
        "succeeded": succeeded[0],
        "wall_s": wall,
        "logins_per_s": len(keys) * per_user / wall,
        "latency_median_ms": median(lat) / 1e6,
        "latency_p95_ms": pct(lat, 95) / 1e6,
        "cpu_ms_per_login": cpu[0] / (len(keys) * per_user) * 1e3,
        # Little's law: logins in flight on average.
        "mean_in_flight": len(keys) * per_user / wall * (sum(lat) / len(lat) / 1e9),
        "driver_cpu_ms_per_login": driver_cpu / (len(keys) * per_user) * 1e3,
        "states_checked": len(keys),
        "bad_states": len(bad_states),
        "stray_files": len(stray),
        "replays_admitted": replays_admitted,
        "errors": errors[:10],
        "error_count": len(errors),
    }
