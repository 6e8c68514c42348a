"""One dead letter in full, and an edit sent in its place.

What an operator can meaningfully edit is the event's body. OrderCreated
carries one field, `order_id` (the quantity and the price are the
generator's and the processor's to read, not the event's), so an edit
corrects the order an event names: a producer that sent the wrong id, an
id mangled on the way, a body that was not JSON at all. The edit must be a
payload the contract accepts (`OrderCreated.from_payload`; otherwise
InvalidPayload, a 400 at the gateway) and name an order the generator has
(asked with `get_orders` before anything is sent), and what is sent is the
contract's own rendering of it, so nothing else rides along.

The edit goes out as a new message with a new id (`x-message-id`) that
names the dead letter it replaces (`x-edited-from`), keeping the original's
other headers (its trace, attempts and failure history). In the transaction
that publishes it (with a publisher confirm), the original's row becomes
`edited`, with `edited_as` naming the new message, and the audit trail gets
the change. A crash between the publish and the commit leaves the original
parked after its edit went out; editing it again sends the order once more,
which the handler absorbs, as for a replay.
"""

import json
import secrets

from order_contract import (
    MAX_BODY_CHARS,
    ORDER_CREATED,
    Actor,
    DeadLetterDetail,
    DeadLetterNotParked,
    Edited,
    InvalidPayload,
    OrderCreated,
    UnknownDeadLetter,
)
from order_contract.triage import DONE, EDIT, FAILED, LETTER, REFUSED
from order_pipeline.dead_letters import Replay, as_text, replay_headers
from order_pipeline.times import iso_z, utc_now
from order_pipeline.transactions import run_transaction
from processor_service import audit, store
from processor_service.dead_letters import EDITED, PARKED, as_contract

EDITED_FROM_HEADER = "x-edited-from"
MESSAGE_ID_HEADER = "x-message-id"
CONTENT_TYPE = "application/json"


class EditNotSent(Exception):
    """The broker did not take the edited message."""


def detail(session, dead_letter_id: str) -> DeadLetterDetail | None:
    row = store.get_dead_letter(session, dead_letter_id)
    if row is None:
        return None
    headers = replay_headers(row.headers)
    return {
        **as_contract(row),
        "state": row.state,
        "resolved_at": row.resolved_at and iso_z(row.resolved_at),
        "group": row.fingerprint,
        "cause": row.cause,
        "content_type": row.content_type,
        "failures": json.loads(row.failures),
        "edited_from": _text_or_none(headers.get(EDITED_FROM_HEADER)),
        "edited_as": row.edited_as,
    }


def _text_or_none(value):
    return None if value is None else str(value)[:MAX_BODY_CHARS]


def edit(db, publish, order_exists, dead_letter_id: str, payload, actor: Actor) -> Edited:
    """Send `payload` in place of the parked dead letter `dead_letter_id`.
    `publish(replays) -> ids confirmed`; `order_exists(order_id) -> bool`.
    Raises InvalidPayload (a bad edit), UnknownDeadLetter or
    DeadLetterNotParked, each recorded in the audit trail as refused (and
    anything else, the generator or the broker away, as failed)."""
    try:
        return _edit(db, publish, order_exists, dead_letter_id, payload, actor)
    except (InvalidPayload, UnknownDeadLetter, DeadLetterNotParked) as refusal:
        _record_unsent(
            db,
            actor,
            dead_letter_id,
            payload,
            REFUSED,
            f"refused ({type(refusal).__name__}): {refusal}",
        )
        raise
    except Exception as exc:
        _record_unsent(
            db, actor, dead_letter_id, payload, FAILED, f"failed ({type(exc).__name__}): not sent"
        )
        raise


def _record_unsent(db, actor, dead_letter_id, payload, outcome, detail):
    change = {"to": _shown(payload)}
    audit.record_apart(
        db, audit.entry(actor, EDIT, LETTER, dead_letter_id, [], outcome, detail, change=change)
    )


def _shown(payload) -> str:
    """A payload as the audit trail keeps what was asked (JSON if it can)."""
    try:
        return json.dumps(payload, separators=(", ", ": "))[:MAX_BODY_CHARS]
    except (TypeError, ValueError):
        return repr(payload)[:MAX_BODY_CHARS]


def _edit(db, publish, order_exists, dead_letter_id, payload, actor):
    order = OrderCreated.from_payload(payload)
    if not order_exists(order.order_id):
        raise InvalidPayload(
            f"{ORDER_CREATED} names order {order.order_id}, which the generator does not have"
        )
    body = json.dumps(order.to_payload()).encode("utf-8")
    message_id = secrets.token_hex(8)
    resolved_at = utc_now()

    def work(session):
        session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        (row,) = _take(session, dead_letter_id)
        headers = {
            **replay_headers(row.headers),
            EDITED_FROM_HEADER: row.id,
            MESSAGE_ID_HEADER: message_id,
        }
        replay = Replay(row.id, body, headers, CONTENT_TYPE, "utf-8")
        if row.id not in publish([replay]):
            raise EditNotSent(f"the broker did not confirm the edit of dead letter {row.id}")
        store.resolve_dead_letters(session, [row.id], EDITED, resolved_at, edited_as=message_id)
        change = {
            "from": as_text(row.body)[:MAX_BODY_CHARS],
            "to": body.decode(),
            "message_id": message_id,
        }
        audit.record(
            session,
            audit.entry(
                actor,
                EDIT,
                LETTER,
                row.id,
                [row.id],
                DONE,
                f"edited: sent {change['to']} as message {message_id} in place of {change['from']}",
                change=change,
                at=resolved_at,
            ),
        )
        return {"edited": row.id, "message_id": message_id, "payload": order.to_payload()}

    def recover(session):
        row = store.get_dead_letter(session, dead_letter_id)
        if row is None or (row.state, row.resolved_at) != (EDITED, resolved_at):
            return None
        return {"edited": row.id, "message_id": row.edited_as, "payload": order.to_payload()}

    return run_transaction(db, work, name="dead letter edited", recover=recover)


def _take(session, dead_letter_id):
    """The parked row, locked; or why it cannot be edited."""
    rows = store.take_dead_letters(session, PARKED, [dead_letter_id], 1)
    if rows:
        return rows
    row = store.get_dead_letter(session, dead_letter_id)
    if row is None:
        raise UnknownDeadLetter(f"no dead letter {dead_letter_id}")
    if row.state == PARKED:
        raise DeadLetterNotParked(f"another caller is acting on dead letter {dead_letter_id}")
    raise DeadLetterNotParked(f"dead letter {dead_letter_id} is {row.state}, no longer parked")
