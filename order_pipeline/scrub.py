"""Error text fit to leave the service that raised it.

An exception's text is written for whoever runs the service: pymysql names
the database host, requests quotes the price feed's URL with whatever
credentials are in it, SQLAlchemy appends the statement and its
parameters. A dead letter's reason is kept in the processor's table and
shown by the gateway to anyone who can read the console, so it is
scrubbed where it is recorded; the full text goes to the service's own log
only.

`Scrubber(known_hosts, known_secrets)(text)` replaces, in this order:

- SQLAlchemy's `[SQL: ...]`, `[parameters: ...]` and `(Background on this
  error at: ...)` parts and its `(pymysql.err.OperationalError)` prefix
  (the type is recorded apart) are left out, and SQL statements or a
  server's `near '...'` quote of one replaced with `<sql>`;
- every URL (`scheme://...`) with `<url>`;
- each of `known_secrets` wherever it appears, `Bearer`/`Basic` credentials
  and `password=`, `token=`, `key=`... values with `<secret>`;
- `user:password@` outside a URL with `<credentials>@`, and a MariaDB
  account (`'user'@'host'`) with `<account>`;
- IPv4 and IPv6 addresses with `<address>`;
- each of `known_hosts` (this machine's name, the hosts of the service's
  configured URLs), `localhost`, and anything shaped like a dotted host
  name (`db.internal`, `prices.example.com`) with `<host>`.

Scrubbing scrubbed text changes nothing. What is left is the shape of the
error (its type, the words of its message, numbers, error codes), which is
what an operator needs to tell one failure from another.
"""

import re
import socket
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

URL_SECRET_KEYS = (
    r"password|passwd|pwd|secret|token|access[_-]?token|api[_-]?key|apikey|key|auth|signature|sig"
)
# File names look like host names (`config.yml`); they are left alone.
FILE_SUFFIXES = {
    "py", "pyc", "yml", "yaml", "json", "txt", "log", "cfg", "ini", "toml", "md",
    "html", "js", "css", "sql", "csv", "xml", "pem", "crt", "key", "sock", "mako",
}  # fmt: skip

# Settings whose values are secrets in their own right (GATEWAY_TOKEN).
SECRET_SETTING = re.compile(r"(TOKEN|PASSWORD|SECRET)$", re.IGNORECASE)
SQLALCHEMY_PARTS = re.compile(
    r"\[SQL: .*?\](?=\s*(?:\[|\(Background|$))|\[parameters: .*?\](?=\s*(?:\(Background|$))"
    r"|\(Background on this error at: [^)]*\)",
    re.DOTALL,
)
# SQLAlchemy's `(pymysql.err.OperationalError) ` before the driver's message.
WRAPPED_TYPE = re.compile(r"\((?:[a-z_][a-z0-9_]*\.)+[A-Z][A-Za-z0-9_]*\) ")
# A statement, from its verb to the end of the line or of the quote it is in.
SQL_STATEMENT = re.compile(
    r"\b(?:SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO|CREATE|ALTER|DROP|"
    r"TRUNCATE|SHOW|SET\s+(?:SESSION|GLOBAL|NAMES))\b[^'\"\n]*"
)
SQL_NEAR = re.compile(r"near '(?:[^'\\]|\\.|'')*'", re.DOTALL)
URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{},;]+")
CREDENTIALS = re.compile(r"(?<![\w<])[^\s:@/'\"<>()\[\]]+:[^\s@/'\"<>()\[\]]+@")
ACCOUNT = re.compile(r"'[^'\s]*'@'[^'\s]*'")
AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
SECRET_VALUE = re.compile(rf"\b({URL_SECRET_KEYS})=[^\s&'\"<>,;)]+", re.IGNORECASE)
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# With a `::` (any compressed form) or all eight groups: times (10:00:00)
# have neither.
IPV6 = re.compile(
    r"(?<![\w:])(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}"
    r"|(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?)"
    r"(?:%\w+)?(?![\w:])"
)
# Lowercase labels joined by dots, the last one letters: a host name. A
# Python name (`sqlalchemy.exc.OperationalError`) is left whole: it goes on
# with a dot or an underscore, which the look-arounds refuse.
DOTTED_HOST = re.compile(
    r"(?<![\w.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}))(?![\w.-])"
)


