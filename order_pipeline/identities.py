"""Who may do what: one broker user and one database user per service, an
operator for `make shell` and the operator commands, and a migration user.

This module is the table (`IDENTITIES`); `order_pipeline.commands.provision`
applies it, and docs/security.md says it in prose. Every name in it comes
from where the code gets it (nameko's queue templates, the contract's
service, event and queue names), and tests/unit/test_identities.py checks
the patterns against the names the code builds.

RabbitMQ (3.10, internal backend) checks, per vhost, a regular expression
for each of configure (declare, delete), write (publish; a queue.bind needs
write on the queue) and read (consume, basic.get; a queue.bind needs read on
the exchange). A passive queue.declare needs none of them, a queue declared
with a dead-letter exchange needs write on that exchange and read on the
queue itself, and the default exchange is checked as `amq.default` (not as
the queue a message is routed to). On a topic exchange, topic permissions
further check the routing key of a publish (write) and the binding key of a
queue.bind (read); an exchange a user has no topic permission for is not
checked at all, so every identity gets one for both of the project's
exchanges, `^$` where it has nothing to do there.

nameko's RPC: a request is published to `nameko-rpc` with the routing key
`<service>.<method>`; the service's queue is bound with `<service>.*`; the
reply goes to the same exchange with the caller's reply routing key, a
UUID, to which the caller's reply queue is bound.
"""

import re
from dataclasses import dataclass, field

from nameko.rpc import RPC_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TEMPLATE, get_rpc_exchange
from nameko.standalone.events import get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy

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

# --- names, as patterns ------------------------------------------------------

UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RPC_EXCHANGE = get_rpc_exchange({}).name  # nameko-rpc
EVENT_EXCHANGE = get_event_exchange(GENERATOR, {}).name  # order_generator.events
DEFAULT_EXCHANGE = "amq.default"
# The reply queue of a standalone proxy (`nameko shell`), and of the health
# probe, which names its own (order_pipeline.commands.probe).
STANDALONE = ClusterRpcProxy.ServiceContainer.service_name
PROBE = "probe"


def exactly(name: str) -> str:
    return re.escape(name)


def rpc_queue(service: str) -> str:
    return exactly(RPC_QUEUE_TEMPLATE.format(service))


def reply_queue(owner: str) -> str:
    """`rpc.reply-<owner>-<uuid>`: the reply queue of a caller."""
    prefix, _, suffix = RPC_REPLY_QUEUE_TEMPLATE.format(owner, "\0").partition("\0")
    return exactly(prefix) + UUID + exactly(suffix)


def calls(service: str, *methods: str) -> str:
    """The routing key of a request to `service.method` (any method if none
    is named)."""
    method = "(" + "|".join(map(exactly, methods)) + ")" if methods else "[a-z_]+"
    return exactly(service + ".") + method


def serves(service: str) -> str:
    """The key `service`'s RPC queue is bound with."""
    return exactly(f"{service}.*")


REPLY_KEY = UUID
EVENT_QUEUE = exactly(ORDER_CREATED_QUEUE)
# Every instance's heartbeats (order_pipeline.extensions.heartbeats): each
# service declares the exchange and publishes with its own name as the
# routing key; the processors' queue is bound with `*`.
HEARTBEATS = exactly(HEARTBEAT_EXCHANGE)
HEARTBEAT_BINDING = exactly("*")
HEARTBEAT_QUEUE_NAME = exactly(HEARTBEAT_QUEUE)
RETRY_QUEUES = EVENT_QUEUE + r"\.retry\.[0-9]+ms"
DEAD_LETTERS = exactly(DEAD_LETTER_QUEUE)
# What `make recreate-queues` declares: the project's durable queues, and
# each one's temporary copy (order_pipeline/commands/recreate_queues.py).
PROJECT_QUEUES = (
    "("
    + "|".join(
        [
            rpc_queue(GENERATOR),
            rpc_queue(PROCESSOR),
            EVENT_QUEUE,
            RETRY_QUEUES,
            DEAD_LETTERS,
            HEARTBEAT_QUEUE_NAME,
        ]
    )
    + r")(\.recreating)?"
)


def any_of(patterns) -> str:
    """One anchored regular expression matching exactly the alternatives."""
    patterns = list(patterns)
    return "^(" + "|".join(patterns) + ")$" if patterns else "^$"


