"""What each identity may do, as the broker and the database answer it.

The users are made by the provision command (order_pipeline.commands.provision)
on a private RabbitMQ node, whose management API it uses, and on the
machine's MariaDB, in a vhost, a database and under user names of this run
only (harness.identities). Each test connects as one identity and tries
what it may not do, and what it needs. The pipeline running on these users
is tests/e2e/test_identities.py; the table itself is
tests/unit/test_identities.py.
"""

import subprocess
import sys
import uuid

import amqp
import pymysql
import pytest
from sqlalchemy import create_engine, text

from harness.identities import (
    IdentitySandbox,
    amqp_channel,
    command_environment,
    identity_sandbox,
    rabbit_with_management,
)
from harness.processes import ROOT
from order_contract import (
    DEAD_LETTER_QUEUE,
    GATEWAY,
    GENERATOR,
    HEARTBEAT_EXCHANGE,
    HEARTBEAT_QUEUE,
    ORDER_CREATED,
    ORDER_CREATED_QUEUE,
    PROCESSOR,
)
from order_pipeline.commands.provision import table_names
from order_pipeline.identities import EVENT_EXCHANGE, RPC_EXCHANGE, identity

ACCESS_REFUSED = 403
TABLE_ACCESS_DENIED = 1142
# Access denied at login: 1045, or 1698 when no password was given and the
# server answers as for an account it knows no password for (MariaDB picks
# one or the other by the accounts it matched; both refuse the login).
LOGIN_DENIED = {1045, 1698}


@pytest.fixture(scope="module")
def rabbit():
    with rabbit_with_management() as node:
        yield node


@pytest.fixture(scope="module")
def identities(rabbit):
    with identity_sandbox(rabbit) as sandbox:
        # The queues the services declare, as they would: declared here by
        # the node's administrator, so the tests below find them.
        with amqp_channel(sandbox.admin_amqp_uri()) as channel:
            channel.exchange_declare(RPC_EXCHANGE, "topic", durable=True, auto_delete=False)
            channel.exchange_declare(EVENT_EXCHANGE, "topic", durable=True, auto_delete=False)
            channel.exchange_declare(HEARTBEAT_EXCHANGE, "topic", durable=True, auto_delete=False)
            for queue in (
                ORDER_CREATED_QUEUE,
                DEAD_LETTER_QUEUE,
                f"rpc-{GENERATOR}",
                HEARTBEAT_QUEUE,
            ):
                channel.queue_declare(queue, durable=True, auto_delete=False)
            channel.queue_bind(ORDER_CREATED_QUEUE, EVENT_EXCHANGE, ORDER_CREATED)
            channel.queue_bind(f"rpc-{GENERATOR}", RPC_EXCHANGE, f"{GENERATOR}.*")
        yield sandbox


def refused(amqp_uri, action) -> str:
    """Run `action(channel)` as the user; the broker's refusal, or fail."""
    with amqp_channel(amqp_uri) as channel:
        try:
            action(channel)
            # A publish is not answered: a round trip makes its refusal arrive.
            channel.basic_qos(0, 1, False)
        except amqp.exceptions.AccessRefused as exc:
            assert exc.reply_code == ACCESS_REFUSED
            return exc.reply_text
    pytest.fail("the broker allowed it")


def allowed(amqp_uri, action):
    with amqp_channel(amqp_uri) as channel:
        result = action(channel)
        channel.basic_qos(0, 1, False)
        return result


def publish(exchange, routing_key, body="{}"):
    return lambda channel: channel.basic_publish(
        amqp.Message(body, content_type="application/json"),
        exchange=exchange,
        routing_key=routing_key,
    )


# --- the broker ------------------------------------------------------------------


def test_the_processor_may_not_stop_generation_only_confirm_orders(identities):
    processor = identities.amqp_uri("order_processor")
    reason = refused(processor, publish(RPC_EXCHANGE, f"{GENERATOR}.stop"))
    assert f"topic '{GENERATOR}.stop'" in reason
    refused(processor, publish(RPC_EXCHANGE, f"{GENERATOR}.create_orders"))
    allowed(processor, publish(RPC_EXCHANGE, f"{GENERATOR}.get_orders"))


def test_no_service_may_listen_in_on_another_services_calls(identities):
    processor = identities.amqp_uri("order_processor")
    mine = f"rpc.reply-order_processor-{uuid.uuid4()}"
    allowed(processor, lambda channel: channel.queue_declare(mine, durable=True, auto_delete=False))
    reason = refused(
        processor, lambda channel: channel.queue_bind(mine, RPC_EXCHANGE, f"{GENERATOR}.*")
    )
    assert "access to topic" in reason
    refused(processor, lambda channel: channel.queue_bind(mine, RPC_EXCHANGE, "#"))
    # Its own replies, under its reply key, it may bind.
    allowed(processor, lambda channel: channel.queue_bind(mine, RPC_EXCHANGE, str(uuid.uuid4())))


