"""The broker as every part of the pipeline reaches it: one or several
RabbitMQ nodes in AMQP_URI, a start-up check that one of them answers, and
URIs shown without their passwords.

AMQP_URI may list the nodes of a cluster separated by `;`, each a whole URI
with its own vhost (`amqp://u:p@h1:5672/v;amqp://u:p@h2:5672/v`): kombu's
Connection takes the list as it is, connects to the first node that
answers, and on a lost connection moves on to the next (round robin).

With amqps:// every connection is TLS, nameko's own and the project's: a
`Broker` (AMQP_URI and its AMQP_SSL_* files, from `broker(config)`) opens
each connection the project makes itself, and `nameko_config` hands the
same options to nameko's connections (AMQP_SSL, LOGIN_METHOD). Each node's
certificate is checked against the CA and against that node's host name as
AMQP_URI writes it (kombu_internals.NodeNamedSSLTransport, made kombu's
`amqps` transport when this module is imported).
"""

import re
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import eventlet
from kombu import Connection
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY

from order_pipeline.errors import StartupError
from order_pipeline.kombu_internals import use_node_named_tls
from order_pipeline.settings import amqp_tls, startup_wait_seconds
from order_pipeline.settings import amqp_uri as read_amqp_uri
from order_pipeline.startup import retry_until_up
from order_pipeline.tls import TlsFiles, describe_tls_failure

# Before any connection: nameko's too go through kombu's `amqps` transport.
use_node_named_tls()

MASK = "********"
# The longest wait for a node's answer to a connection's close.
CLOSE_TIMEOUT_SECONDS = 5
# `scheme://user:password@`: the password ends at the last `@` before the
# host, and a URI list has one such part per node.
_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@;\s]*):[^@/;\s]*@")


def mask_uri(text: str) -> str:
    """`text` with the password of every URI in it replaced by ********:
    a single URI, a `;`-separated list of them, or a log line quoting one."""
    if "://" not in text:  # most log lines: skip the regular expression
        return text
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


def first_host(uri: str) -> str:
    """The host name of the first node in `uri`."""
    return urlsplit(nodes(uri)[0]).hostname or "localhost"


@dataclass(frozen=True)
class Broker:
    """The broker's address, AMQP_URI, and its TLS files (None: plain
    amqp://). Every connection the project opens itself is made here."""

    uri: str
    tls: TlsFiles | None = None

    def connection_options(self, uri: str | None = None) -> dict:
        """kombu's (and nameko's) connection options for TLS to `uri` (or
        AMQP_URI): `ssl`, and `login_method` EXTERNAL with a client
        certificate and no password in the URI; none for amqp://. A new
        dict each time (kombu may write into one)."""
        if self.tls is None:
            return {}
        uri = uri or self.uri
        options = {
            "ssl": {
                "cert_reqs": ssl.CERT_REQUIRED,
                # One node: its name as written (kombu would check
                # "127.0.0.1" for "localhost"). Several: None, which the
                # transport fills in with the name of the node it tries.
                "server_hostname": first_host(uri) if node_count(uri) == 1 else None,
                "ca_certs": self.tls.ca_file,
                "certfile": self.tls.cert_file,
                "keyfile": self.tls.key_file,
            }
        }
        if self.tls.cert_file and urlsplit(nodes(uri)[0]).password is None:
            # No password: the certificate is the login (the broker takes
            # the user from it). With one, it logs in with it, the
            # certificate shown as well (a broker that wants both).
            options["login_method"] = "EXTERNAL"
        return options

    def nameko_keys(self) -> dict:
        """nameko's own config keys for this broker: AMQP_URI, and over TLS
        AMQP_SSL (and LOGIN_METHOD), which nameko's connections read."""
        keys = {AMQP_URI_CONFIG_KEY: self.uri}
        options = self.connection_options()
        if "ssl" in options:
            keys[AMQP_SSL_CONFIG_KEY] = options["ssl"]
        if "login_method" in options:
            keys[LOGIN_METHOD_CONFIG_KEY] = options["login_method"]
        return keys

    def connection(self, uri: str | None = None, **options) -> Connection:
        """A connection (not yet open) to `uri`, the same nodes in another
        order (`starting_at`), or to AMQP_URI."""
        uri = uri or self.uri
        return Connection(uri, **self.connection_options(uri), **options)


