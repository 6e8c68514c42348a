"""What code an instance runs: the package's version (the one place it is
written; pyproject.toml reads it from here) and the git commit, when known."""

import functools
import os
import subprocess

VERSION = "0.1.0"

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIT_TIMEOUT_SECONDS = 2


@functools.cache  # a process runs one checkout
def git_commit(checkout: str = CHECKOUT) -> str | None:
    """The commit checked out where the code runs from (abbreviated to 12
    hex digits), or None: not a git checkout (a container image holds no
    .git), or git missing or failing."""
    try:
        answer = subprocess.run(
            ["git", "-C", checkout, "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = answer.stdout.strip()
    if answer.returncode != 0 or not commit:
        return None
    return commit
