"""A message's failures, as it carries them from one attempt to the next.

Each time the event handler sets a message aside (a retry or the dead
letters) it adds one entry to the message's `x-failures` header (JSON): when,
the exception's type, its scrubbed message and the failing frame. A dead
letter therefore brings its whole history with it, across retries and
replays, and whoever keeps dead letters reads it from there
(`order_pipeline.dead_letters`). A message that fails for ever (no attempt
limit) must not grow without bound: the first failure and the last
MAX_FAILURES_KEPT - 1 are kept, and `x-attempt` still counts them all.

The failing frame is `file:function:line` of the innermost frame of the
traceback that is the project's own code (not the standard library, not an
installed package), the file relative to the project: where the project
last had a hand in the failure. An exception that was made but never raised
has no traceback; `located(exc)` gives it the frame that made it.
"""

import inspect
import json
import os
import sysconfig
from dataclasses import asdict, dataclass
from types import TracebackType

from order_pipeline.scrub import Scrubber
from order_pipeline.times import iso_z, utc_now

MAX_FAILURES_KEPT = 20
MAX_MESSAGE_CHARS = 500
MAX_TYPE_CHARS = 100
MAX_FRAME_CHARS = 300


@dataclass(frozen=True)
class Failure:
    at: str  # ISO 8601 UTC
    error_type: str  # the exception's class name
    message: str  # its text, scrubbed
    frame: str | None  # "processor_service/processing.py:process_order_batch:97"

    @property
    def reason(self) -> str:
        return f"{self.error_type}: {self.message}"


def failure_of(exc: BaseException, scrub: Scrubber, at=None) -> Failure:
    """The entry for one failure (`at`: now, unless given)."""
    return Failure(
        at=iso_z(at or utc_now()),
        error_type=type(exc).__name__[:MAX_TYPE_CHARS],
        message=scrub(str(exc))[:MAX_MESSAGE_CHARS],
        frame=failing_frame(exc),
    )


def located(exc: BaseException) -> BaseException:
    """`exc`, with its caller's frame as its traceback: for an exception that
    is returned as an outcome rather than raised, so that it has a failing
    frame all the same."""
    caller = inspect.currentframe().f_back
    return exc.with_traceback(TracebackType(None, caller, caller.f_lasti, caller.f_lineno))


def failing_frame(exc: BaseException) -> str | None:
    """`file:function:line` of the innermost frame of `exc`'s traceback in
    the project's code, or None."""
    found = None
    traceback = exc.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        if is_project_file(frame.f_code.co_filename):
            path = project_path(frame.f_code.co_filename, frame.f_globals.get("__name__"))
            found = f"{path}:{frame.f_code.co_name}:{traceback.tb_lineno}"
        traceback = traceback.tb_next
    return None if found is None else found[:MAX_FRAME_CHARS]


def _installed_roots():
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    return tuple(os.path.realpath(root) + os.sep for root in roots)


INSTALLED_ROOTS = _installed_roots()


def is_project_file(filename: str) -> bool:
    """Not the standard library, not an installed package, not generated code."""
    if filename.startswith("<"):
        return False
    path = os.path.realpath(filename)
    if any(part in ("site-packages", "dist-packages") for part in path.split(os.sep)):
        return False
    return not path.startswith(INSTALLED_ROOTS)


def project_path(filename: str, module: str | None) -> str:
    """`filename` from its top-level package on (`processor_service/
    processing.py` for module `processor_service.processing`), wherever the
    checkout is; its base name for a script."""
    parts = os.path.normpath(filename).split(os.sep)
    if not module or module == "__main__":
        return parts[-1]
    depth = module.count(".") + 1 + (parts[-1] == "__init__.py")
    return "/".join(parts[-depth:])


def read_failures(text) -> list[Failure]:
    """The entries of an `x-failures` header; [] for none or anything
    unreadable (a header is what a producer sent: never trusted)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        entries = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    failures = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        frame = entry.get("frame")
        failures.append(
            Failure(
                at=str(entry.get("at", ""))[:40],
                error_type=str(entry.get("error_type", ""))[:MAX_TYPE_CHARS],
                message=str(entry.get("message", ""))[:MAX_MESSAGE_CHARS],
                frame=None if frame is None else str(frame)[:MAX_FRAME_CHARS],
            )
        )
    return failures


def with_failure(failures: list[Failure], failure: Failure) -> list[Failure]:
    """`failures` and then `failure`, keeping the first and the last
    MAX_FAILURES_KEPT - 1."""
    every = [*failures, failure]
    if len(every) <= MAX_FAILURES_KEPT:
        return every
    return [every[0], *every[-(MAX_FAILURES_KEPT - 1) :]]


def encode_failures(failures: list[Failure]) -> str:
    return json.dumps([asdict(failure) for failure in failures], separators=(",", ":"))
