"""SQL for order_processor's tables. Functions take an open session; the
caller owns the transaction."""

from sqlalchemy import bindparam, case, delete, func, insert, select, text, tuple_, update
from sqlalchemy.dialects.mysql import insert as mysql_insert

from order_pipeline.upserts import adding_to, precompiled
from processor_service.latency import bucket_of, latency_us
from processor_service.models import (
    DeadLetter,
    DeadLetterAudit,
    EventsSetAside,
    HandlingSecond,
    LatencyBucket,
    OrderProcess,
    ProcessingTotals,
    PrunedResults,
    ServiceInstanceRow,
)

TOTALS_SHARDS = 16

# Core statements (not the ORM's bulk path), built once.
INSERT_RESULT = insert(OrderProcess.__table__)
_results = OrderProcess.__table__
STORED_IDS = select(_results.c.order_id).where(
    _results.c.order_id.in_(bindparam("ids", expanding=True))
)
ADD_TO_TOTALS = adding_to(
    ProcessingTotals.__table__, ["shard"], ["orders_processed", "execution_price_sum"]
)
ADD_TO_LATENCY_HISTOGRAM = adding_to(
    LatencyBucket.__table__, ["shard", "le_us"], ["orders", "latency_us_sum"]
)
# handling_seconds: shards (by the writing instance) x slots (the second
# modulo HANDLING_SLOTS, longer than any timing window). A write for the
# second a row holds adds to it; for a newer second it starts the row again;
# for an older one (counts kept through a long database outage) it is
# dropped rather than spoil a newer second.
HANDLING_SHARDS = 16
HANDLING_SLOTS = 900
HANDLING_FIGURES = (
    "processed",
    "processing_us_sum",
    "critical_orders",
    "critical_us_sum",
    "retries",
)
_handling_upsert = mysql_insert(HandlingSecond.__table__)
_held, _new = _handling_upsert.table.c, _handling_upsert.inserted
ADD_TO_HANDLING_SECONDS = precompiled(
    _handling_upsert.on_duplicate_key_update(
        [
            *(
                (
                    figure,
                    case(
                        (_held.second == _new.second, _held[figure] + _new[figure]),
                        (_held.second < _new.second, _new[figure]),
                        else_=_held[figure],
                    ),
                )
                for figure in HANDLING_FIGURES
            ),
            # Last: the figures above compare with the second the row held (MariaDB
            # assigns left to right, or all at once in SIMULTANEOUS_ASSIGNMENT mode).
            ("second", func.greatest(_held.second, _new.second)),
        ]
    ),
    ["shard", "slot", "second", *HANDLING_FIGURES],
)
_set_aside_upsert = mysql_insert(EventsSetAside.__table__)
ADD_SET_ASIDE = _set_aside_upsert.on_duplicate_key_update(
    events=_set_aside_upsert.table.c.events + _set_aside_upsert.inserted.events
)
_dead_letter_insert = mysql_insert(DeadLetter.__table__)
# A dead letter already there (taken off the queue before, its ack lost) is
# left as it is: replayed or discarded since, it stays so.
ADD_DEAD_LETTER = _dead_letter_insert.on_duplicate_key_update(id=_dead_letter_insert.table.c.id)
# What a listing shows of a dead letter (not its history, headers or body bytes).
LISTED = (
    DeadLetter.id,
    DeadLetter.order_id,
    DeadLetter.body,
    DeadLetter.reason,
    DeadLetter.dead_lettered_at,
    DeadLetter.attempts,
    DeadLetter.error_type,
    DeadLetter.failing_frame,
    DeadLetter.trace_id,
    DeadLetter.first_failed_at,
    DeadLetter.last_failed_at,
)
INSERT_AUDIT_ENTRY = insert(DeadLetterAudit.__table__)


