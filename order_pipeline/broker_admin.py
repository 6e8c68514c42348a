"""Broker users and their permissions, through RabbitMQ's management HTTP
API (the `rabbitmq_management` plugin).

The HTTP API rather than `rabbitmqctl`: it reaches a broker in another
container or on another host with an ordinary URL and an administrator's
user name and password, where `rabbitmqctl` needs the node's Erlang cookie
and its distribution port, and an Erlang runtime where it runs.

    admin = BrokerAdmin("http://admin:secret@rabbitmq:15672/")
    admin.put_user("order_gateway", password)

Over HTTPS (`https://...:15671/`), `tls` says which CA to check the
node's certificate against and which client certificate to show, as
AMQP_SSL_* do for AMQP (a node may refuse a client without one).
"""

import ssl
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from order_pipeline.broker import mask_uri
from order_pipeline.errors import StartupError
from order_pipeline.tls import TlsFiles, describe_tls_failure

TIMEOUT_SECONDS = 10


class BrokerAdmin:
    """The management API at `url`, whose user name and password are an
    administrator's (the `administrator` tag); over HTTPS with `tls`'s CA
    and client certificate (without it, the system's CAs and none)."""

    def __init__(self, url: str, setting: str = "RABBITMQ_ADMIN_URL", tls: TlsFiles | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StartupError(f"{setting} must be an http(s) URL, got {mask_uri(url)!r}")
        self.setting = setting
        self.shown = mask_uri(url)
        self.auth = (parts.username or "", parts.password or "")
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self.base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/api/", "", ""))
        self.session = requests.Session()
        self.tls = tls
        # Given with each request: a Session's own `verify` gives way to
        # REQUESTS_CA_BUNDLE in the environment.
        self.verify = (tls.ca_file or True) if tls is not None else True
        self.cert = None
        if tls is not None and tls.cert_file:
            self.cert = (tls.cert_file, tls.key_file) if tls.key_file else tls.cert_file

    def _request(self, method, path, body=None, missing_ok=False):
        try:
            response = self.session.request(
                method,
                self.base + path,
                json=body,
                auth=self.auth,
                timeout=TIMEOUT_SECONDS,
                verify=self.verify,
                cert=self.cert,
            )
        except requests.RequestException as exc:
            problem = self.tls and describe_tls_failure(_tls_cause(exc), self.tls, self.setting)
            if problem:
                raise StartupError(
                    f"cannot reach the RabbitMQ management API at {self.setting}={self.shown} "
                    f"over TLS: {problem}"
                ) from None
            raise StartupError(
                f"cannot reach the RabbitMQ management API at {self.setting}={self.shown} "
                f"({type(exc).__name__}); check that the rabbitmq_management plugin is "
                f"enabled, or set {self.setting}"
            ) from None
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code == 401:
            raise StartupError(
                f"the RabbitMQ management API at {self.setting}={self.shown} refused its "
                "user name and password (an administrator's are needed)"
            )
        if response.status_code >= 400:
            raise StartupError(
                f"the RabbitMQ management API at {self.setting}={self.shown} answered "
                f"{method} {path.split('/')[0]} with {response.status_code}: "
                f"{response.text.strip()[:200]}"
            )
        return response.json() if response.content else {}

    def user_exists(self, user: str) -> bool:
        return self._request("GET", "users/" + _segment(user), missing_ok=True) is not None

    def put_user(self, user: str, password: str) -> bool:
        """Create `user` or set its password (no tags: no management access);
        True if it was created."""
        existed = self.user_exists(user)
        self._request("PUT", "users/" + _segment(user), {"password": password, "tags": ""})
        return not existed

    def delete_user(self, user: str) -> None:
        self._request("DELETE", "users/" + _segment(user), missing_ok=True)

    def overview(self) -> dict:
        """The node's overview (its version, its listeners...)."""
        return self._request("GET", "overview")

    def put_vhost(self, vhost: str) -> None:
        self._request("PUT", "vhosts/" + _segment(vhost), {})

    def delete_vhost(self, vhost: str) -> None:
        self._request("DELETE", "vhosts/" + _segment(vhost), missing_ok=True)

    def vhost_exists(self, vhost: str) -> bool:
        return self._request("GET", "vhosts/" + _segment(vhost), missing_ok=True) is not None

    def set_permissions(self, vhost: str, user: str, permissions: dict[str, str]) -> None:
        """{"configure", "write", "read"}: each a regular expression."""
        self._request("PUT", f"permissions/{_segment(vhost)}/{_segment(user)}", permissions)

    def set_topic_permissions(self, vhost: str, user: str, topics: dict[str, dict]) -> None:
        """{exchange: {"write", "read"}}: exactly these, replacing any other.

        The API clears a user's topic permissions only all at once, and a
        user with none on an exchange may use any routing key there; so the
        wanted ones are written first, and the whole set is cleared and
        written again only when an exchange left over must go."""
        path = f"topic-permissions/{_segment(vhost)}/{_segment(user)}"
        current = self._request("GET", path, missing_ok=True) or []
        if {entry["exchange"] for entry in current} - set(topics):
            self._request("DELETE", path, missing_ok=True)
        for exchange, keys in topics.items():
            self._request("PUT", path, {"exchange": exchange, **keys})


def _tls_cause(exc: BaseException) -> BaseException:
    """The ssl.SSLError behind a requests exception, else `exc`: requests
    and urllib3 keep it in an argument or a `reason` rather than as the
    cause."""
    seen, pending = set(), [exc]
    while pending:
        each = pending.pop(0)
        if isinstance(each, ssl.SSLError):
            return each
        if id(each) in seen:
            continue
        seen.add(id(each))
        pending += [
            inner
            for inner in (
                each.__cause__,
                each.__context__,
                getattr(each, "reason", None),
                *each.args,
            )
            if isinstance(inner, BaseException)
        ]
    return exc


def _segment(name: str) -> str:
    """A name as one path segment (the vhost `/` is `%2F`)."""
    return quote(name, safe="")