# --- the grants ----------------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    """Routing keys a user may publish (write) and bind with (read) on one
    topic exchange."""

    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()


@dataclass(frozen=True)
class BrokerGrant:
    """A broker user's permissions in the vhost: resource names (each a
    pattern) it may configure, write and read, and its topic permissions."""

    configure: tuple[str, ...]
    write: tuple[str, ...]
    read: tuple[str, ...]
    topics: dict[str, Topics] = field(default_factory=dict)

    def permissions(self) -> dict[str, str]:
        return {
            "configure": any_of(self.configure),
            "write": any_of(self.write),
            "read": any_of(self.read),
        }

    def topic_permissions(self) -> dict[str, dict[str, str]]:
        """{exchange: {"write": regex, "read": regex}} for each of the
        project's topic exchanges."""
        return {
            exchange: {
                "write": any_of(self.topics.get(exchange, Topics()).write),
                "read": any_of(self.topics.get(exchange, Topics()).read),
            }
            for exchange in (RPC_EXCHANGE, EVENT_EXCHANGE, HEARTBEAT_EXCHANGE)
        }


@dataclass(frozen=True)
class DatabaseGrant:
    """A database user's privileges: on every table of `package`'s models,
    or on the whole database (`package` None). On the tables named in
    `append_only`, only APPEND_ONLY: rows are added and read, never changed
    or deleted, whatever the code does. On the tables named in
    `deletes_from`, DELETE too (retention), and on no other."""

    privileges: tuple[str, ...]
    package: str | None = None
    append_only: tuple[str, ...] = ()
    deletes_from: tuple[str, ...] = ()

    def privileges_on(self, table: str) -> tuple[str, ...]:
        if table in self.append_only:
            return tuple(p for p in self.privileges if p in APPEND_ONLY)
        if table in self.deletes_from:
            return (*self.privileges, "DELETE")
        return self.privileges


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    broker: BrokerGrant | None = None
    database: DatabaseGrant | None = None


GENERATOR_BROKER = BrokerGrant(
    # Its RPC and reply queues (and the exchange nameko declares with them),
    # its events' exchange, the heartbeats' exchange, and the reply queue of
    # its container's health probe.
    configure=(
        exactly(RPC_EXCHANGE),
        exactly(EVENT_EXCHANGE),
        HEARTBEATS,
        rpc_queue(GENERATOR),
        reply_queue(GENERATOR),
        reply_queue(PROBE),
    ),
    write=(
        exactly(RPC_EXCHANGE),
        exactly(EVENT_EXCHANGE),
        HEARTBEATS,
        rpc_queue(GENERATOR),
        reply_queue(GENERATOR),
        reply_queue(PROBE),
    ),
    read=(
        exactly(RPC_EXCHANGE),
        rpc_queue(GENERATOR),
        reply_queue(GENERATOR),
        reply_queue(PROBE),
    ),
    topics={
        # Replies; retention asks which old orders have results
        # (`processed_order_ids`, a read); the probe's `status`, a read.
        RPC_EXCHANGE: Topics(
            write=(REPLY_KEY, calls(PROCESSOR, "processed_order_ids"), calls(GENERATOR, "status")),
            read=(serves(GENERATOR), REPLY_KEY),
        ),
        EVENT_EXCHANGE: Topics(write=(exactly(ORDER_CREATED),)),
        HEARTBEAT_EXCHANGE: Topics(write=(exactly(GENERATOR),)),
    },
)

PROCESSOR_BROKER = BrokerGrant(
    # Its RPC and reply queues, the OrderCreated queue with its retry and
    # dead-letter queues, the heartbeats' queue, the three exchanges
    # (declared with the queues bound to them), and the probe's reply queue.
    configure=(
        exactly(RPC_EXCHANGE),
        exactly(EVENT_EXCHANGE),
        HEARTBEATS,
        HEARTBEAT_QUEUE_NAME,
        rpc_queue(PROCESSOR),
        reply_queue(PROCESSOR),
        EVENT_QUEUE,
        RETRY_QUEUES,
        DEAD_LETTERS,
        reply_queue(PROBE),
    ),
    # The default exchange: retries, dead letters and replays are published
    # to a queue by name (and the retry queues dead-letter through it).
    write=(
        exactly(RPC_EXCHANGE),
        exactly(DEFAULT_EXCHANGE),
        HEARTBEATS,
        HEARTBEAT_QUEUE_NAME,
        rpc_queue(PROCESSOR),
        reply_queue(PROCESSOR),
        EVENT_QUEUE,
        reply_queue(PROBE),
    ),
    read=(
        exactly(RPC_EXCHANGE),
        exactly(EVENT_EXCHANGE),
        HEARTBEATS,
        HEARTBEAT_QUEUE_NAME,
        rpc_queue(PROCESSOR),
        reply_queue(PROCESSOR),
        EVENT_QUEUE,
        RETRY_QUEUES,
        DEAD_LETTERS,
        reply_queue(PROBE),
    ),
    topics={
        # It confirms orders (get_orders); replies; the probe's `metrics`.
        RPC_EXCHANGE: Topics(
            write=(calls(GENERATOR, "get_orders"), REPLY_KEY, calls(PROCESSOR, "metrics")),
            read=(serves(PROCESSOR), REPLY_KEY),
        ),
        EVENT_EXCHANGE: Topics(read=(exactly(ORDER_CREATED),)),
        HEARTBEAT_EXCHANGE: Topics(write=(exactly(PROCESSOR),), read=(HEARTBEAT_BINDING,)),
    },
)

