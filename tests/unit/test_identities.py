"""The identity table (order_pipeline/identities.py) against the names the
code builds and the calls and statements the code makes, and the provision
command's inputs. What the broker and the database then allow and refuse
is tests/integration/test_identities.py."""

import ast
import re
import uuid
from pathlib import Path

import pytest
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE

from harness.processes import CONFIG, ROOT
from order_contract import (
    DEAD_LETTER_QUEUE,
    GATEWAY,
    GENERATOR,
    HEARTBEAT_EXCHANGE,
    HEARTBEAT_QUEUE,
    PROCESSOR,
)
from order_pipeline.commands.provision import password_variable, read_inputs, table_names
from order_pipeline.commands.recreate_queues import TEMPORARY_SUFFIX, project_queues
from order_pipeline.config import load_config
from order_pipeline.errors import StartupError
from order_pipeline.extensions.heartbeats import heartbeat_queue
from order_pipeline.identities import (
    EVENT_EXCHANGE,
    IDENTITIES,
    PROBE,
    RPC_EXCHANGE,
    STANDALONE,
    identity,
)

GENERATOR_USER, PROCESSOR_USER = identity("order_generator"), identity("order_processor")
GATEWAY_USER, OPERATOR_USER = identity("order_gateway"), identity("order_operator")
SERVICES = (GENERATOR_USER, PROCESSOR_USER, GATEWAY_USER)
# What only the gateway and the operator may call.
CONTROL = [
    f"{GENERATOR}.{method}"
    for method in ("start", "stop", "create_order", "create_orders", "create_order_once")
] + [
    f"{PROCESSOR}.{method}"
    for method in (
        "replay_dead_letters",
        "discard_dead_letters",
        "replay_dead_letter_group",
        "discard_dead_letter_group",
        "edit_dead_letter",
    )
]


def allows(pattern: str, name: str) -> bool:
    # RabbitMQ matches a permission's regular expression anywhere in the
    # name (re:run); every pattern here is anchored.
    return re.search(pattern, name) is not None


def reply_queue_of(owner):
    return RPC_REPLY_QUEUE_TEMPLATE.format(owner, uuid.uuid4())


def may(user, permission, name):
    return allows(user.broker.permissions()[permission], name)


def may_publish(user, routing_key, exchange=RPC_EXCHANGE):
    return allows(user.broker.topic_permissions()[exchange]["write"], routing_key)


def may_bind(user, binding_key, exchange=RPC_EXCHANGE):
    return allows(user.broker.topic_permissions()[exchange]["read"], binding_key)


def test_each_pattern_is_anchored():
    for user in IDENTITIES:
        if user.broker is None:
            continue
        patterns = list(user.broker.permissions().values()) + [
            keys[kind] for keys in user.broker.topic_permissions().values() for kind in keys
        ]
        for pattern in patterns:
            assert pattern.startswith("^") and pattern.endswith("$"), (user.name, pattern)


def test_each_service_may_declare_bind_and_read_the_queues_its_code_declares():
    config = load_config(CONFIG)
    names = {queue.name for queue in project_queues(config)}
    processor_queues = {name for name in names if not name.startswith("rpc-")}
    probe_queue = reply_queue_of(PROBE)  # one name: the probe may run in any container
    own = {
        "order_generator": {f"rpc-{GENERATOR}", reply_queue_of(GENERATOR), probe_queue},
        "order_processor": {
            f"rpc-{PROCESSOR}",
            reply_queue_of(PROCESSOR),
            probe_queue,
            *processor_queues,
        },
        "order_gateway": {reply_queue_of(GATEWAY)},
        "order_operator": {
            reply_queue_of(STANDALONE),
            probe_queue,
            *names,
            *(name + TEMPORARY_SUFFIX for name in names),
        },
    }
    everyone = set().union(*own.values())
    for user_name, queues in own.items():
        user = identity(user_name)
        for name in queues:
            assert may(user, "configure", name), (user.name, name)
        for name in everyone - queues:
            assert not may(user, "configure", name), (user.name, name)
            assert not may(user, "read", name), (user.name, name)
    # Consuming: each reads what it consumes, and nobody else's.
    assert may(PROCESSOR_USER, "read", DEAD_LETTER_QUEUE)
    assert not may(GATEWAY_USER, "read", DEAD_LETTER_QUEUE)
    # Every caller and service may use the RPC exchange; only the generator
    # publishes to its events' exchange, which only the processor reads.
    for user in (*SERVICES, OPERATOR_USER):
        assert may(user, "write", RPC_EXCHANGE) and may(user, "read", RPC_EXCHANGE)
    assert may(GENERATOR_USER, "write", EVENT_EXCHANGE)
    assert [user.name for user in SERVICES if may(user, "read", EVENT_EXCHANGE)] == [
        "order_processor"
    ]
    # The default exchange (publishing to any queue by name): the processor
    # (retries, dead letters, replays) and the operator (recreate-queues).
    assert [
        user.name for user in IDENTITIES if user.broker and may(user, "write", "amq.default")
    ] == [
        "order_processor",
        "order_operator",
    ]