def add_results(session, results):
    """Store processing results and count them in the totals and the latency
    histogram; return the ones stored.

    Orders that already have a row are skipped: the primary key on order_id
    is what makes a redelivered event harmless. (If another processor
    inserts the same order between the SELECT and the INSERT, the INSERT
    fails with a duplicate key and the caller retries the batch.)
    """
    order_ids = [result.order_id for result in results]
    done = set(session.scalars(STORED_IDS, {"ids": order_ids}))
    new = [result for result in results if result.order_id not in done]
    if not new:
        return []
    # One statement, many parameter sets: SQLAlchemy compiles it once and
    # PyMySQL sends one multi-row INSERT. (Building `.values([...])` anew
    # for each batch cost more CPU than everything else per order.)
    session.execute(
        INSERT_RESULT,
        [
            {
                "order_id": result.order_id,
                "unit_price": result.unit_price,
                "execution_price": result.execution_price,
                "processed_at": result.processed_at,
                "order_created_at": result.order_created_at,
            }
            for result in new
        ],
    )
    add_to_totals(session, new)
    add_to_latency_histogram(session, new)
    return new


def add_to_totals(session, results):
    by_shard = {}
    for result in results:
        count, total = by_shard.get(result.order_id % TOTALS_SHARDS, (0, 0))
        by_shard[result.order_id % TOTALS_SHARDS] = (count + 1, total + result.execution_price)
    # Rows in shard order, so concurrent transactions lock them in the same
    # order and cannot deadlock on each other.
    session.execute(
        ADD_TO_TOTALS,
        [
            {"shard": shard, "orders_processed": count, "execution_price_sum": total}
            for shard, (count, total) in sorted(by_shard.items())
        ],
    )


def add_to_latency_histogram(session, results):
    """Count each result's latency in its bucket. Taken after the totals'
    rows and in (shard, bucket) order, as every transaction takes them, so
    concurrent processors cannot deadlock on them."""
    by_row = {}
    for result in results:
        latency = latency_us(result)
        if latency is None:  # created_at unknown: not in the histogram
            continue
        key = (result.order_id % TOTALS_SHARDS, bucket_of(latency))
        count, total = by_row.get(key, (0, 0))
        by_row[key] = (count + 1, total + latency)
    if by_row:
        session.execute(
            ADD_TO_LATENCY_HISTOGRAM,
            [
                {"shard": shard, "le_us": le_us, "orders": count, "latency_us_sum": total}
                for (shard, le_us), (count, total) in sorted(by_row.items())
            ],
        )


def latency_histogram(session):
    """[(le_us, orders, latency_us_sum)], one per bucket, over every shard."""
    return session.execute(
        select(
            LatencyBucket.le_us,
            func.sum(LatencyBucket.orders),
            func.sum(LatencyBucket.latency_us_sum),
        ).group_by(LatencyBucket.le_us)
    ).all()


# --- service instances and their timing ----------------------------------------

# Seconds since the epoch now, and the age of a DATETIME, by the database's
# clock: one clock for every instance's silence and every timing window.
NOW_SECOND = text("SELECT TIMESTAMPDIFF(SECOND, '1970-01-01', UTC_TIMESTAMP())")
SECONDS_SINCE_SEEN = (
    func.timestampdiff(text("MICROSECOND"), ServiceInstanceRow.last_seen_at, func.utc_timestamp(6))
    / 1_000_000
).label("seconds_since_seen")


def seconds_ago(seconds):
    """UTC_TIMESTAMP(6) less `seconds` (a whole number), as SQL."""
    return func.date_sub(func.utc_timestamp(6), text(f"INTERVAL {int(seconds)} SECOND"))


def add_handling(session, shard, figures_by_second):
    """Add {second: {figure: n}} (HANDLING_FIGURES; missing ones count 0)
    to a shard's handling_seconds rows, in slot order."""
    session.execute(
        ADD_TO_HANDLING_SECONDS,
        [
            {
                "shard": shard,
                "slot": second % HANDLING_SLOTS,
                "second": second,
                **{figure: figures.get(figure, 0) for figure in HANDLING_FIGURES},
            }
            for second, figures in sorted(
                figures_by_second.items(), key=lambda item: item[0] % HANDLING_SLOTS
            )
        ],
    )


