"""The processor's dead letters, kept in its `dead_letters` table, as plain
functions (no nameko): storing what the dead-letter queue brings
(`order_pipeline.dead_letters.DeadLetterIntake` calls `store_records`),
listing, replaying and discarding.

Each row is `parked` until it is replayed or discarded, which happens once:
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

from order_contract import MAX_BODY_CHARS, MAX_DEAD_LETTERS_PER_CALL, DeadLetter
from order_pipeline.dead_letters import DeadLetterRecord, Replay, as_text, replay_headers
from order_pipeline.times import iso_z, utc_now
from order_pipeline.transactions import run_transaction
from processor_service import store
from processor_service.models import DeadLetter as DeadLetterRow

log = logging.getLogger(__name__)

PARKED, REPLAYED, DISCARDED = "parked", "replayed", "discarded"


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


def replay(db, publish, ids: list[str] | None = None) -> int:
    """Send the parked dead letters named by `ids` (the oldest
    MAX_DEAD_LETTERS_PER_CALL when None) back to the handler's queue;
    `publish(replays) -> ids confirmed`. Returns how many went."""
    replayed = _resolve(db, ids, REPLAYED, publish)
    for row in replayed:
        log.info(
            "replayed dead letter %s (order %s, %d attempts so far)",
            row.id,
            row.order_id,
            row.attempts,
        )
    return len(replayed)


def discard(db, ids: list[str]) -> int:
    """Set the parked dead letters named by `ids` aside for good, logging
    each. Returns how many."""
    rows = _resolve(db, ids, DISCARDED)
    for row in rows:
        log.warning(
            "discarded dead letter %s for good: order %s, %d attempts, reason %r, body %.200r",
            row.id,
            row.order_id,
            row.attempts,
            row.reason,
            as_text(row.body),
        )
    return len(rows)


def _resolve(db, ids, state, publish=None):
    """Take the parked rows named (publishing them first if `publish` is
    given: those the broker confirmed) to `state`; return them."""
    if ids is not None and not ids:
        return []
    resolved_at = utc_now()
    taken_ids = []

    def work(session):
        # READ COMMITTED locks the rows taken only, not the gaps beside
        # them: dead letters arriving meanwhile are stored without waiting.
        session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        rows = store.take_dead_letters(session, PARKED, ids, MAX_DEAD_LETTERS_PER_CALL)
        taken_ids[:] = [row.id for row in rows]
        if publish is not None and rows:
            sent = set(publish([replay_of(row) for row in rows]))
            rows = [row for row in rows if row.id in sent]
        store.resolve_dead_letters(session, [row.id for row in rows], state, resolved_at)
        return [Resolved.of(row) for row in rows]

    def recover(session):
        # The commit was applied if the rows taken carry its state and time.
        rows = store.resolved_dead_letters(session, taken_ids, state, resolved_at)
        return [Resolved.of(row) for row in rows] or None

    return run_transaction(db, work, name=f"dead letters {state}", recover=recover)


def replay_of(row) -> Replay:
    return Replay(
        id=row.id,
        body=row.body,
        headers=replay_headers(row.headers),
        content_type=row.content_type,
        content_encoding=row.content_encoding,
    )
