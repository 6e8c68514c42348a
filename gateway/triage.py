"""The gateway's part of failure triage (order_contract.triage): the groups
with the share of recent orders each affects, and the audit trail's paging
query.

"Recent" is the last RECENT_SECONDS (10 minutes, the console's chart
window). A group's share is the distinct orders it holds a dead letter for
that was set aside in that window, over the orders the generator created in
it: the processor counts the first, the generator the second, and only the
gateway asks both. An order created just before the window and set aside
in it counts above the line and not below, so the share is capped at 1; it
is null while no order was created in the window, or the generator does not
answer.
"""

import time

import eventlet

from gateway.errors import BadRequest
from order_contract import DEFAULT_AUDIT_LIMIT, DEFAULT_GROUP_LIMIT, MAX_AUDIT_LIMIT, RECENT_SECONDS
from order_pipeline.extensions.rpc_proxy import RpcTimeout, ServiceUnavailable

AUDIT_QUERY = {"before", "limit"}
MAX_QUERY_DIGITS = 19  # 2**63 - 1 has 19


def read_groups(processor, generator, now=None) -> dict:
    """GET /dead-letters/groups: the processor's groups, each with its
    `recent_share`, and the orders created in the window."""
    now = time.time() if now is None else now
    created = eventlet.spawn(orders_created_since, generator, int(now) - RECENT_SECONDS)
    try:
        answer = processor.dead_letter_groups(DEFAULT_GROUP_LIMIT)
    except BaseException:
        created.kill()
        raise
    return with_shares(answer, created.wait())


def orders_created_since(generator, since: int) -> int | None:
    """Orders created from epoch second `since` on; None if the generator
    does not answer (the shares are then unknown, the groups still shown)."""
    try:
        return sum(created for _, created in generator.created_per_second(since))
    except (RpcTimeout, ServiceUnavailable):
        return None


def with_shares(answer: dict, orders_created: int | None) -> dict:
    """The groups answer with `orders_created_recently` and each group's
    `recent_share` (pure)."""
    return {
        **answer,
        "orders_created_recently": orders_created,
        "groups": [
            {**group, "recent_share": share(group["recent_orders"], orders_created)}
            for group in answer["groups"]
        ],
    }


def share(affected: int, created: int | None) -> float | None:
    if not created:
        return None
    return round(min(1.0, affected / created), 4)


def read_audit_query(request) -> tuple[int | None, int]:
    """(before, limit) from `?before=<entry id>&limit=<1..100>`; anything
    else in the query is a 400."""
    unknown = set(request.args) - AUDIT_QUERY
    if unknown:
        raise BadRequest(f"unknown query parameter {sorted(unknown)[0]!r:.40}: use before, limit")
    before = query_int(request, "before", None)
    limit = query_int(request, "limit", DEFAULT_AUDIT_LIMIT)
    if before is not None and before < 1:
        raise BadRequest("before must be an audit entry id (a positive integer)")
    if not 1 <= limit <= MAX_AUDIT_LIMIT:
        raise BadRequest(f"limit must be from 1 to {MAX_AUDIT_LIMIT}")
    return before, limit


def query_int(request, name, default):
    values = request.args.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise BadRequest(f"give {name} once")
    text = values[0]
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > MAX_QUERY_DIGITS:
        raise BadRequest(f"{name} must be a positive integer")
    return int(text)
