"""Reading the Docker packaging as `docker compose` and `docker build` would,
for tests/unit/test_deployment.py: YAML without nameko's env expansion,
compose's variable expansion, Dockerfile instructions and .dockerignore.
There are two compose files, one broker and one database (compose.yaml)
and clusters of both (compose.cluster.yaml), each with one broker and one
database user per service; a `Layout` names what each starts, so the same
checks read both.

`RawLoader` is yaml.safe_load's rules minus the `${VAR:default}` expansion
that nameko installs into yaml.SafeLoader when a config is loaded, so
compose's `${VAR:-default}` and config.yml's `${VAR:default}` stay as written.
"""

import fnmatch
import functools
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from nameko.cli.main import ENV_VAR_MATCHER

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = "config.yml"
NAMEKO_RUN = ["nameko", "run", "--config", CONFIG_FILE]
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error},
# $NAME and $$ (a literal $), as compose reads them.
COMPOSE_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))"
)


class RawLoader(yaml.SafeLoader):
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "!env_var"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def read_yaml(name):
    return yaml.load((ROOT / name).read_text(), Loader=RawLoader)


def read_env_file(name):
    values = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def strings_in(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)
    elif isinstance(node, str):
        yield node


def config_variables():
    """{VAR: default} for every `${VAR:default}` config.yml reads."""
    return {
        match.group(1): match.group(2) or ""
        for text in strings_in(read_yaml(CONFIG_FILE))
        for match in ENV_VAR_MATCHER.finditer(text)
    }


def makefile_services():
    """The service packages `make run` starts: the list compose must split."""
    text = (ROOT / "Makefile").read_text()
    return re.search(r"^SERVICES\s*:=\s*(.+)$", text, re.MULTILINE).group(1).split()


def dockerfile_instructions(text):
    """[(INSTRUCTION, arguments)], continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in joined.splitlines()
        if line.strip()
    ]


def exec_form(arguments):
    """A Dockerfile CMD/ENTRYPOINT's JSON list, or None for the shell form."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


@dataclass(frozen=True)
class Layout:
    """What one compose file starts, by service name."""

    compose_file: str
    # The file of its variables with their defaults, for `--env-file` or .env.
    env_example: str
    # The broker nodes, every one of which AMQP_URI lists.
    brokers: tuple
    # The servers that hold the database, and the service DB_URI names (the
    # server itself, or a proxy in front of several).
    database_servers: tuple
    database_address: str
    # Settings the file sets itself rather than passing them through, because
    # they must match the containers it starts: {setting: the value it must
    # have, or None for any}.
    set_by_compose: dict
    # Variables compose refuses to start without (`${NAME:?...}`): secrets
    # that have no safe default.
    required: frozenset = frozenset()
    # The one-shot step that creates each service's broker and database
    # user (order_pipeline.identities) as the administrators the brokers and
    # database servers are started with, and migrates; and its command.
    # Each service's AMQP_URI and DB_URI carry its own user.
    migration: str = "provision"
    migration_command: tuple = ("python", "-m", "order_pipeline.commands.provision", "--migrate")
    # How the services reach the brokers: (scheme, port) of every AMQP_URI
    # node; and how the provision step reaches the first broker's
    # management API.
    amqp: tuple = ("amqp", 5672)
    management: tuple = ("http", 15672)
    # Whether every hop is TLS (tests/unit/test_deployment.py's check_tls),
    # with certificates from make-certs.sh mounted from CERTIFICATES.
    tls: bool = False