def broker(config: dict) -> Broker:
    """AMQP_URI and AMQP_SSL_*, read and checked (a StartupError names the
    setting that is wrong)."""
    return Broker(read_amqp_uri(config), amqp_tls(config))


def nameko_config(config: dict) -> dict:
    """A copy of `config` with nameko's own keys for its connections
    (AMQP_SSL, LOGIN_METHOD) taken from AMQP_URI and AMQP_SSL_*: nameko's
    consumers, RPC proxies and publishers read them, and so do the
    standalone proxies (`nameko shell`, the probe)."""
    keys = broker(config).nameko_keys()
    ours = (AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY)
    return {**{key: value for key, value in config.items() if key not in ours}, **keys}


def connect(target: Broker | str, **options) -> Connection:
    """A connection to the first node of `target` (a Broker, or a plain
    AMQP URI) that answers, trying each once (kombu does not sleep between
    the nodes of one round)."""
    target = target if isinstance(target, Broker) else Broker(target)
    connection = target.connection(**options)
    try:
        connection.ensure_connection(max_retries=node_count(target.uri))
    except Exception:
        connection.release()
        raise
    return connection


def close_connection(connection: Connection, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
    """Close a connection the project opened, waiting at most `timeout` for
    the node's close-ok, then drop its socket whatever happened.

    py-amqp waits for that answer with no time limit (its read_timeout is a
    socket option, which eventlet's sockets do not honour), so a close sent
    to a frozen or cut-off node would hold the caller until the node
    answered: a stopping service among them."""
    try:
        with eventlet.Timeout(timeout):
            connection.release()
            return
    except eventlet.Timeout:
        pass
    except Exception:  # already broken
        pass
    connection.collect()  # no handshake: the socket is closed here


def check_broker(config):
    """The broker answers, within STARTUP_WAIT_SECONDS (order_pipeline.startup),
    or a one-line StartupError says why not."""
    target = broker(config)

    def attempt():
        try:
            connect(target, connect_timeout=5).release()
        except Exception as exc:  # any failure here means: fix the setting
            raise StartupError(describe_failure(target, exc)) from None

    retry_until_up(attempt, startup_wait_seconds(config), "the broker")


def describe_failure(target: Broker, exc: Exception) -> str:
    """One line: what went wrong reaching the broker, and which setting to
    fix."""
    where = f"cannot reach the broker at AMQP_URI={mask_uri(target.uri)}"
    reason = mask_uri(str(exc))
    if target.tls is not None:
        tls_problem = describe_tls_failure(exc, target.tls, "AMQP_URI") or _login_failure(
            target, exc
        )
        if tls_problem is not None:
            return f"{where} over TLS: {tls_problem}"
    elif _closed_unanswered(exc):
        return (
            f"{where}: it closed the connection unanswered ({reason}); if it takes TLS only, "
            "use amqps:// in AMQP_URI"
        )
    return f"{where} ({reason}); check that RabbitMQ runs, or set AMQP_URI"


def _login_failure(target: Broker, exc: Exception) -> str | None:
    """The broker did not log in the client certificate's user: refused
    (no such user), or EXTERNAL not offered (the plugin is off)."""
    if "login_method" in target.connection_options() and "EXTERNAL" in str(exc):
        return (
            f"it did not log in the user of the client certificate "
            f"{target.tls.names('cert_file')} ({mask_uri(str(exc))}); the certificate's common "
            "name must be a RabbitMQ user with access to the vhost, and the broker must offer "
            "EXTERNAL (rabbitmq_auth_mechanism_ssl)"
        )
    return None


def _closed_unanswered(exc: Exception) -> bool:
    cause = exc.__cause__ or exc
    return isinstance(cause, ConnectionResetError) or "unexpectedly closed" in str(cause)