def test_the_gateway_may_not_consume_the_processors_queues_nor_publish_events(identities):
    gateway = identities.amqp_uri("order_gateway")
    reason = refused(gateway, lambda channel: channel.basic_consume(ORDER_CREATED_QUEUE))
    assert f"queue '{ORDER_CREATED_QUEUE}'" in reason
    refused(gateway, lambda channel: channel.basic_get(DEAD_LETTER_QUEUE))
    refused(gateway, publish(EVENT_EXCHANGE, ORDER_CREATED, '{"order_id": 1}'))
    # Nor reach a queue by name through the default exchange.
    refused(gateway, publish("", f"rpc-{GENERATOR}"))
    # What the console shows of those queues is a passive declare: allowed.
    depth = allowed(
        gateway, lambda channel: channel.queue_declare(ORDER_CREATED_QUEUE, passive=True)
    )
    assert depth.queue == ORDER_CREATED_QUEUE
    # And it may call the generator, start and stop included.
    allowed(gateway, publish(RPC_EXCHANGE, f"{GENERATOR}.stop"))


def test_each_service_sends_heartbeats_for_itself_only_and_the_processor_takes_them(identities):
    for name, service in (
        ("order_generator", GENERATOR),
        ("order_processor", PROCESSOR),
        ("order_gateway", GATEWAY),
    ):
        user = identities.amqp_uri(name)
        allowed(
            user,
            lambda channel: channel.exchange_declare(
                HEARTBEAT_EXCHANGE, "topic", durable=True, auto_delete=False
            ),
        )
        allowed(user, publish(HEARTBEAT_EXCHANGE, service))
        other = GATEWAY if service != GATEWAY else PROCESSOR
        assert f"topic '{other}'" in refused(user, publish(HEARTBEAT_EXCHANGE, other))
    gateway = identities.amqp_uri("order_gateway")
    refused(gateway, lambda channel: channel.basic_consume(HEARTBEAT_QUEUE))
    processor = identities.amqp_uri("order_processor")
    allowed(processor, lambda channel: channel.queue_bind(HEARTBEAT_QUEUE, HEARTBEAT_EXCHANGE, "*"))
    allowed(processor, lambda channel: channel.basic_get(HEARTBEAT_QUEUE))


def test_the_generator_may_publish_its_events_and_nothing_for_itself(identities):
    generator = identities.amqp_uri("order_generator")
    allowed(generator, publish(EVENT_EXCHANGE, ORDER_CREATED, '{"order_id": 1}'))
    refused(generator, publish(EVENT_EXCHANGE, "SomethingElse"))
    refused(generator, publish(RPC_EXCHANGE, f"{GENERATOR}.stop"))
    refused(generator, lambda channel: channel.basic_consume(ORDER_CREATED_QUEUE))


def test_an_unknown_user_or_a_wrong_password_cannot_connect(identities):
    for uri in (
        identities.amqp_uri("order_gateway", password="not-its-password"),
        identities.amqp_uri("order_gateway").replace(identities.prefix, "someone_else_", 1),
    ):
        with pytest.raises(amqp.exceptions.AccessRefused):
            with amqp_channel(uri):
                pass


# --- the database ----------------------------------------------------------------


def database_error(db_uri, statement):
    """The MariaDB error number `statement` fails with as that user."""
    engine = create_engine(db_uri, connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    except Exception as exc:
        orig = getattr(exc, "orig", None)
        assert isinstance(orig, pymysql.err.MySQLError), exc
        return orig.args[0]
    finally:
        engine.dispose()
    pytest.fail(f"the database ran {statement!r}")


def test_the_gateway_has_no_database_user(identities):
    for password in ("", identities.passwords["order_gateway", "AMQP"]):
        gateway = identities.db_uri("order_gateway", password=password)
        assert database_error(gateway, "SELECT 1") in LOGIN_DENIED


def test_the_processor_may_not_write_nor_read_the_generators_orders(identities):
    processor = identities.db_uri("order_processor")
    assert (
        database_error(processor, "INSERT INTO orders (quantity, created_at) VALUES (1, NOW())")
        == TABLE_ACCESS_DENIED
    )
    assert database_error(processor, "SELECT COUNT(*) FROM orders") == TABLE_ACCESS_DENIED
    assert database_error(processor, "DELETE FROM processing_totals") == TABLE_ACCESS_DENIED
    generator = identities.db_uri("order_generator")
    assert database_error(generator, "SELECT COUNT(*) FROM order_process") == TABLE_ACCESS_DENIED


def test_the_processor_may_add_to_the_audit_trail_and_read_it_but_never_change_it(identities):
    processor = identities.db_uri("order_processor")
    engine = create_engine(processor)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO dead_letter_audit (at, actor, action, scope, dead_letter_ids,"
                    " count, outcome, detail) VALUES (UTC_TIMESTAMP(6), 'control', 'replay',"
                    " 'all', '[]', 0, 'done', 'replayed 0')"
                )
            )
            assert connection.execute(text("SELECT COUNT(*) FROM dead_letter_audit")).scalar() == 1
    finally:
        engine.dispose()
    for statement in (
        "UPDATE dead_letter_audit SET actor = 'someone else'",
        "DELETE FROM dead_letter_audit",
        "TRUNCATE TABLE dead_letter_audit",
    ):
        assert database_error(processor, statement) == TABLE_ACCESS_DENIED, statement
    # The dead letters themselves it updates (replays, discards, edits).
    engine = create_engine(processor)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE dead_letters SET state = state"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", ["order_generator", "order_processor"])
