"""The bench's view of the broker: which queues receive OrderCreated, how
many messages they hold, and publishing OrderCreated as the generator does."""
import subprocess

from kombu import Connection, Producer
from nameko.constants import PERSISTENT
from nameko.standalone.events import get_event_exchange

from generator_service.events import ORDER_CREATED, SERVICE_NAME, order_created_payload


def event_exchange():
    return get_event_exchange(SERVICE_NAME, {})


def order_created_queues(amqp_uri):
    """Names of the queues bound to the generator's exchange for OrderCreated
    (whatever consumer declared them), from `rabbitmqctl list_bindings`."""
    vhost = amqp_uri.rsplit("/", 1)[1]
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_bindings", "-p", vhost, "--no-table-headers",
         "source_name", "destination_kind", "destination_name", "routing_key"],
        check=True, capture_output=True, text=True, timeout=60).stdout
    queues = set()
    for line in listing.splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[0] == event_exchange().name \
                and fields[1] == "queue" and fields[3] == ORDER_CREATED:
            queues.add(fields[2])
    return sorted(queues)


def queue_depth(amqp_uri, queue_name):
    """Messages ready in a queue (a passive declare: nothing is created)."""
    with Connection(amqp_uri) as connection:
        _, depth, _ = connection.default_channel.queue_declare(queue_name, passive=True)
        return depth


def publish_order_created(amqp_uri, order_ids):
    """Publish OrderCreated for each id to the generator's event exchange,
    persistent and JSON like the generator's own publisher. Unconfirmed
    for speed: the caller checks the queue depth afterwards."""
    with Connection(amqp_uri) as connection:
        producer = Producer(connection.default_channel, exchange=event_exchange())
        for order_id in order_ids:
            producer.publish(
                order_created_payload(order_id), routing_key=ORDER_CREATED,
                delivery_mode=PERSISTENT, serializer="json", retry=False)
