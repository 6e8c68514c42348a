"""Failure triage over the processor's dead letters: dead letters grouped by
cause, one shown in full, an edit sent in its place, and the audit trail of
every action taken on them.

    dead_letter(id)                            -> DeadLetterDetail, or None
    dead_letter_groups(limit=100)              -> DeadLetterGroups
    replay_dead_letter_group(group, actor)     -> {"replayed": n, "left": m}
    discard_dead_letter_group(group, actor)    -> {"discarded": n, "left": m}
    edit_dead_letter(id, payload, actor)       -> Edited
    dead_letter_audit(before=None, limit=20)   -> AuditPage

`replay_dead_letters(ids, actor)` and `discard_dead_letters(ids, actor)`
(order_contract.dead_letters) take an actor too. An actor says who acted,
never with a secret: {"name": "control", "token": "sha256:1a2b3c4d5e6f"}
(the gateway's name for the token it was given, and the first 12 hex digits
of the token's SHA-256). A caller that names none (`nameko shell`) is
recorded as {"name": "rpc", "token": None}.

A group is the parked dead letters that share a fingerprint: the error's
type, its message with ids, numbers, times and quoted values replaced, and
the failing frame without its line number. "Recent" is the last
RECENT_SECONDS (the console's chart window): a group's `recent_orders` is
how many distinct orders it holds a dead letter for that was set aside then.
"""

import re
from typing import TypedDict

from order_contract.console import CHART_SECONDS
from order_contract.dead_letters import DEAD_LETTER_ID, DeadLetter
from order_contract.errors import InvalidArgument
from order_contract.limits import is_int

# A group's id: 16 lowercase hex digits, like a dead letter's.
GROUP_ID = DEAD_LETTER_ID
# What counts as recent for a group's share of orders affected.
RECENT_SECONDS = CHART_SECONDS
DEFAULT_GROUP_LIMIT = 100
MAX_GROUP_LIMIT = 1000
DEFAULT_AUDIT_LIMIT = 20
MAX_AUDIT_LIMIT = 100
ACTOR_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
TOKEN_FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{12}$")
DIRECT_RPC = "rpc"  # the actor of a caller that named none

# Audit entries: what was done, to what, and how it ended.
REPLAY, DISCARD, EDIT = "replay", "discard", "edit"
BY_IDS, ALL, GROUP, LETTER = "ids", "all", "group", "letter"
DONE, REFUSED, FAILED = "done", "refused", "failed"


class Actor(TypedDict):
    name: str
    token: str | None


class Failure(TypedDict):
    at: str
    error_type: str
    message: str  # scrubbed
    frame: str | None


class DeadLetterDetail(DeadLetter):
    """One dead letter in full: a DeadLetter, its state and history."""

    state: str  # parked, replayed, discarded or edited
    resolved_at: str | None
    group: str
    cause: str  # the normalised message its group is named by
    content_type: str | None
    failures: list[Failure]  # oldest first
    edited_from: str | None  # the dead letter this one is an edit of
    edited_as: str | None  # the message id its edit was sent as


class DeadLetterGroup(TypedDict):
    group: str
    error_type: str
    cause: str
    frame: str | None  # `file:function`, without the line
    count: int  # parked dead letters in the group
    first_seen: str  # the first failure of any of them
    last_seen: str  # when the latest was set aside
    recent_orders: int  # distinct orders with one set aside in the last RECENT_SECONDS
    example: DeadLetter  # the latest


class DeadLetterGroups(TypedDict):
    count: int  # groups in all (more than listed past the limit)
    recent_seconds: int
    groups: list[DeadLetterGroup]  # the largest first


class Edited(TypedDict):
    edited: str  # the dead letter, now `edited`
    message_id: str  # the new message sent in its place
    payload: dict  # what was sent, as the contract builds it


class AuditEntry(TypedDict):
    id: int
    at: str
    actor: Actor
    action: str  # replay, discard, edit
    scope: str  # ids, all, group, letter
    target: str | None  # the group or the dead letter named, if one was
    dead_letter_ids: list[str]  # those acted on
    count: int
    outcome: str  # done, refused, failed
    detail: str
    change: dict | None  # an edit's {"from": body, "to": body, "message_id": id}


class AuditPage(TypedDict):
    entries: list[AuditEntry]  # newest first
    next_before: int | None  # pass as `before` for the next page; None: no more


def validate_dead_letter_id(dead_letter_id: object) -> str:
    if not isinstance(dead_letter_id, str) or not DEAD_LETTER_ID.match(dead_letter_id):
        raise InvalidArgument(
            f"a dead-letter id is 16 lowercase hex digits, got {dead_letter_id!r:.50}"
        )
    return dead_letter_id


def validate_group(group: object) -> str:
    if not isinstance(group, str) or not GROUP_ID.match(group):
        raise InvalidArgument(f"a group is 16 lowercase hex digits, got {group!r:.50}")
    return group


def validate_actor(actor: object) -> Actor:
    """An Actor; None stands for a direct RPC caller."""
    if actor is None:
        return {"name": DIRECT_RPC, "token": None}
    if (
        not isinstance(actor, dict)
        or set(actor) != {"name", "token"}
        or not isinstance(actor["name"], str)
        or not ACTOR_NAME.match(actor["name"])
        or not (
            actor["token"] is None
            or (isinstance(actor["token"], str) and TOKEN_FINGERPRINT.match(actor["token"]))
        )
    ):
        raise InvalidArgument(
            'actor must be {"name": "control", "token": "sha256:<12 hex digits>" or null}, '
            f"got {actor!r:.100}"
        )
    return {"name": actor["name"], "token": actor["token"]}


def validate_bounded(name: str, value: object, maximum: int) -> int:
    if not is_int(value) or not 1 <= value <= maximum:
        raise InvalidArgument(f"{name} must be an integer from 1 to {maximum}, got {value!r:.50}")
    return value


def validate_before(before: object) -> int | None:
    """An audit entry id to page from (exclusive), or None for the newest."""
    if before is None:
        return None
    if not is_int(before) or not 1 <= before <= 2**63 - 1:
        raise InvalidArgument(f"before must be an audit entry id, got {before!r:.50}")
    return before
