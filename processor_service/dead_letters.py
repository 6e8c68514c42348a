"""The processor's dead letters, kept in its `dead_letters` table, as plain
functions (no nameko): storing what the dead-letter queue brings
(`order_pipeline.dead_letters.DeadLetterIntake` calls `store_records`),
listing, grouping by cause, replaying and discarding (named ones, the
oldest, or a whole group), each action recorded in the audit trail
(processor_service.audit) in the transaction that takes it.

Each row is `parked` until it is replayed, discarded or edited
(processor_service.dead_letter_edits), which happens once:
the action takes the rows it names under a row lock (`FOR UPDATE SKIP
LOCKED`, so a second operator acting at the same moment skips them and gets
0 for them) and sets their state in the same transaction. A replay publishes
each message to the handler's queue, with a publisher confirm, before that
transaction commits: a crash in between leaves the row parked after its
message went out, so a later replay can only send it twice, which the
handler absorbs (order_process's primary key). Rows are never deleted.
"""

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from order_contract import (
    MAX_BODY_CHARS,
    MAX_DEAD_LETTERS_PER_CALL,
    RECENT_SECONDS,
    Actor,
    DeadLetter,
    DeadLetterGroups,
    validate_actor,
)
from order_contract.triage import ALL, BY_IDS, DISCARD, DONE, FAILED, GROUP, REPLAY
from order_pipeline.dead_letters import DeadLetterRecord, Replay, as_text, replay_headers
from order_pipeline.times import iso_z, utc_now
from order_pipeline.transactions import run_transaction
from processor_service import audit, store
from processor_service.failure_groups import fingerprint, frame_of, normalise
from processor_service.models import DeadLetter as DeadLetterRow

log = logging.getLogger(__name__)

PARKED, REPLAYED, DISCARDED, EDITED = "parked", "replayed", "discarded", "edited"
ACTIONS = {REPLAYED: REPLAY, DISCARDED: DISCARD}


@dataclass(frozen=True)
class Resolved:
    """A dead letter just replayed or discarded (read before its session ends)."""

    id: str
    order_id: int | None
    attempts: int
    reason: str
    body: bytes

    @classmethod
    def of(cls, row) -> "Resolved":
        return cls(row.id, row.order_id, row.attempts, row.reason, row.body)


def column_size(name):
    return DeadLetterRow.__table__.c[name].type.length


def row_of(record: DeadLetterRecord, order_id: int | None) -> dict:
    """The dead_letters row of a record, cut to the columns' sizes: a row
    the table refused would stop every dead letter behind it."""
    return {
        "id": record.id,
        "state": PARKED,
        "dead_lettered_at": record.dead_lettered_at,
        "resolved_at": None,
        "order_id": order_id,
        "attempts": min(record.attempts, 2**31 - 1),
        "reason": record.reason[: column_size("reason")],
        "error_type": record.error_type[: column_size("error_type")],
        "error_message": record.error_message[: column_size("error_message")],
        "failing_frame": record.failing_frame
        and record.failing_frame[: column_size("failing_frame")],
        "trace_id": record.trace_id,
        "first_failed_at": record.first_failed_at,
        "last_failed_at": record.last_failed_at,
        "failures": record.failures_json(),
        "body": record.body,
        "content_type": record.content_type and record.content_type[: column_size("content_type")],
        "content_encoding": (
            record.content_encoding and record.content_encoding[: column_size("content_encoding")]
        ),
        "headers": json.dumps(record.headers, separators=(",", ":")),
        "fingerprint": fingerprint(record.error_type, record.error_message, record.failing_frame),
        "cause": normalise(record.error_message),
        "edited_as": None,
    }


def store_records(db, records: list[DeadLetterRecord], order_id_of) -> None:
    """Keep each record once (its id is the key: one stored before is left
    as it is). `order_id_of(body_text)` names the order a body is about."""
    rows = [row_of(record, order_id_of(as_text(record.body))) for record in records]

    def work(session):
        store.add_dead_letters(session, rows)

    # Running it twice stores nothing twice.
    run_transaction(db, work, name="storing dead letters", retry_unknown_commit=True)


def overview(session, limit: int) -> tuple[int, list[DeadLetter]]:
    """(how many are parked, the first `limit` of them, oldest first)."""
    count = store.count_dead_letters(session, PARKED)
    return count, [as_contract(row) for row in store.dead_letters_in(session, PARKED, limit)]


def as_contract(row) -> DeadLetter:
    return {
        "id": row.id,
        "order_id": row.order_id,
        "body": as_text(row.body)[:MAX_BODY_CHARS],
        "reason": row.reason,
        "dead_lettered_at": iso_z(row.dead_lettered_at),
        "attempts": row.attempts,
        "error_type": row.error_type,
        "failing_frame": row.failing_frame,
        "trace_id": row.trace_id,
        "first_failed_at": row.first_failed_at and iso_z(row.first_failed_at),
        "last_failed_at": row.last_failed_at and iso_z(row.last_failed_at),
    }