# The passwords of the administrators and of every identity's users: no
# password has a default.
IDENTITY_PASSWORDS = frozenset(
    {
        "RABBITMQ_ADMIN_PASSWORD",
        "DB_ROOT_PASSWORD",
        "ORDER_GENERATOR_AMQP_PASSWORD",
        "ORDER_PROCESSOR_AMQP_PASSWORD",
        "ORDER_GATEWAY_AMQP_PASSWORD",
        "ORDER_OPERATOR_AMQP_PASSWORD",
        "ORDER_GENERATOR_DB_PASSWORD",
        "ORDER_PROCESSOR_DB_PASSWORD",
        "ORDER_MIGRATE_DB_PASSWORD",
    }
)
# The gateway listens on the port compose publishes (GATEWAY_PORT chooses
# the host side).
SINGLE_HOST = Layout(
    compose_file="compose.yaml",
    env_example=".env.example",
    brokers=("rabbitmq",),
    database_servers=("db",),
    database_address="db",
    set_by_compose={"WEB_SERVER_ADDRESS": None},
    required=IDENTITY_PASSWORDS,
)
# The same, on three broker nodes with quorum queues, and three Galera nodes
# behind a proxy, every hop over TLS (the management API on 15671).
CLUSTER = Layout(
    compose_file="compose.cluster.yaml",
    env_example="deploy/cluster.env.example",
    brokers=("rabbitmq-1", "rabbitmq-2", "rabbitmq-3"),
    database_servers=("galera-1", "galera-2", "galera-3"),
    database_address="db-proxy",
    set_by_compose={
        "WEB_SERVER_ADDRESS": None,
        "QUEUE_TYPE": "quorum",
        # The files of each container's own certificate, mounted there.
        "AMQP_SSL_CA_FILE": "/etc/order-pipeline/tls/ca.pem",
        "AMQP_SSL_CERT_FILE": "/etc/order-pipeline/tls/cert.pem",
        "AMQP_SSL_KEY_FILE": "/etc/order-pipeline/tls/key.pem",
        "DB_SSL_CA_FILE": "/etc/order-pipeline/tls/ca.pem",
        "DB_SSL_CERT_FILE": "/etc/order-pipeline/tls/cert.pem",
        "DB_SSL_KEY_FILE": "/etc/order-pipeline/tls/key.pem",
        "GATEWAY_TLS_CERT_FILE": "/etc/order-pipeline/tls/cert.pem",
        "GATEWAY_TLS_KEY_FILE": "/etc/order-pipeline/tls/key.pem",
    },
    required=IDENTITY_PASSWORDS | {"RABBITMQ_ERLANG_COOKIE", "GALERA_SST_PASSWORD"},
    amqp=("amqps", 5671),
    management=("https", 15671),
    tls=True,
)
LAYOUTS = (SINGLE_HOST, CLUSTER)
# Where compose.cluster.yaml mounts each identity's certificates from: what
# `deploy/tls/make-certs.sh deploy/tls/certs` makes (git-ignored).
MAKE_CERTS = ROOT / "deploy" / "tls" / "make-certs.sh"
CERTIFICATES = "deploy/tls/certs"


@dataclass
class Deployment:
    layout: Layout
    compose: dict
    env_example: dict
    dockerfile: str
    dockerignore: list

    @classmethod
    def from_files(cls, layout=SINGLE_HOST):
        return cls(
            layout,
            read_yaml(layout.compose_file),
            read_env_file(layout.env_example),
            (ROOT / "Dockerfile").read_text(),
            (ROOT / ".dockerignore").read_text().splitlines(),
        )

    def rendered(self, env=None):
        """The compose file as `docker compose` sees it with these variables
        set (none: no .env, nothing exported), and the required ones set as
        the example file tells whoever copies it."""
        env = dict(env or {})
        for name in self.layout.required:
            env[name] = env.get(name) or "set-" + name.lower()
        return interpolate(self.compose, env)

    def services(self, env=None):
        return self.rendered(env)["services"]

    def app_services(self, env=None):
        """The services built from our Dockerfile."""
        return {name: service for name, service in self.services(env).items() if "build" in service}


def interpolate(node, env):
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def replace(match):
        if match["escaped"]:
            return "$"
        value = env.get(match["name"] or match["bare"])
        op = match["op"] or ""
        missing = value is None or (op.startswith(":") and value == "")
        if missing and op.endswith("-"):
            return match["arg"]
        if missing and op.endswith("?"):
            raise KeyError("required variable {} is not set".format(match["name"]))
        return value or ""

    return COMPOSE_VARIABLE.sub(replace, node)