def test_only_the_gateway_and_the_operator_may_call_the_control_methods():
    for key in CONTROL:
        callers = [user.name for user in IDENTITIES if user.broker and may_publish(user, key)]
        assert callers == ["order_gateway", "order_operator"], key


def test_the_services_call_only_what_they_use_and_reply_to_anyone():
    reply = str(uuid.uuid4())
    assert may_publish(PROCESSOR_USER, f"{GENERATOR}.get_orders")
    assert not may_publish(PROCESSOR_USER, f"{GENERATOR}.get_order")
    # Retention: the generator asks which old orders have results, a read.
    assert may_publish(GENERATOR_USER, f"{PROCESSOR}.processed_order_ids")
    assert not may_publish(GENERATOR_USER, f"{PROCESSOR}.replay_dead_letters")
    for user in (GENERATOR_USER, PROCESSOR_USER):
        assert may_publish(user, reply)
    assert not may_publish(GATEWAY_USER, reply)
    # Its container's health probe (compose, Kubernetes): one read-only
    # method of its own, and nothing else of its own.
    assert may_publish(GENERATOR_USER, f"{GENERATOR}.status")
    assert not may_publish(GENERATOR_USER, f"{GENERATOR}.get_orders")
    assert may_publish(PROCESSOR_USER, f"{PROCESSOR}.metrics")
    assert not may_publish(PROCESSOR_USER, f"{PROCESSOR}.dead_letters")
    # Binding: a service binds its own RPC queue, callers their reply queue.
    assert may_bind(GENERATOR_USER, f"{GENERATOR}.*")
    assert may_bind(GATEWAY_USER, reply)
    assert not may_bind(PROCESSOR_USER, f"{GENERATOR}.*")
    assert not may_bind(GATEWAY_USER, f"{PROCESSOR}.*")
    assert not any(may_bind(user, "#") for user in IDENTITIES if user.broker)


def test_each_service_beats_under_its_own_name_and_only_the_processor_takes_the_beats():
    for user, own in (
        (GENERATOR_USER, GENERATOR),
        (PROCESSOR_USER, PROCESSOR),
        (GATEWAY_USER, GATEWAY),
    ):
        assert may(user, "configure", HEARTBEAT_EXCHANGE) and may(user, "write", HEARTBEAT_EXCHANGE)
        for service in (GENERATOR, PROCESSOR, GATEWAY):
            assert may_publish(user, service, HEARTBEAT_EXCHANGE) == (service == own), (
                user,
                service,
            )
    takers = [
        user.name for user in IDENTITIES if user.broker and may(user, "read", HEARTBEAT_QUEUE)
    ]
    assert takers == ["order_processor", "order_operator"]  # the operator: recreate-queues
    binding = heartbeat_queue("classic").routing_key
    assert may_bind(PROCESSOR_USER, binding, HEARTBEAT_EXCHANGE)
    assert not may_bind(GATEWAY_USER, binding, HEARTBEAT_EXCHANGE)
    assert not any(may_bind(user, "#", HEARTBEAT_EXCHANGE) for user in IDENTITIES if user.broker)


def rpc_calls_in(package: str, proxy: str) -> set[str]:
    """Methods named as `<anything>.<proxy>.<method>` in a package (called
    there, or handed on to be called)."""
    calls = set()
    for path in Path(ROOT, package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == proxy
            ):
                calls.add(node.attr)
    return calls


def test_the_processor_is_allowed_exactly_the_calls_its_code_makes():
    called = rpc_calls_in("processor_service", GENERATOR)
    assert called == {"get_orders"}
    assert all(may_publish(PROCESSOR_USER, f"{GENERATOR}.{method}") for method in called)


def test_the_generator_is_allowed_exactly_the_calls_its_code_makes():
    called = rpc_calls_in("generator_service", PROCESSOR)
    assert called == {"processed_order_ids"}
    assert all(may_publish(GENERATOR_USER, f"{PROCESSOR}.{method}") for method in called)


# What marks each statement in a service's code (SQLAlchemy or SQL text).
STATEMENT_MARKS = {
    "INSERT": [r"\binsert\(\s*[A-Z]", r"INSERT\s+(IGNORE\s+)?INTO", r"\.add(_all)?\("],
    "UPDATE": [r"\bupdate\(\s*[A-Z]", r"\bUPDATE\s+\w+\s+SET", r"on_duplicate_key_update"],
    "DELETE": [r"\bdelete\(\s*[A-Z]", r"DELETE\s+FROM", r"session\.delete\("],
}


