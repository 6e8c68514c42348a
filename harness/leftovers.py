"""Removing what a killed run of the clusters left behind.

`claim(dir)` writes the running process's id into the directory. Every
server started there writes its process group id into its own subdirectory
(`process-group`, see harness.private_server). `remove(parent, prefix)`
looks at each `prefix*` directory whose owner is no longer alive, kills
the process groups recorded under it whose processes still name that
directory on their command line or in their environment (a recycled pid
never does), and deletes it. A directory whose owner runs is another run's,
and is left alone.
"""

import os
import shutil
import signal
import time

OWNER = "owner-pid"
CLAIM_GRACE_SECONDS = 300


def claim(directory):
    with open(os.path.join(directory, OWNER), "w") as owner:
        owner.write(str(os.getpid()))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mentions(pid, directory):
    for name in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as source:
                if directory.encode() in source.read():
                    return True
        except OSError:
            pass
    return False


def _read_pid(path):
    try:
        with open(path) as source:
            return int(source.read().strip())
    except (OSError, ValueError):
        return None


def owner_of(directory):
    """The pid that claimed `directory`, or None."""
    return _read_pid(os.path.join(directory, OWNER))


def remove(parent, prefix):
    for entry in os.listdir(parent):
        directory = os.path.join(parent, entry)
        if not entry.startswith(prefix) or not os.path.isdir(directory):
            continue
        owner = _read_pid(os.path.join(directory, OWNER))
        if owner is None and time.time() - os.path.getmtime(directory) < CLAIM_GRACE_SECONDS:
            continue  # just made by a run that has not claimed it yet
        if owner is not None and alive(owner):
            continue
        for root, _dirs, files in os.walk(directory):
            if "process-group" in files:
                group = _read_pid(os.path.join(root, "process-group"))
                if group is not None and alive(group) and _mentions(group, directory):
                    try:
                        os.killpg(group, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        shutil.rmtree(directory, ignore_errors=True)
