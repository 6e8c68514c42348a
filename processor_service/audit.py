"""The audit trail of what operators do to dead letters: every replay,
discard and edit, who asked (an Actor: never a token), when, what it named,
which dead letters it acted on, and how it ended.

An action that changes dead letters writes its entry in its own transaction
(`record`), so the trail and the table cannot disagree: no entry for an
action rolled back, no action committed without its entry. One that is
refused (a bad edit, a letter no longer parked) or fails (the broker or the
database away) changes nothing, and is recorded after, in a transaction of
its own (`record_apart`), as far as the database lets it.

Entries are only ever inserted and read (processor_service.store); the
processor's database user may do nothing else on the table
(order_pipeline/identities.py).
"""

import json
import logging

from order_contract import Actor, AuditEntry, AuditPage
from order_pipeline.times import iso_z, utc_now
from order_pipeline.transactions import run_transaction
from processor_service import store
from processor_service.models import DeadLetterAudit

log = logging.getLogger(__name__)


def column_size(name):
    return DeadLetterAudit.__table__.c[name].type.length


def entry(actor: Actor, action, scope, target, ids, outcome, detail, change=None, at=None):
    """An audit row (dict of DeadLetterAudit's columns but its id)."""
    return {
        "at": at or utc_now(),
        "actor": actor["name"],
        "token_fingerprint": actor["token"],
        "action": action,
        "scope": scope,
        "target": target,
        "dead_letter_ids": json.dumps(list(ids), separators=(",", ":")),
        "count": len(ids),
        "outcome": outcome,
        "detail": detail[: column_size("detail")],
        "change": None if change is None else json.dumps(change, separators=(",", ":")),
    }


def record(session, row: dict) -> None:
    """Add the entry in the caller's transaction."""
    store.add_audit_entry(session, row)


def record_apart(db, row: dict) -> None:
    """Add the entry of an action that changed nothing, in a transaction of
    its own. The action's own error matters more than this one: a failure
    here is logged, not raised."""
    try:
        run_transaction(db, lambda session: record(session, row), name="audit entry", attempts=2)
    except Exception:
        log.exception("could not record the audit entry %s", {**row, "dead_letter_ids": "..."})


def page(session, before: int | None, limit: int) -> AuditPage:
    rows = store.audit_entries(session, before, limit + 1)
    shown = rows[:limit]
    more = len(rows) > limit
    return {
        "entries": [as_contract(row) for row in shown],
        "next_before": shown[-1].id if more else None,
    }


def as_contract(row) -> AuditEntry:
    return {
        "id": row.id,
        "at": iso_z(row.at),
        "actor": {"name": row.actor, "token": row.token_fingerprint},
        "action": row.action,
        "scope": row.scope,
        "target": row.target,
        "dead_letter_ids": json.loads(row.dead_letter_ids),
        "count": row.count,
        "outcome": row.outcome,
        "detail": row.detail,
        "change": None if row.change is None else json.loads(row.change),
    }
