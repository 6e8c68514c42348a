"""Broker users and their permissions, through RabbitMQ's management HTTP
API (the `rabbitmq_management` plugin).

The HTTP API rather than `rabbitmqctl`: it reaches a broker in another
container or on another host with an ordinary URL and an administrator's
user name and password, where `rabbitmqctl` needs the node's Erlang cookie
and its distribution port, and an Erlang runtime where it runs.

    admin = BrokerAdmin("http://admin:secret@rabbitmq:15672/")
    admin.put_user("order_gateway", password)
"""

from urllib.parse import quote, urlsplit, urlunsplit

import requests

from order_pipeline.broker import mask_uri
from order_pipeline.errors import StartupError

TIMEOUT_SECONDS = 10


class BrokerAdmin:
    """The management API at `url`, whose user name and password are an
    administrator's (the `administrator` tag)."""

    def __init__(self, url: str, setting: str = "RABBITMQ_ADMIN_URL"):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StartupError(f"{setting} must be an http(s) URL, got {mask_uri(url)!r}")
        self.setting = setting
        self.shown = mask_uri(url)
        self.auth = (parts.username or "", parts.password or "")
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self.base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/api/", "", ""))
        self.session = requests.Session()

    def _request(self, method, path, body=None, missing_ok=False):
        try:
            response = self.session.request(
                method, self.base + path, json=body, auth=self.auth, timeout=TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
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


def _segment(name: str) -> str:
    """A name as one path segment (the vhost `/` is `%2F`)."""
    return quote(name, safe="")
