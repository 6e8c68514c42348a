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

tests/unit/test_library_internals.py fails if kombu no longer fills the
name in that way or keeps that cache.
"""

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