def statements_in(package: str) -> set[str]:
    found = {"SELECT"}
    for path in Path(ROOT, package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = path.read_text()
        for statement, marks in STATEMENT_MARKS.items():
            if any(re.search(mark, source) for mark in marks):
                found.add(statement)
    return found


@pytest.mark.parametrize("user", [GENERATOR_USER, PROCESSOR_USER], ids=lambda user: user.name)
def test_each_service_is_granted_the_statements_its_code_runs_and_no_more(user):
    runs = statements_in(user.database.package)
    granted = set(user.database.privileges) | ({"DELETE"} if user.database.deletes_from else set())
    assert granted == runs, (
        f"{user.database.package} runs {sorted(runs)}: make its statements in "
        "order_pipeline/identities.py say so (and docs/security.md)"
    )


def test_the_audit_trail_is_append_only_in_the_grants_and_in_the_code():
    grant = PROCESSOR_USER.database
    assert grant.append_only == ("dead_letter_audit",)
    assert set(grant.append_only) <= set(table_names(grant.package))
    assert grant.privileges_on("dead_letter_audit") == ("SELECT", "INSERT")
    assert grant.privileges_on("dead_letters") == grant.privileges
    assert "DELETE" not in grant.privileges_on("dead_letters")
    # Nothing in the processor's code would need more: no UPDATE or DELETE
    # statement names the audit table or its model.
    changes = re.compile(
        r"(update|delete)\(\s*DeadLetterAudit|(UPDATE|DELETE\s+FROM)\s+dead_letter_audit", re.I
    )
    for path in Path(ROOT, "processor_service").rglob("*.py"):
        if "migrations" not in path.parts:
            assert not changes.search(path.read_text()), path


def test_the_processor_may_delete_from_order_process_only():
    grant = PROCESSOR_USER.database
    assert "DELETE" not in grant.privileges
    deletable = [t for t in table_names(grant.package) if "DELETE" in grant.privileges_on(t)]
    assert deletable == ["order_process"]
    deletes = re.compile(r"delete\(\s*(\w+)|DELETE\s+FROM\s+(\w+)")
    for path in Path(ROOT, "processor_service").rglob("*.py"):
        if "migrations" not in path.parts:
            for match in deletes.finditer(path.read_text()):
                assert (match.group(1) or match.group(2)) in {"OrderProcess", "order_process"}, path


def test_the_grants_name_every_table_of_the_services_models():
    assert table_names("generator_service") == sorted(
        ["orders", "order_outbox", "generator_state", "order_counts", "idempotency_keys"]
    )
    assert set(table_names("processor_service")) >= {
        "order_process",
        "processing_totals",
        "latency_histogram",
        "events_set_aside",
        "service_instances",
        "handling_seconds",
    }
    assert not set(table_names("generator_service")) & set(table_names("processor_service"))


def test_the_gateway_and_the_operator_have_no_database_user_and_only_migrations_change_the_schema():
    database_users = [user.name for user in IDENTITIES if user.database]
    assert database_users == ["order_generator", "order_processor", "order_migrate"]
    ddl = {"CREATE", "ALTER", "DROP", "INDEX", "REFERENCES"}
    assert [
        user.name for user in IDENTITIES if user.database and ddl & set(user.database.privileges)
    ] == ["order_migrate"]


# --- the command's inputs ---------------------------------------------------------

ADMIN = {
    "RABBITMQ_ADMIN_URL": "http://admin:secret@rabbitmq:15672/",
    "DB_ADMIN_URI": "mysql+pymysql://root:secret@db:3306/orders",
}


def all_passwords():
    return {
        password_variable(user.name, system): f"{user.name}-{system}-secret"
        for user in IDENTITIES
        for system, grant in (("AMQP", user.broker), ("DB", user.database))
        if grant is not None
    }


def test_every_password_is_required_and_named_when_missing():
    environ = {**ADMIN, **all_passwords()}
    inputs = read_inputs(environ)
    assert inputs.passwords["order_gateway", "AMQP"] == "order_gateway-AMQP-secret"
    assert inputs.vhost == "/"
    for variable in all_passwords():
        with pytest.raises(StartupError) as error:
            read_inputs({key: value for key, value in environ.items() if key != variable})
        assert str(error.value) == f"{variable} is not set (nor {variable}_FILE)"
    with pytest.raises(StartupError, match="RABBITMQ_ADMIN_URL is not set"):
        read_inputs(all_passwords())


def test_a_password_may_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    environ = {**ADMIN, **all_passwords()}
    del environ["ORDER_MIGRATE_DB_PASSWORD"]
    environ["ORDER_MIGRATE_DB_PASSWORD_FILE"] = str(secret)
    assert read_inputs(environ).passwords["order_migrate", "DB"] == "from-a-file"


def test_local_development_makes_up_only_what_is_missing_and_only_on_this_machine():
    inputs = read_inputs({"ORDER_GATEWAY_AMQP_PASSWORD": "chosen"}, local_dev=True)
    assert inputs.passwords["order_gateway", "AMQP"] == "chosen"
    assert inputs.passwords["order_processor", "DB"] == "order_processor"
    assert inputs.rabbitmq_admin_url == "http://guest:guest@localhost:15672/"
    with pytest.raises(StartupError, match="--local-dev is for .* DB_ADMIN_URI points elsewhere"):
        read_inputs({"DB_ADMIN_URI": ADMIN["DB_ADMIN_URI"]}, local_dev=True)
