"""Every use of kombu's private code, in one place.

- `NodeNamedSSLTransport`: kombu's `amqps` transport, checking each node's
  certificate against that node's own host name. kombu (pyamqp.Transport.
  establish_connection) writes the host name into the `ssl` options it is
  given when their `server_hostname` is None, in that very dict: the name
  of the first node a connection tries then sticks, for the nodes of a `;`
  list it fails over to, and, for nameko, whose connections share one dict
  (its AMQP_SSL config key), for every connection of the process. Each
  attempt here gets a copy named after the node it tries.
- `use_node_named_tls()` makes it kombu's transport for `amqps://`, nameko's
  connections included: kombu's alias table (public) and its cache of
  resolved names (`_transport_cache`, private).
- `quiet_intended_reconnects(kind)`: kombu's consuming loop (mixins.
  ConsumerMixin.run, which nameko's QueueConsumer runs) logs each connection
  error it recovers from as "Connection to broker lost" with its traceback,
  on its module's logger. A filter there drops that line for an error of
  `kind`: a connection a consumer dropped on purpose, having said why.

tests/unit/test_library_internals.py fails if kombu no longer fills the
name in that way, keeps that cache, or logs that line there.
"""

import logging

from kombu import mixins
from kombu import transport as kombu_transports
from kombu.transport import pyamqp

AMQPS = "amqps"


class NodeNamedSSLTransport(pyamqp.SSLTransport):
    def establish_connection(self):
        shared = self.client.ssl
        if not (isinstance(shared, dict) and shared.get("server_hostname", "") is None):
            return super().establish_connection()
        self.client.ssl = {**shared, "server_hostname": self.client.hostname}
        try:
            return super().establish_connection()
        finally:
            self.client.ssl = shared


def use_node_named_tls() -> None:
    kombu_transports.TRANSPORT_ALIASES[AMQPS] = f"{__name__}:{NodeNamedSSLTransport.__name__}"
    kombu_transports._transport_cache.pop(AMQPS, None)


class _DropIntended(logging.Filter):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        return not (record.msg == mixins.W_CONN_LOST and isinstance(error, self.kind))


def quiet_intended_reconnects(kind: type[BaseException]) -> None:
    logger = logging.getLogger(mixins.__name__)
    if not any(isinstance(f, _DropIntended) and f.kind is kind for f in logger.filters):
        logger.addFilter(_DropIntended(kind))
