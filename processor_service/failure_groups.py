"""The fingerprint that puts dead letters with the same cause in one group.

Two dead letters share a cause when the same kind of error came from the
same place for the same reason, whichever order, id, amount or time it was
about: `OrderNotFound: order 42 does not exist` and `OrderNotFound: order
7 does not exist`, both from `processing.py:process_order_batch`, are one
group. So the fingerprint is a digest of:

- the error's type;
- its message (already scrubbed: order_pipeline.scrub), normalised: quoted
  values become `<q>`, times `<time>`, UUIDs and long hex ids `<id>`, other
  numbers `<n>`, and runs of white space one space. A quoted value is
  quoted text without white space (`'42'`, `"abc"`): quotes around words
  are a message quoting another (pymysql's `(2003, "Can't connect ...")`),
  which must stay readable, or every database error would be one group;
- the failing frame without its line number (`processor_service/
  processing.py:process_order_batch`): a release that moves the code a few
  lines must not split a group in two.

Plain functions, no I/O: the processor fingerprints each dead letter as it
stores it (processor_service.dead_letters.row_of).
"""

import hashlib
import re

FINGERPRINT_CHARS = 16
MAX_CAUSE_CHARS = 500

# Applied in this order: a time or a quoted value is taken whole before its
# digits would be taken one number at a time.
QUOTED = re.compile(
    r"""(?<![\w])'[^'\s]*'(?![\w])"""  # 'value', but not the apostrophe of "can't"
    r'|"[^"\s]*"'
    r"|`[^`\s]*`"
)
ISO_TIME = re.compile(
    r"\b\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?\b"
)
UUID = re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b")
# A run of at least 8 hex digits with both a digit and a letter in it (a
# dead-letter id, a trace id, a digest), or 0x... . All digits is a number:
# order 12345678 and order 42 are one cause.
HEX_ID = re.compile(
    r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b|\b0x[0-9a-fA-F]+\b"
)
# A number on its own (not the 4 of "IPv4" or the 256 of "sha256").
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")
SPACE = re.compile(r"\s+")
LINE_NUMBER = re.compile(r":\d+$")


def normalise(message: str) -> str:
    """The message with what differs from one occurrence to the next replaced."""
    text = QUOTED.sub("<q>", message)
    text = ISO_TIME.sub("<time>", text)
    text = UUID.sub("<id>", text)
    text = HEX_ID.sub("<id>", text)
    text = NUMBER.sub("<n>", text)
    return SPACE.sub(" ", text).strip()[:MAX_CAUSE_CHARS]


def frame_of(failing_frame: str | None) -> str | None:
    """`file:function` of a failing frame `file:function:line`."""
    return None if failing_frame is None else LINE_NUMBER.sub("", failing_frame)


def fingerprint(error_type: str, message: str, failing_frame: str | None) -> str:
    """16 hex digits naming the cause of a failure."""
    key = "\x1f".join([error_type, normalise(message), frame_of(failing_frame) or ""])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]