class Scrubber:
    """`scrub = Scrubber(known_hosts=["db1"], known_secrets=["s3cret"])`;
    `scrub(text)` is `text` fit to be shown (see the module's docstring).
    `Scrubber.for_config(config)` knows this machine's name and the hosts
    and passwords of every URL in the service's config, and the values of
    its `*_TOKEN`, `*_PASSWORD` and `*_SECRET` settings."""

    def __init__(self, known_hosts: Iterable[str] = (), known_secrets: Iterable[str] = ()):
        hosts = {host for host in known_hosts if host and len(host) > 1} | {"localhost"}
        # Secrets of three characters or fewer would replace ordinary words.
        secrets = {secret for secret in known_secrets if secret and len(secret) > 3}
        self.known_hosts = _outside_placeholders(
            hosts, r"(?<![\w.-])(?:{})(?![\w-])", re.IGNORECASE
        )
        self.known_secrets = _outside_placeholders(secrets, "(?:{})")

    @classmethod
    def for_config(cls, config: dict) -> "Scrubber":
        hosts, secrets = set(this_machine()), set()
        for key, value in config.items():
            if not isinstance(value, str):
                continue
            if SECRET_SETTING.search(str(key)):
                secrets.add(value)
            if "://" in value:
                for part in value.split(";"):
                    host, password = _host_and_password(part.strip())
                    hosts.add(host)
                    secrets.add(password)
        return cls(hosts, secrets)

    def __call__(self, text: str) -> str:
        text = SQLALCHEMY_PARTS.sub("", str(text)).rstrip()
        text = WRAPPED_TYPE.sub("", text)
        text = SQL_NEAR.sub("near <sql>", text)
        text = SQL_STATEMENT.sub("<sql>", text)
        text = URL.sub("<url>", text)
        if self.known_secrets:
            text = self.known_secrets.sub(_replacing("<secret>"), text)
        text = ACCOUNT.sub("<account>", text)
        text = CREDENTIALS.sub("<credentials>@", text)
        text = AUTH_SCHEME.sub(lambda match: f"{match.group(1)} <secret>", text)
        text = SECRET_VALUE.sub(lambda match: f"{match.group(1)}=<secret>", text)
        text = IPV4.sub("<address>", text)
        text = IPV6.sub("<address>", text)
        text = self.known_hosts.sub(_replacing("<host>"), text)
        return DOTTED_HOST.sub(_host_or_file, text)


PLACEHOLDER = r"<[a-z]+>"


def _outside_placeholders(words, template, flags=0):
    """One pattern for `words` (the longest first, so that none is replaced
    inside a longer one) that also matches a placeholder (`<host>`), which
    `_replacing` leaves as it is: a secret that happens to be `host` must
    not turn `<host>` into `<<secret>>`. None for no words."""
    if not words:
        return None
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(PLACEHOLDER + "|" + template.format(alternatives), flags)


def _replacing(placeholder):
    def replace(match):
        found = match.group(0)
        return found if re.fullmatch(PLACEHOLDER, found) else placeholder

    return replace


def _host_or_file(match):
    return match.group(0) if match.group(2) in FILE_SUFFIXES else "<host>"


def _host_and_password(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
        return parts.hostname or "", unquote(parts.password or "")
    except ValueError:  # a malformed URL: nothing to learn from it
        return "", ""


def this_machine() -> list[str]:
    """This machine's host name, and its first label if it has several. (Not
    its fully qualified name: that can mean a DNS query at start-up.)"""
    name = socket.gethostname()
    return [name, name.split(".")[0]]


_default = None


def scrub(text: str) -> str:
    """`text` scrubbed of what any service must not show, this machine's
    name included (for callers without a config at hand)."""
    global _default
    if _default is None:
        _default = Scrubber(this_machine())
    return _default(text)