def handling_in_window(session, window_seconds):
    """{figure: sum} over the seconds in (now - window_seconds, now], by the
    database's clock."""
    now = int(session.execute(NOW_SECOND).scalar_one())
    sums = session.execute(
        select(
            *(
                func.coalesce(func.sum(HandlingSecond.__table__.c[figure]), 0)
                for figure in HANDLING_FIGURES
            )
        ).where(HandlingSecond.second > now - window_seconds)
    ).one()
    return {figure: int(total) for figure, total in zip(HANDLING_FIGURES, sums)}


def record_heartbeat(session, row):
    """Insert or replace an instance's row (ServiceInstanceRow's columns but
    last_seen_at, which is the database's now)."""
    statement = mysql_insert(ServiceInstanceRow.__table__).values(
        **row, last_seen_at=func.utc_timestamp(6)
    )
    session.execute(
        statement.on_duplicate_key_update(
            {name: statement.inserted[name] for name in row if name != "instance_id"}
            | {"last_seen_at": statement.inserted.last_seen_at}
        )
    )


def service_instances(session, retention_seconds):
    """[(ServiceInstanceRow, seconds since seen)] of the instances seen within
    `retention_seconds`, by service, then oldest first."""
    rows = session.execute(
        select(ServiceInstanceRow, SECONDS_SINCE_SEEN)
        .where(ServiceInstanceRow.last_seen_at >= seconds_ago(retention_seconds))
        .order_by(
            ServiceInstanceRow.service,
            ServiceInstanceRow.started_at,
            ServiceInstanceRow.instance_id,
        )
    ).all()
    return [(instance, float(seconds)) for instance, seconds in rows]


def add_set_asides(session, counts):
    """Add {outcome: events} to the counts of events set aside."""
    session.execute(
        ADD_SET_ASIDE,
        [{"outcome": outcome, "events": events} for outcome, events in sorted(counts.items())],
    )


def set_aside_counts(session):
    """{outcome: events set aside so far}; outcomes never counted are absent."""
    return {
        outcome: int(events)
        for outcome, events in session.execute(
            select(EventsSetAside.outcome, EventsSetAside.events)
        )
    }


def stored_at(session, order_ids, processed_at):
    """The ids among `order_ids` stored with this processed_at."""
    return set(
        session.scalars(
            select(OrderProcess.order_id).where(
                OrderProcess.order_id.in_(order_ids), OrderProcess.processed_at == processed_at
            )
        )
    )


def totals(session):
    """(orders processed, sum of execution prices) from the running totals."""
    count, total = session.execute(
        select(
            func.coalesce(func.sum(ProcessingTotals.orders_processed), 0),
            func.coalesce(func.sum(ProcessingTotals.execution_price_sum), 0),
        )
    ).one()
    return int(count), total


def get_result(session, order_id):
    return session.get(OrderProcess, order_id)


def processed_order_ids(session, order_ids):
    """Those of `order_ids` that have a result, ascending."""
    if not order_ids:
        return []
    return list(
        session.scalars(
            select(OrderProcess.order_id)
            .where(OrderProcess.order_id.in_(order_ids))
            .order_by(OrderProcess.order_id)
        )
    )


def get_results(session, order_ids):
    if not order_ids:
        return []
    return list(session.scalars(select(OrderProcess).where(OrderProcess.order_id.in_(order_ids))))


# Seconds since the epoch of a naive UTC DATETIME, with no time zone applied
# (UNIX_TIMESTAMP would read it in the session's time zone).
EPOCH_SECOND = "TIMESTAMPDIFF(SECOND, '1970-01-01', processed_at)"
PROCESSED_PER_SECOND = text(
    f"SELECT {EPOCH_SECOND} AS second, COUNT(*) AS processed, "
    "SUM(execution_price) AS price_sum "
    "FROM order_process WHERE processed_at >= :since GROUP BY second"
)
# PERCENTILE_DISC is the nearest-rank percentile: a latency that occurred.
LATENCY_PERCENTILES_PER_SECOND = text(
    "SELECT DISTINCT second, "
    "PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY latency_us) OVER (PARTITION BY second) AS p50, "
    "PERCENTILE_DISC(0.95) WITHIN GROUP (ORDER BY latency_us) OVER (PARTITION BY second) AS p95 "
    f"FROM (SELECT {EPOCH_SECOND} AS second, "
    "TIMESTAMPDIFF(MICROSECOND, order_created_at, processed_at) AS latency_us "
    "FROM order_process WHERE processed_at >= :since AND order_created_at IS NOT NULL) AS timed"
)