GATEWAY_BROKER = BrokerGrant(
    # Its reply queue, and the heartbeats' exchange. The console's queue
    # figures are passive declares, which need no permission.
    configure=(exactly(RPC_EXCHANGE), HEARTBEATS, reply_queue(GATEWAY)),
    write=(exactly(RPC_EXCHANGE), HEARTBEATS, reply_queue(GATEWAY)),
    read=(exactly(RPC_EXCHANGE), reply_queue(GATEWAY)),
    topics={
        # Any method of either service: it is where control (start, stop,
        # creates, dead-letter actions) comes in, behind its token.
        RPC_EXCHANGE: Topics(write=(calls(GENERATOR), calls(PROCESSOR)), read=(REPLY_KEY,)),
        HEARTBEAT_EXCHANGE: Topics(write=(exactly(GATEWAY),)),
    },
)

OPERATOR_BROKER = BrokerGrant(
    # `make shell` and the probe (reply queues), and `make recreate-queues`
    # (the project's queues, their bindings, moving messages through the
    # default exchange).
    configure=(
        exactly(RPC_EXCHANGE),
        exactly(EVENT_EXCHANGE),
        HEARTBEATS,
        reply_queue(STANDALONE),
        reply_queue(PROBE),
        PROJECT_QUEUES,
    ),
    write=(
        exactly(RPC_EXCHANGE),
        exactly(DEFAULT_EXCHANGE),
        reply_queue(STANDALONE),
        reply_queue(PROBE),
        PROJECT_QUEUES,
    ),
    read=(
        exactly(RPC_EXCHANGE),
        exactly(EVENT_EXCHANGE),
        HEARTBEATS,
        reply_queue(STANDALONE),
        reply_queue(PROBE),
        PROJECT_QUEUES,
    ),
    topics={
        RPC_EXCHANGE: Topics(
            write=(calls(GENERATOR), calls(PROCESSOR)),
            read=(REPLY_KEY, serves(GENERATOR), serves(PROCESSOR)),
        ),
        EVENT_EXCHANGE: Topics(read=(exactly(ORDER_CREATED),)),
        HEARTBEAT_EXCHANGE: Topics(read=(HEARTBEAT_BINDING,)),
    },
)

# The statements each service's code runs (its store.py): the generator
# deletes outbox rows, expired idempotency keys and, with retention, old
# orders; the processor inserts and upserts, and deletes only old results
# (PROCESSOR_DELETES_FROM), with retention. SELECT ... FOR UPDATE (the tick claim, the outbox)
# needs SELECT on MariaDB (MySQL 8 also wants UPDATE, which it has).
# tests/unit/test_identities.py checks these against the code.
GENERATOR_STATEMENTS = ("SELECT", "INSERT", "UPDATE", "DELETE")
PROCESSOR_STATEMENTS = ("SELECT", "INSERT", "UPDATE")
# A table kept as a record (the dead letters' audit trail): its service may
# add rows and read them, and the database refuses it anything else.
APPEND_ONLY = ("SELECT", "INSERT")
PROCESSOR_APPEND_ONLY = ("dead_letter_audit",)
PROCESSOR_DELETES_FROM = ("order_process",)
# Migrations: DDL, and the data and version rows they write. CREATE on the
# database also lets it create the database itself.
MIGRATION_PRIVILEGES = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "ALTER",
    "DROP",
    "INDEX",
    "REFERENCES",
)

IDENTITIES = (
    Identity(
        "order_generator",
        "the generator",
        broker=GENERATOR_BROKER,
        database=DatabaseGrant(GENERATOR_STATEMENTS, package="generator_service"),
    ),
    Identity(
        "order_processor",
        "the processor",
        broker=PROCESSOR_BROKER,
        database=DatabaseGrant(
            PROCESSOR_STATEMENTS,
            package="processor_service",
            append_only=PROCESSOR_APPEND_ONLY,
            deletes_from=PROCESSOR_DELETES_FROM,
        ),
    ),
    Identity("order_gateway", "the gateway", broker=GATEWAY_BROKER),
    Identity("order_operator", "make shell and the operator commands", broker=OPERATOR_BROKER),
    Identity("order_migrate", "the migrations", database=DatabaseGrant(MIGRATION_PRIVILEGES)),
)


def identity(name: str) -> Identity:
    return next(each for each in IDENTITIES if each.name == name)