def test_no_service_may_change_the_schema(identities, name):
    service = identities.db_uri(name)
    own_table = table_names(identity(name).database.package)[0]
    for statement in (
        "CREATE TABLE sneaked_in (id INT PRIMARY KEY)",
        f"ALTER TABLE {own_table} ADD COLUMN sneaked_in INT",
        f"DROP TABLE {own_table}",
        f"CREATE INDEX sneaked_in ON {own_table} (sneaked_in)",
    ):
        assert database_error(service, statement) == TABLE_ACCESS_DENIED, statement


def grants_of(identities, name):
    admin = create_engine(identities.db_admin_uri)
    try:
        with admin.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES "
                    "WHERE GRANTEE = :grantee AND TABLE_SCHEMA = :database"
                ),
                {"grantee": f"'{identities.user(name)}'@'%'", "database": identities.database},
            )
            return {(table, privilege) for table, privilege in rows}
    finally:
        admin.dispose()


def test_each_service_is_granted_its_models_tables_and_provisioning_again_takes_back_the_rest(
    identities,
):
    for name in ("order_generator", "order_processor"):
        grant = identity(name).database
        assert grants_of(identities, name) == {
            (table, privilege)
            for table in table_names(grant.package)
            for privilege in grant.privileges_on(table)
        }
    admin = create_engine(identities.db_admin_uri)
    processor = identities.user("order_processor")
    try:
        with admin.begin() as connection:
            connection.execute(text(f"GRANT SELECT ON orders TO '{processor}'@'%'"))
            connection.execute(text(f"GRANT DELETE ON processing_totals TO '{processor}'@'%'"))
    finally:
        admin.dispose()
    assert ("orders", "SELECT") in grants_of(identities, "order_processor")
    identities.provision(migrate=False)
    assert ("orders", "SELECT") not in grants_of(identities, "order_processor")
    assert ("processing_totals", "DELETE") not in grants_of(identities, "order_processor")
    assert (
        database_error(identities.db_uri("order_processor"), "SELECT * FROM orders")
        == TABLE_ACCESS_DENIED
    )


# --- the command -----------------------------------------------------------------


def test_the_command_prints_one_line_per_user_and_can_run_again(rabbit):
    sandbox = IdentitySandbox(rabbit)
    try:
        sandbox.make_vhost()
        command = [sys.executable, "-m", "order_pipeline.commands.provision", "--migrate"]
        command += ["--user-prefix", sandbox.prefix]
        env = command_environment(sandbox)
        first = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert first.returncode == 0, first.stderr
        users = [line for line in first.stdout.splitlines() if "user " in line]
        assert [line.split(":")[0] for line in users] == [
            f"broker user {sandbox.user('order_generator')}",
            f"broker user {sandbox.user('order_processor')}",
            f"broker user {sandbox.user('order_gateway')}",
            f"broker user {sandbox.user('order_operator')}",
            f"database user {sandbox.user('order_migrate')}",
            f"database user {sandbox.user('order_generator')}",
            f"database user {sandbox.user('order_processor')}",
        ]
        assert all(": created" in line for line in users), users
        again = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0, again.stderr
        assert [line for line in again.stdout.splitlines() if "user " in line] == [
            line.replace(": created", ": password set") for line in users
        ]
        # The users work with the passwords it was given.
        with amqp_channel(sandbox.amqp_uri("order_gateway")):
            pass
        engine = create_engine(sandbox.db_uri("order_generator"))
        try:
            with engine.connect() as connection:
                assert connection.execute(text("SELECT COUNT(*) FROM orders")).scalar() == 0
        finally:
            engine.dispose()
        # Without a password for each user it stops, naming the variable.
        del env["ORDER_PROCESSOR_DB_PASSWORD"]
        missing = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert missing.returncode == 1
        assert missing.stderr.strip().splitlines()[-1] == (
            "Error: ORDER_PROCESSOR_DB_PASSWORD is not set (nor ORDER_PROCESSOR_DB_PASSWORD_FILE)"
        )
    finally:
        sandbox.remove()