def processed_per_second(session, since):
    """{second: (processed, sum of execution prices, p50 us, p95 us)} for the
    orders processed at or after `since` (naive UTC); the percentiles are
    None for a second none of whose orders has a created_at."""
    counts = session.execute(PROCESSED_PER_SECOND, {"since": since}).all()
    latencies = {
        row.second: (row.p50, row.p95)
        for row in session.execute(LATENCY_PERCENTILES_PER_SECOND, {"since": since})
    }
    return {
        int(row.second): (
            int(row.processed),
            row.price_sum,
            *latencies.get(row.second, (None, None)),
        )
        for row in counts
    }


# --- dead letters -------------------------------------------------------------------


def add_dead_letters(session, rows):
    """Insert dead letters (dicts of DeadLetter's columns); ids already there
    are skipped."""
    session.execute(ADD_DEAD_LETTER, rows)


def dead_letters_in(session, state, limit):
    """The first `limit` dead letters in `state`, oldest first (LISTED columns)."""
    return session.execute(
        select(*LISTED)
        .where(DeadLetter.state == state)
        .order_by(DeadLetter.dead_lettered_at, DeadLetter.id)
        .limit(limit)
    ).all()


def count_dead_letters(session, state):
    return session.scalar(select(func.count()).where(DeadLetter.state == state))


def take_dead_letters(session, state, ids, limit, group=None):
    """Dead letters in `state` (those named by `ids`, or the oldest when
    None; of one group when `group` is given), at most `limit`, locked for
    this transaction. Rows another transaction holds are skipped: it is
    acting on them."""
    query = select(DeadLetter).where(DeadLetter.state == state)
    if ids is not None:
        query = query.where(DeadLetter.id.in_(ids))
    if group is not None:
        query = query.where(DeadLetter.fingerprint == group)
    query = query.order_by(DeadLetter.dead_lettered_at, DeadLetter.id).limit(limit)
    return list(session.scalars(query.with_for_update(skip_locked=True)))


def resolve_dead_letters(session, ids, state, resolved_at, edited_as=None):
    if ids:
        session.execute(
            update(DeadLetter)
            .where(DeadLetter.id.in_(ids))
            .values(state=state, resolved_at=resolved_at, edited_as=edited_as)
        )


def resolved_dead_letters(session, ids, state, resolved_at):
    """Those of `ids` set to `state` at `resolved_at` (by one transaction)."""
    if not ids:
        return []
    return list(
        session.scalars(
            select(DeadLetter)
            .where(DeadLetter.id.in_(ids))
            .where(DeadLetter.state == state, DeadLetter.resolved_at == resolved_at)
            .order_by(DeadLetter.dead_lettered_at, DeadLetter.id)
        )
    )


def get_dead_letter(session, dead_letter_id):
    return session.get(DeadLetter, dead_letter_id)


def count_in_group(session, state, group):
    return session.scalar(
        select(func.count()).where(DeadLetter.state == state, DeadLetter.fingerprint == group)
    )


