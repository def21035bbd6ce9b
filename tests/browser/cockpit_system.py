"""The system whose cockpit-ws the browser tests drive: this machine
(scripts/browser-test.sh), or the Debian 13 chroot of
scripts/trixie-test.sh, whose root directory COCKPIT_ROOT names as seen
from here. What the tests run as root (totpctl, useradd, slapd) runs
there, and the files they write (/etc/pam.d/cockpit, the config, a slapd's
directory) are that system's.
"""

import os
import subprocess
import tempfile

ROOT = os.environ.get("COCKPIT_ROOT", "").rstrip("/")


def command(*args):
    """The argv that runs `args` in the system."""
    return ["chroot", ROOT, *args] if ROOT else list(args)


def run(*args, input=None, check=False, timeout=60):
    """A command in the system, its output as text."""
    return subprocess.run(command(*args), input=input, capture_output=True, text=True,
                          check=check, timeout=timeout)


def path(name):
    """The system's absolute path `name`, as seen from here."""
    assert name.startswith("/"), name
    return ROOT + name


def inside(here):
    """A path under the system's root, seen from here, as the system sees it."""
    if not ROOT:
        return here
    assert here.startswith(ROOT + "/"), here
    return here[len(ROOT):]


def mkdtemp(prefix):
    """A new directory in the system's /tmp; its path as seen from here."""
    return tempfile.mkdtemp(prefix=prefix, dir=path("/tmp") if ROOT else None)