def replay(db, publish, ids: list[str] | None = None, actor: Actor | None = None) -> int:
    """Send the parked dead letters named by `ids` (the oldest
    MAX_DEAD_LETTERS_PER_CALL when None) back to the handler's queue;
    `publish(replays) -> ids confirmed`. Returns how many went."""
    scope = ALL if ids is None else BY_IDS
    return len(_act(db, REPLAYED, actor, scope, ids=ids, publish=publish))


def discard(db, ids: list[str], actor: Actor | None = None) -> int:
    """Set the parked dead letters named by `ids` aside for good, logging
    each. Returns how many."""
    return len(_act(db, DISCARDED, actor, BY_IDS, ids=ids))


def replay_group(db, publish, group: str, actor: Actor | None = None) -> dict:
    """Replay the parked dead letters of a group (the oldest
    MAX_DEAD_LETTERS_PER_CALL): {"replayed": n, "left": parked in it now}.
    Only those parked when it began: a replayed one that fails again is a
    new dead letter, left for the next action."""
    replayed = _act(db, REPLAYED, actor, GROUP, group=group, publish=publish)
    return {"replayed": len(replayed), "left": _left(db, group)}


def discard_group(db, group: str, actor: Actor | None = None) -> dict:
    """Discard the parked dead letters of a group (the oldest
    MAX_DEAD_LETTERS_PER_CALL): {"discarded": n, "left": parked in it now}."""
    discarded = _act(db, DISCARDED, actor, GROUP, group=group)
    return {"discarded": len(discarded), "left": _left(db, group)}


def _left(db, group):
    with db.get_session() as session:
        return store.count_in_group(session, PARKED, group)


def _act(db, state, actor, scope, ids=None, group=None, publish=None):
    """Take the dead letters named to `state`, with its audit entry, and
    log each; an action that fails is recorded as failed, then raised."""
    actor = actor or validate_actor(None)
    try:
        rows = _resolve(db, ids, state, actor, scope, group, publish)
    except Exception as exc:
        audit.record_apart(
            db,
            audit.entry(
                actor,
                ACTIONS[state],
                scope,
                group,
                [],
                FAILED,
                f"failed ({type(exc).__name__}): nothing was {state}",
            ),
        )
        raise
    for row in rows:
        if state == REPLAYED:
            log.info(
                "replayed dead letter %s (order %s, %d attempts so far)",
                row.id,
                row.order_id,
                row.attempts,
            )
        else:
            log.warning(
                "discarded dead letter %s for good: order %s, %d attempts, reason %r, body %.200r",
                row.id,
                row.order_id,
                row.attempts,
                row.reason,
                as_text(row.body),
            )
    return rows


def _resolve(db, ids, state, actor, scope, group=None, publish=None):
    """Take the parked rows named (publishing them first if `publish` is
    given: those the broker confirmed) to `state`, and add the audit entry
    that says so; return them."""
    resolved_at = utc_now()
    taken_ids = []

    def work(session):
        # READ COMMITTED locks the rows taken only, not the gaps beside
        # them: dead letters arriving meanwhile are stored without waiting.
        session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        rows = store.take_dead_letters(session, PARKED, ids, MAX_DEAD_LETTERS_PER_CALL, group)
        taken_ids[:] = [row.id for row in rows]
        if publish is not None and rows:
            sent = set(publish([replay_of(row) for row in rows]))
            rows = [row for row in rows if row.id in sent]
        done = [row.id for row in rows]
        store.resolve_dead_letters(session, done, state, resolved_at)
        audit.record(
            session,
            audit.entry(
                actor,
                ACTIONS[state],
                scope,
                group,
                done,
                DONE,
                f"{state} {len(done)}" + ("" if done else " (none was parked and free)"),
                at=resolved_at,
            ),
        )
        return [Resolved.of(row) for row in rows]

    def recover(session):
        # The commit was applied if the rows taken carry its state and time.
        rows = store.resolved_dead_letters(session, taken_ids, state, resolved_at)
        return [Resolved.of(row) for row in rows] or None

    return run_transaction(db, work, name=f"dead letters {state}", recover=recover)


def groups(session, limit: int, now=None) -> DeadLetterGroups:
    """The parked dead letters' groups, the largest first."""
    since = (now or utc_now()) - timedelta(seconds=RECENT_SECONDS)
    total, rows = store.dead_letter_groups(session, PARKED, since, limit)
    examples = store.group_examples(
        session, PARKED, [(row.fingerprint, row.last_seen) for row in rows]
    )
    listed = []
    for row in rows:
        example = examples.get(row.fingerprint)
        if example is None:  # resolved between the two reads
            continue
        listed.append(
            {
                "group": row.fingerprint,
                "error_type": example.error_type,
                "cause": example.cause,
                "frame": frame_of(example.failing_frame),
                "count": int(row.letters),
                "first_seen": iso_z(row.first_seen),
                "last_seen": iso_z(row.last_seen),
                "recent_orders": int(row.recent_orders),
                "example": as_contract(example),
            }
        )
    return {"count": total, "recent_seconds": RECENT_SECONDS, "groups": listed}


def replay_of(row) -> Replay:
    return Replay(
        id=row.id,
        body=row.body,
        headers=replay_headers(row.headers),
        content_type=row.content_type,
        content_encoding=row.content_encoding,
    )
