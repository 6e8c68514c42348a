"""A whole failure group replayed while the processor doing it is killed.

The processor replays a group in one transaction: it takes the group's
parked rows under a row lock, publishes each message (with a publisher
confirm), marks the rows replayed and adds the audit entry, then commits.
The scenario kills it with SIGKILL after every message went out and before
the commit, the worst moment: the messages are on the queue, the rows are
still parked. To land the kill exactly there, and not merely somewhere, the
test holds a lock on the audit table (the fault a slow database would be)
and waits until the replay's own transaction is seen waiting on it.

Orders keep being generated throughout. What must hold afterwards, once the
operator has replayed the group again (the gateway answered the first call
503): every order processed once (the ledger's checks, and the execution
lines of both processor processes), every dead letter of the group
replayed, and the audit trail naming each of them in exactly one entry, for
the replay that committed (the killed one left none, and changed nothing).
"""

import eventlet
from sqlalchemy import create_engine, text

from harness.broker import publish_order_created
from harness.processes import wait_until
from harness.tables import dead_letter_rows, parked_dead_letters
from tests.faults.ledger import audit
from tests.faults.services import metrics, processor_outputs
from tests.faults.traffic import set_generation

INTERVAL = 0.05
GROUP = 300  # one replay call takes up to 1000
MISSING = 10**9  # order ids the generator does not reach in this test


def add_orders_highest_first(db_uri, order_ids):
    """The group's orders, back: the highest id first, so that the
    generator's own ids, running meanwhile, go on above them all."""
    engine = create_engine(db_uri)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO orders (id, quantity, created_at) "
                    "VALUES (:id, 2, UTC_TIMESTAMP(6))"
                ),
                [{"id": order_id} for order_id in sorted(order_ids, reverse=True)],
            )
    finally:
        engine.dispose()


def replay_waiting_on_a_lock(engine, database):
    """Whether a transaction of this database waits on a lock (the
    replay's insert of its audit entry, behind the test's lock)."""
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
                "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
                "WHERE t.trx_state = 'LOCK WAIT' AND p.DB = :db"
            ),
            {"db": database},
        ).scalar()


def test_a_group_replay_while_its_processor_is_killed_loses_and_doubles_nothing(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    system = make_pipeline(db_uri, amqp_uri, ORDER_INTERVAL_SECONDS=INTERVAL).start()
    ledger = make_ledger(db_uri)
    group_orders = [MISSING + n for n in range(GROUP)]
    # A group of poison events: orders the generator did not have (yet).
    publish_order_created(amqp_uri, [{"order_id": order_id} for order_id in group_orders])
    wait_until(lambda: parked_dead_letters(db_uri) == GROUP, 60, message="the group parked")
    add_orders_highest_first(db_uri, group_orders)  # their cause is gone
    (group,) = system.get("/dead-letters/groups").json()["groups"]
    assert group["count"] == GROUP
    replay_path = f"/dead-letters/groups/{group['group']}/replay"

    engine = create_engine(db_uri)
    holder = engine.connect()
    try:
        # Every insert into the audit table waits behind this lock (a
        # next-key lock on the whole, empty, table: REPEATABLE READ).
        holder.begin()
        holder.execute(text("SELECT id FROM dead_letter_audit FOR UPDATE"))
        first = eventlet.spawn(system.post, replay_path)
        wait_until(
            lambda: replay_waiting_on_a_lock(engine, engine.url.database),
            60,
            message="the replay, every message sent, waiting to commit",
        )
        system.processor.kill()  # SIGKILL: no commit, no answer
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()
    assert first.wait().status_code == 503  # the gateway got no answer
    assert parked_dead_letters(db_uri) == GROUP  # the killed replay changed nothing

    system.processor = system.start_service("processor_service")
    system.wait_healthy()
    fault_end = ledger.fault_ended()

    # The operator replays the group again, until it is empty (a row still
    # held by the dying transaction is skipped, and left for the next call).
    answers = []

    def replayed_all():
        response = system.post(replay_path)
        assert response.status_code == 200, response.text
        answers.append(response.json())
        return answers[-1]["left"] == 0

    wait_until(replayed_all, 60, interval=0.5, message="the group replayed")
    assert sum(answer["replayed"] for answer in answers) == GROUP

    recovery = ledger.wait_recovered(fault_end, timeout=60)
    set_generation(amqp_uri, False)
    ledger.wait_drained(amqp_uri)
    assert {row.state for row in dead_letter_rows(db_uri)} == {"replayed"}
    entries = system.get("/dead-letters/audit", params={"limit": 100}).json()["entries"]
    acted = [letter for entry in entries for letter in entry["dead_letter_ids"]]
    assert len(acted) == len(set(acted)) == GROUP
    assert {(entry["action"], entry["scope"], entry["outcome"]) for entry in entries} == {
        ("replay", "group", "done")
    }
    figures = audit(
        "group replay, processor SIGKILL before its commit",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )
    assert figures.processed >= GROUP
