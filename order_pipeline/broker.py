"""The broker as every part of the pipeline reaches it: one or several
RabbitMQ nodes in AMQP_URI, a start-up check that one of them answers, and
URIs shown without their passwords.

AMQP_URI may list the nodes of a cluster separated by `;`, each a whole URI
with its own vhost (`amqp://u:p@h1:5672/v;amqp://u:p@h2:5672/v`): kombu's
Connection takes the list as it is, connects to the first node that
answers, and on a lost connection moves on to the next (round robin).
"""

import re

from kombu import Connection

from order_pipeline.errors import StartupError
from order_pipeline.settings import amqp_uri as read_amqp_uri

MASK = "********"
# `scheme://user:password@`: the password ends at the last `@` before the
# host, and a URI list has one such part per node.
_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@;\s]*):[^@/;\s]*@")


def mask_uri(text: str) -> str:
    """`text` with the password of every URI in it replaced by ********:
    a single URI, a `;`-separated list of them, or a log line quoting one."""
    return _CREDENTIALS.sub(rf"\g<head>:{MASK}@", text)


def nodes(uri: str) -> list[str]:
    """The URI of each node in `uri`, in order."""
    return [part.strip() for part in uri.split(";") if part.strip()]


def node_count(uri: str) -> int:
    return len(nodes(uri))


def starting_at(uri: str, index: int) -> str:
    """`uri` with its nodes rotated so that node `index` (modulo their
    number) comes first: kombu tries the nodes in the order given."""
    parts = nodes(uri)
    index %= len(parts)
    return ";".join(parts[index:] + parts[:index])


def connect(uri: str, **options) -> Connection:
    """A connection to the first node of `uri` that answers, trying each
    once (kombu does not sleep between the nodes of one round)."""
    connection = Connection(uri, **options)
    try:
        connection.ensure_connection(max_retries=node_count(uri))
    except Exception:
        connection.release()
        raise
    return connection


def check_broker(config):
    amqp_uri = read_amqp_uri(config)
    try:
        connect(amqp_uri, connect_timeout=5).release()
    except Exception as exc:  # any failure here means: fix the setting
        raise StartupError(
            f"cannot reach the broker at AMQP_URI={mask_uri(amqp_uri)} ({mask_uri(str(exc))}); "
            "check that RabbitMQ runs, or set AMQP_URI"
        ) from None
