"""Dead letters as the processor reports them, and the limits of the calls
that list, replay and discard them.

    dead_letters(limit=100)       -> [DeadLetter, ...], oldest first
    replay_dead_letters(ids=None) -> {"replayed": n}    (None: all)
    discard_dead_letters(ids)     -> {"discarded": n}

A DeadLetter is a dict: {"id", "order_id" (int or None), "body", "reason",
"dead_lettered_at" (ISO 8601 UTC), "attempts", "error_type", "failing_frame"
(`file:function:line` or None), "trace_id" (32 hex digits or None),
"first_failed_at" and "last_failed_at" (ISO 8601 UTC or None)}. Its id names
one stay among the dead letters: a replayed message that fails again comes
back under a new id. Its texts are scrubbed of URLs, credentials, host
names, IP addresses and SQL where they were recorded.
"""

import re
from typing import TypedDict

from order_contract.errors import InvalidArgument
from order_contract.limits import is_int


class DeadLetter(TypedDict):
    id: str
    order_id: int | None
    body: str
    reason: str
    dead_lettered_at: str
    attempts: int
    error_type: str
    failing_frame: str | None
    trace_id: str | None
    first_failed_at: str | None
    last_failed_at: str | None


DEAD_LETTER_FIELDS = tuple(DeadLetter.__annotations__)
# What dead_letters() lists when no limit is given (the console's list).
DEFAULT_DEAD_LETTER_LIMIT = 100
# One call lists, replays or discards at most this many dead letters, the
# oldest first: a call holds them all locked while it works.
MAX_DEAD_LETTERS_PER_CALL = 1000
# A body is reported up to this many characters.
MAX_BODY_CHARS = 1000
DEAD_LETTER_ID = re.compile(r"^[0-9a-f]{16}$")


def validate_limit(limit: object) -> int:
    if not is_int(limit) or not 1 <= limit <= MAX_DEAD_LETTERS_PER_CALL:
        raise InvalidArgument(
            f"limit must be an integer from 1 to {MAX_DEAD_LETTERS_PER_CALL}, got {limit!r:.50}"
        )
    return limit


def validate_dead_letter_ids(ids: object) -> list[str]:
    """A list of dead-letter ids (16 lowercase hex digits), or InvalidArgument."""
    if not isinstance(ids, (list, tuple)):
        raise InvalidArgument(f"ids must be a list of dead-letter ids, got {ids!r:.100}")
    if len(ids) > MAX_DEAD_LETTERS_PER_CALL:
        raise InvalidArgument(f"at most {MAX_DEAD_LETTERS_PER_CALL} ids per call")
    for item in ids:
        if not isinstance(item, str) or not DEAD_LETTER_ID.match(item):
            raise InvalidArgument(f"a dead-letter id is 16 lowercase hex digits, got {item!r:.50}")
    return list(ids)
