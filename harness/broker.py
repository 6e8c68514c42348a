"""The broker as the tests and the benchmark see it: the processor's event
queues, how many messages they hold, the messages themselves (taken off a
queue), and OrderCreated events published from outside the generator (to
build a backlog, duplicate an event, or send a malformed one)."""

import json
import subprocess
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from kombu import Producer
from nameko.constants import PERSISTENT
from nameko.standalone.events import get_event_exchange

from order_contract import GENERATOR, ORDER_CREATED, ORDER_CREATED_QUEUE
from order_pipeline.broker import connect

# The processor's OrderCreated queue, by the name the tests have always used.
HANDLER_QUEUE = ORDER_CREATED_QUEUE


def vhost_of(amqp_uri):
    """The vhost of an AMQP_URI (of its first node, if it lists several)."""
    return unquote(urlsplit(amqp_uri.split(";")[0]).path[1:]) or "/"


def event_exchange(source=GENERATOR):
    """The exchange the `source` service's events are published to."""
    return get_event_exchange(source, {})


def queue_depth(amqp_uri, queue_name):
    """Messages ready on a queue (0 if it does not exist; a passive
    declare creates nothing)."""
    with connect(amqp_uri, connect_timeout=5) as connection:
        channel = connection.channel()
        try:
            return channel.queue_declare(queue=queue_name, passive=True).message_count
        except Exception as exc:
            if getattr(exc, "code", None) == 404:
                return 0
            raise


class Taken(NamedTuple):
    """A message taken off a queue: its body as text, and its headers."""

    body: str
    headers: dict

    @property
    def payload(self):
        """The body as JSON."""
        return json.loads(self.body)


def take_messages(amqp_uri, queue_name):
    """Take every message waiting on a queue (they are gone afterwards):
    [Taken], in the queue's order."""
    taken = []
    with connect(amqp_uri, connect_timeout=5) as connection:
        channel = connection.channel()
        while (message := channel.basic_get(queue_name, no_ack=True)) is not None:
            body = message.body
            text = body.decode("utf-8") if isinstance(body, bytes) else body
            taken.append(Taken(text, dict(message.headers or {})))
    return taken


def local_rabbitmqctl(*args):
    """`rabbitmqctl -q ARGS` on the machine's node; its standard output."""
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def list_queues(amqp_uri, rabbitmqctl=local_rabbitmqctl):
    """{queue: messages ready or unacknowledged} in the vhost."""
    listing = rabbitmqctl(
        "list_queues", "-p", vhost_of(amqp_uri), "name", "messages", "--no-table-headers"
    )
    rows = (line.split("\t") for line in listing.splitlines() if "\t" in line)
    return {name: int(count) for name, count in rows}


def queue_properties(amqp_uri, rabbitmqctl_args=()):
    """{queue: {"type", "arguments", "durable", "auto_delete", "exclusive",
    "messages", "leader", "members"}} for every queue in the vhost, from
    `rabbitmqctl list_queues` (on this machine's node; `rabbitmqctl_args`
    such as ["-n", "rabbit1@host"] ask another), `arguments` as a plain
    dict. `leader` (a node name) and `members` (a list) are those of a
    quorum queue; "" and [] for a classic one. `messages` may lag a moment
    for a quorum queue: `queue_depth` asks the queue itself."""
    listing = subprocess.run(
        [
            "rabbitmqctl",
            *rabbitmqctl_args,
            "-q",
            "list_queues",
            "-p",
            vhost_of(amqp_uri),
            "name",
            "type",
            "arguments",
            "durable",
            "auto_delete",
            "exclusive",
            "messages",
            "leader",
            "members",
            "--formatter",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    queues = {}
    for row in json.loads(listing or "[]"):
        row["arguments"] = {name: value for name, _, value in row["arguments"]}
        # A quorum queue has no exclusive owner: rabbitmqctl says "".
        row["exclusive"] = row["exclusive"] is True
        row["members"] = row["members"] or []
        queues[row.pop("name")] = row
    return queues


def handler_queue_messages(amqp_uri):
    """{queue: messages} for the processor's event queue and its retry and
    dead-letter queues."""
    return {
        name: count
        for name, count in list_queues(amqp_uri).items()
        if name.startswith(HANDLER_QUEUE)
    }


def order_created_queues(amqp_uri, rabbitmqctl=local_rabbitmqctl, source=GENERATOR):
    """Names of the queues bound to the generator's exchange (or that of the
    `source` service) for OrderCreated (whatever consumer declared them),
    from `rabbitmqctl list_bindings` (`rabbitmqctl`: a function that runs it
    on the right broker)."""
    listing = rabbitmqctl(
        "list_bindings",
        "-p",
        vhost_of(amqp_uri),
        "--no-table-headers",
        "source_name",
        "destination_kind",
        "destination_name",
        "routing_key",
    )
    queues = set()
    for line in listing.splitlines():
        fields = line.split("\t")
        if (
            len(fields) == 4
            and fields[0] == event_exchange(source).name
            and fields[1] == "queue"
            and fields[3] == ORDER_CREATED
        ):
            queues.add(fields[2])
    return sorted(queues)


def publish_order_created(
    amqp_uri, bodies, content_type="application/json", confirm=True, source=GENERATOR
):
    """Publish each body as an OrderCreated event to the generator's
    exchange (or that of the `source` service), persistent, as the generator
    does: a payload such as `{"order_id": 7}` is sent as JSON; with another
    `content_type`, `bodies` are sent as they are (malformed events).
    Unconfirmed publishing is faster; the caller then checks the queue
    depth."""
    exchange = event_exchange(source)
    transport_options = {"confirm_publish": True} if confirm else {}
    with connect(amqp_uri, transport_options=transport_options) as connection:
        producer = Producer(connection.channel(), exchange=exchange)
        for body in bodies:
            options = (
                {"serializer": "json"}
                if content_type == "application/json" and not isinstance(body, (str, bytes))
                else {"content_type": content_type, "content_encoding": "utf-8"}
            )
            producer.publish(
                body,
                routing_key=ORDER_CREATED,
                delivery_mode=PERSISTENT,
                declare=[exchange],
                retry=True,
                **options,
            )