def dead_letter_groups(session, state, recent_since, limit):
    """(how many groups the dead letters in `state` make, the `limit`
    largest: rows of fingerprint, letters, first_seen, last_seen,
    recent_orders), read through ix_dead_letters_state_group."""
    first_seen = func.min(func.coalesce(DeadLetter.first_failed_at, DeadLetter.dead_lettered_at))
    last_seen = func.max(DeadLetter.dead_lettered_at)
    letters = func.count()
    recent_orders = func.count(
        func.distinct(
            case((DeadLetter.dead_lettered_at >= recent_since, DeadLetter.order_id), else_=None)
        )
    )
    in_state = select(DeadLetter.fingerprint).where(DeadLetter.state == state)
    total = session.scalar(select(func.count()).select_from(in_state.distinct().subquery()))
    rows = session.execute(
        select(
            DeadLetter.fingerprint,
            letters.label("letters"),
            first_seen.label("first_seen"),
            last_seen.label("last_seen"),
            recent_orders.label("recent_orders"),
        )
        .where(DeadLetter.state == state)
        .group_by(DeadLetter.fingerprint)
        .order_by(letters.desc(), last_seen.desc(), DeadLetter.fingerprint)
        .limit(limit)
    ).all()
    return total, rows


def group_examples(session, state, latest):
    """{fingerprint: its latest dead letter in `state` (LISTED columns and
    cause)} for `latest`, [(fingerprint, when its latest was set aside)]:
    one query, an index lookup per group."""
    if not latest:
        return {}
    rows = session.execute(
        select(*LISTED, DeadLetter.fingerprint, DeadLetter.cause)
        .where(DeadLetter.state == state)
        .where(tuple_(DeadLetter.fingerprint, DeadLetter.dead_lettered_at).in_(latest))
        .order_by(DeadLetter.id)
    ).all()
    return {row.fingerprint: row for row in rows}  # of two at one moment, the last id


# --- the audit trail: inserted and read, never updated or deleted ------------------


def add_audit_entry(session, entry):
    """Insert one audit entry (a dict of DeadLetterAudit's columns but id)."""
    session.execute(INSERT_AUDIT_ENTRY, [entry])


def audit_entries(session, before, limit):
    """Up to `limit` audit entries, newest first, with an id below `before`
    (None: from the newest)."""
    query = select(DeadLetterAudit)
    if before is not None:
        query = query.where(DeadLetterAudit.id < before)
    return list(session.scalars(query.order_by(DeadLetterAudit.id.desc()).limit(limit)))


# --- retention (processor_service.retention) ------------------------------------

# Results processed before the cutoff, read through the processed_at index
# (which holds the order id too) from where the last batch stopped.
OLD_RESULTS = text(
    "SELECT processed_at, order_id FROM order_process "
    "WHERE processed_at < :cutoff "
    "AND (processed_at > :after_at OR (processed_at = :after_at AND order_id > :after_id)) "
    "ORDER BY processed_at, order_id LIMIT :limit"
)
PRUNED_ID = 1
ADD_TO_PRUNED = adding_to(PrunedResults.__table__, ["id"], ["orders", "execution_price_sum"])


def old_results(session, cutoff, after, limit):
    """Up to `limit` (processed_at, order_id) rows of results processed
    before `cutoff`, in that order, after `after` (such a pair)."""
    after_at, after_id = after
    return session.execute(
        OLD_RESULTS,
        {"cutoff": cutoff, "after_at": after_at, "after_id": after_id, "limit": limit},
    ).all()


def delete_results(session, order_ids, cutoff):
    """Delete the results of `order_ids` processed before `cutoff`, and add
    what they held to pruned_results, in the caller's transaction; return
    how many. The rows are locked and summed first, so the sum is exactly
    what this transaction deletes, whoever else prunes at the same time."""
    if not order_ids:
        return 0
    rows = session.execute(
        select(OrderProcess.order_id, OrderProcess.execution_price)
        .where(OrderProcess.order_id.in_(order_ids), OrderProcess.processed_at < cutoff)
        .with_for_update()
    ).all()
    if not rows:
        return 0
    session.execute(
        delete(OrderProcess)
        .where(OrderProcess.order_id.in_([row.order_id for row in rows]))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        ADD_TO_PRUNED,
        {
            "id": PRUNED_ID,
            "orders": len(rows),
            "execution_price_sum": sum(row.execution_price for row in rows),
        },
    )
    return len(rows)