def compose_variables(deployment):
    """[(name, operator, default)] for every variable the compose file reads."""
    return [
        (match["name"] or match["bare"], match["op"] or "", match["arg"] or "")
        for text in strings_in(deployment.compose)
        for match in COMPOSE_VARIABLE.finditer(text)
        if not match["escaped"]
    ]


def environment(service):
    """A service's `environment` as a dict, whichever syntax it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def nameko_modules(command):
    """The service modules a `nameko run` command starts, else None."""
    if isinstance(command, list) and command[: len(NAMEKO_RUN)] == NAMEKO_RUN:
        return command[len(NAMEKO_RUN) :]
    return None


def nameko_services(deployment):
    """{compose service: [modules it runs]} for the nameko services."""
    return {
        name: nameko_modules(service.get("command"))
        for name, service in deployment.app_services().items()
        if nameko_modules(service.get("command"))
    }


def container_ports(service):
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.append(int(port["target"]))
        else:
            ports.append(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def bind_mounts(service):
    """{target: source} of a service's bind mounts of repository paths
    (short or long syntax), the source relative to the repository."""
    mounts = {}
    for mount in service.get("volumes", []):
        if isinstance(mount, str):
            parts = mount.split(":")
            source, target = parts[0], parts[1] if len(parts) > 1 else None
        else:
            source, target = mount.get("source", ""), mount.get("target")
            if mount.get("type") != "bind":
                continue
        if source.startswith("./") and target:
            mounts[target] = source.removeprefix("./")
    return mounts


def make_certs(directory, *identities):
    """Run deploy/tls/make-certs.sh into `directory`: {identity: its
    directory}."""
    output = subprocess.run(
        [str(MAKE_CERTS), str(directory), *identities],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return {
        Path(line.split(":", 1)[0]).name: Path(line.split(":", 1)[0])
        for line in output.splitlines()
    }


@functools.cache
def made_certificates():
    """{identity: the names its certificate is for} of what
    `make-certs.sh DIR` makes by default, made once in a scratch directory."""
    with tempfile.TemporaryDirectory() as scratch:
        return {
            identity: certificate_names(directory / "cert.pem")
            for identity, directory in make_certs(Path(scratch) / "certs").items()
        }


def certificate_names(path):
    """The DNS names and IP addresses a PEM certificate is for."""
    text = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-ext", "subjectAltName"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return set(re.findall(r"(?:DNS|IP Address):([^,\s]+)", text))


def named_volume(mount):
    """(volume name or None for a bind mount or anonymous volume, target)."""
    if isinstance(mount, dict):
        source, target = mount.get("source", ""), mount.get("target", "")
    else:
        parts = mount.split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
    return (source if source and not source.startswith((".", "/", "~")) else None), target


def copied_sources(deployment):
    sources = []
    for kind, args in dockerfile_instructions(deployment.dockerfile):
        if kind in ("COPY", "ADD"):
            parts = exec_form(args) or args.split()
            sources += [
                part.removeprefix("./").rstrip("/") or "."
                for part in parts[:-1]
                if not part.startswith("--")
            ]
    return sources


def ignored(deployment, path):
    """Whether .dockerignore keeps `path` out of the build context."""
    result = False
    for line in deployment.dockerignore:
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/").removeprefix("./")
        candidates = {pattern, pattern.removeprefix("**/")}
        parts = path.split("/")
        prefixes = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
        if any(
            fnmatch.fnmatch(prefix, candidate) for prefix in prefixes for candidate in candidates
        ):
            result = not negate
    return result


@functools.cache
def first_party_packages(*modules):
    """Our top-level packages that importing `modules` loads, found in a
    fresh interpreter so other tests' imports do not count."""
    script = (
        "import sys, pathlib\n"
        "root = pathlib.Path.cwd().resolve()\n"
        "for name in sys.argv[1:]: __import__(name)\n"
        "for name, module in list(sys.modules.items()):\n"
        "    path = getattr(module, '__file__', None)\n"
        "    if path and '.' not in name and pathlib.Path(path).resolve().is_relative_to(root)"
        " and '.venv' not in pathlib.Path(path).parts:\n"
        "        print(name)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script, *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return sorted(output.split())
