"""The Docker packaging, checked against the code since no Docker engine runs
here: Dockerfile, compose.yaml, .env.example and .dockerignore.

Each check is a function returning the problems it finds (empty when the
files are right). The `test_*_holds` tests run every check on the real files;
`test_check_catches` runs each check on a copy broken in the way it guards
against, so every check is shown to be able to fail.

The files are read as compose and docker build read them by
tests/support/deployment.py (`Deployment`).
"""

import copy
import inspect
import re
from urllib.parse import urlsplit

import pytest
from nameko.cli.run import import_service
from nameko.exceptions import CommandError
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc

from order_pipeline import probe
from tests.support.deployment import (
    COMPOSE_VARIABLE,
    CONFIG_FILE,
    NAMEKO_RUN,
    Deployment,
    compose_variables,
    config_variables,
    container_ports,
    copied_sources,
    dockerfile_instructions,
    environment,
    exec_form,
    first_party_packages,
    ignored,
    makefile_services,
    named_volume,
    nameko_modules,
    nameko_services,
)

BROKER, DATABASE, MIGRATE, GATEWAY = "rabbitmq", "db", "migrate", "gateway"
MIGRATE_COMMAND = ["python", "-m", "order_pipeline.migrations", "--config", CONFIG_FILE]
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|COOKIE", re.IGNORECASE)
FLAG_VALUES = {"0", "1", "yes", "no", "true", "false"}
PROBE = ["CMD", "python", "-m", "order_pipeline.probe"]
# What a service's healthcheck may call: it runs every interval, so it must
# only read (start or stop would switch generation on or off).
READ_ONLY_RPC = {"status", "metrics"}


# --- the checks -----------------------------------------------------------


def command_problems(where, command):
    """A command must be exec form and start only things that exist."""
    if not isinstance(command, list):
        return [f"{where}: command {command!r} is not exec form (a list)"]
    if command == MIGRATE_COMMAND:
        return []
    modules = nameko_modules(command)
    if not modules:
        return [
            "{}: {} is neither `{}` nor `{} <service>...`".format(
                where, command, " ".join(MIGRATE_COMMAND), " ".join(NAMEKO_RUN)
            )
        ]
    problems = []
    for module in modules:
        try:
            import_service(module)
        except (CommandError, ImportError) as exc:
            problems.append(f"{where}: `nameko run {module}` finds no service: {exc}")
    return problems


def check_commands(deployment):
    problems = []
    for name, service in deployment.services().items():
        for key in ("command", "entrypoint"):
            if key in service and not isinstance(service[key], list):
                problems.append(f"{name}: {key} is not exec form")
    for name, service in deployment.app_services().items():
        problems += command_problems(name, service.get("command"))
    if deployment.app_services().get(MIGRATE, {}).get("command") != MIGRATE_COMMAND:
        problems.append(f"{MIGRATE} does not run {MIGRATE_COMMAND}")
    return problems


def check_one_service_per_container(deployment):
    """Each package `make run` starts runs in a compose service of its own."""
    running = nameko_services(deployment)
    problems = [
        f"{name} runs {modules} services in one container"
        for name, modules in running.items()
        if len(modules) != 1
    ]
    started = sorted(module for modules in running.values() for module in modules)
    if started != sorted(makefile_services()):
        problems.append(f"compose starts {started}, make run starts {sorted(makefile_services())}")
    return problems


def check_settings_are_read(deployment):
    """An app service sets only variables config.yml reads (no typo'd
    setting silently ignored)."""
    known = config_variables()
    return [
        f"{name}: sets {key}, which config.yml never reads"
        for name, service in deployment.app_services().items()
        for key in environment(service)
        if key not in known
    ]


def check_passed_settings_keep_config_defaults(deployment):
    """A setting passed through as `${SETTING:-default}` defaults to what
    config.yml defaults to (AMQP_URI and DB_URI name compose's hosts instead)."""
    defaults = config_variables()
    problems = []
    for name, service in deployment.compose["services"].items():
        for key, raw in environment(service).items():
            match = COMPOSE_VARIABLE.fullmatch(raw)
            if key in defaults and match and match["name"] == key:
                if match["arg"] != defaults[key]:
                    problems.append(
                        "{}: {} defaults to {!r}, config.yml to {!r}".format(
                            name, key, match["arg"], defaults[key]
                        )
                    )
    return problems


# Settings compose sets itself rather than passing them through, because
# they must match the containers compose starts: AMQP_URI and DB_URI are
# built from RABBITMQ_* and DB_* (the credentials the broker and database are
# created with), and the gateway listens on the port compose publishes
# (GATEWAY_PORT chooses the host side).
SET_BY_COMPOSE = {"AMQP_URI", "DB_URI", "WEB_SERVER_ADDRESS"}


def check_every_setting_reaches_the_services(deployment):
    """Every setting config.yml reads, set in .env or the environment,
    arrives in every container built from our image; left unset or empty
    (as `.env.example` leaves some), the container gets config.yml's default.
    The settings compose sets itself are set in every one of them."""
    problems = []
    for key, default in config_variables().items():
        if key in SET_BY_COMPOSE:
            problems += [
                f"{name}: {key} is not set"
                for name, service in deployment.app_services().items()
                if not environment(service).get(key)
            ]
            continue
        value = "value-of-" + key.lower()
        for env, wanted in (({key: value}, value), ({}, default), ({key: ""}, default)):
            for name, service in deployment.app_services(env).items():
                got = environment(service).get(key)
                if got != wanted:
                    problems.append(
                        "{}: with {} the container gets {}={!r}, wanted {!r}".format(
                            name, env or "nothing set", key, got, wanted
                        )
                    )
    return problems


# Three ways to run compose: no .env, .env copied from the example, and every
# variable set to a value of its own (a literal on one side shows up there).
def variable_sets(deployment):
    names = {name for name, _, _ in compose_variables(deployment)}
    return {
        "no .env": {},
        ".env.example": dict(deployment.env_example),
        "all set": {name: "set-" + name.lower() for name in names},
    }


def check_services_reach_broker_and_database(deployment):
    """AMQP_URI and DB_URI point at the compose services, with the
    credentials those are started with."""
    problems = []
    for label, env in variable_sets(deployment).items():
        services = deployment.services(env)
        broker = environment(services.get(BROKER, {}))
        database = environment(services.get(DATABASE, {}))
        for name, service in deployment.app_services(env).items():
            settings = environment(service)
            if name != MIGRATE or "AMQP_URI" in settings:
                amqp = urlsplit(settings.get("AMQP_URI", ""))
                if (amqp.scheme, amqp.hostname, amqp.port) != ("amqp", BROKER, 5672) or (
                    amqp.username,
                    amqp.password,
                ) != (broker.get("RABBITMQ_DEFAULT_USER"), broker.get("RABBITMQ_DEFAULT_PASS")):
                    problems.append(
                        f"{name} ({label}): AMQP_URI {amqp.geturl()} does not match service {BROKER}"
                    )
            db = urlsplit(settings.get("DB_URI", ""))
            if (db.scheme, db.hostname, db.port, db.path.lstrip("/")) != (
                "mysql+pymysql",
                DATABASE,
                3306,
                database.get("MARIADB_DATABASE"),
            ) or (db.username, db.password) != (
                database.get("MARIADB_USER"),
                database.get("MARIADB_PASSWORD"),
            ):
                problems.append(
                    f"{name} ({label}): DB_URI {db.geturl()} does not match service {DATABASE}"
                )
    return problems


def check_only_gateway_published(deployment):
    """The gateway publishes the port it listens on; nothing else publishes
    one, and no container is named, so any service can be scaled."""
    services = deployment.services()
    address = environment(services.get(GATEWAY, {})).get(
        "WEB_SERVER_ADDRESS", config_variables()["WEB_SERVER_ADDRESS"]
    )
    listens_on = int(address.rsplit(":", 1)[1])
    problems = []
    if container_ports(services.get(GATEWAY, {})) != [listens_on]:
        problems.append(
            f"gateway publishes {container_ports(services.get(GATEWAY, {}))}, listens on {listens_on}"
        )
    for name, service in services.items():
        if name != GATEWAY and service.get("ports"):
            problems.append(f"{name} publishes a port, so it cannot be scaled")
        if "container_name" in service:
            problems.append(f"{name} has a container_name, so it cannot be scaled")
    return problems


def seconds(duration):
    """A compose duration ("1m30s", "10s", "500ms") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def probe_problems(name, health, modules, listens_on):
    """A service's healthcheck runs order_pipeline.probe: the gateway's GETs
    its /health, another's calls a read-only RPC method of the service that
    container runs. The probe gives up before the healthcheck kills it."""
    test = health.get("test") or []
    if health.get("disable") or test[: len(PROBE)] != PROBE:
        return ["{}: healthcheck {} does not run {}".format(name, test, " ".join(PROBE[1:]))]
    try:
        args = probe.parse_args(test[len(PROBE) :])
    except SystemExit:
        return [f"{name}: the probe does not accept {test[len(PROBE) :]}"]
    problems = []
    if args.timeout >= seconds(health.get("timeout", "30s")):
        problems.append(
            "{}: the probe waits {} s, the healthcheck only {}".format(
                name, args.timeout, health.get("timeout", "30s")
            )
        )
    if name == GATEWAY:
        url = urlsplit(args.url) if args.kind == "http" else None
        if not url or (url.hostname, url.port, url.path) != ("127.0.0.1", listens_on, "/health"):
            problems.append(
                f"{name}: healthcheck {test} is not GET http://127.0.0.1:{listens_on}/health"
            )
        return problems
    services = {cls.name: cls for module in modules for cls in import_service(module)}
    if args.kind != "rpc" or args.service not in services:
        return problems + [
            f"{name}: healthcheck {test} calls none of the services it runs ({sorted(services)})"
        ]
    method = getattr(services[args.service], args.method, None)
    entrypoints = getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, set())
    if not any(isinstance(entrypoint, Rpc) for entrypoint in entrypoints):
        problems.append(f"{name}: {args.service}.{args.method} is not an RPC method")
    elif list(inspect.signature(method).parameters) != ["self"] or args.method not in READ_ONLY_RPC:
        problems.append(
            f"{name}: {args.service}.{args.method} is not one of the read-only methods without arguments {sorted(READ_ONLY_RPC)}"
        )
    return problems


def check_healthchecks(deployment):
    """The broker and database have their images' own checks; every nameko
    service has one that asks the service itself (see `probe_problems`)."""
    expected = {
        BROKER: ["CMD", "rabbitmq-diagnostics"],
        DATABASE: ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"],
    }
    services = deployment.services()
    problems = []
    for name, start in expected.items():
        health = services.get(name, {}).get("healthcheck") or {}
        test = health.get("test") or []
        if health.get("disable") or test[: len(start)] != start:
            problems.append(
                "{}: healthcheck {} (disable: {}) is not on, starting {}".format(
                    name, test, health.get("disable", False), start
                )
            )
    address = environment(services.get(GATEWAY, {})).get("WEB_SERVER_ADDRESS", ":0")
    for name, modules in nameko_services(deployment).items():
        problems += probe_problems(
            name, services[name].get("healthcheck") or {}, modules, int(address.rsplit(":", 1)[1])
        )
    return problems


def check_start_order(deployment):
    """Services wait for a healthy broker and database and a finished
    migration; the migration waits for the database and runs once."""
    wanted = {
        BROKER: "service_healthy",
        DATABASE: "service_healthy",
        MIGRATE: "service_completed_successfully",
    }
    services = deployment.services()
    problems = []
    for name in nameko_services(deployment):
        depends = services[name].get("depends_on") or {}
        got = (
            {dependency: (depends.get(dependency) or {}).get("condition") for dependency in wanted}
            if isinstance(depends, dict)
            else {}
        )
        if got != wanted:
            problems.append(f"{name}: depends_on {depends}, wanted {wanted}")
    migrate = services.get(MIGRATE, {})
    if ((migrate.get("depends_on") or {}).get(DATABASE) or {}).get(
        "condition"
    ) != "service_healthy":
        problems.append("migrate does not wait for a healthy database")
    if migrate.get("restart", "no") not in ("no", "on-failure"):
        problems.append("migrate restarts after success ({})".format(migrate["restart"]))
    return problems


def check_persistent_data(deployment):
    """Broker and database keep their data in declared named volumes, and the
    broker's node name (from its hostname) is fixed."""
    rendered = deployment.rendered()
    declared = set(rendered.get("volumes") or {})
    problems = []
    if not rendered["services"].get(BROKER, {}).get("hostname"):
        problems.append("rabbitmq has no fixed hostname")
    for name, data_dir in ((BROKER, "/var/lib/rabbitmq"), (DATABASE, "/var/lib/mysql")):
        mounts = {
            target: volume
            for volume, target in map(
                named_volume, rendered["services"].get(name, {}).get("volumes", [])
            )
        }
        if not mounts.get(data_dir):
            problems.append(f"{name}: {data_dir} is not on a named volume")
    for name, service in rendered["services"].items():
        for volume, _ in map(named_volume, service.get("volumes", [])):
            if volume and volume not in declared:
                problems.append(f"{name}: volume {volume} is not declared")
    return problems


def check_image(deployment):
    instructions = dockerfile_instructions(deployment.dockerfile)
    kinds = [kind for kind, _ in instructions]
    arguments = lambda kind: [args for each, args in instructions if each == kind]  # noqa: E731
    problems = []
    if arguments("FROM")[-1:] != ["python:3.11-slim"]:
        problems.append("the image is not built FROM python:3.11-slim")
    if not any(re.search(r"\bPYTHONUNBUFFERED=1\b", args) for args in arguments("ENV")):
        problems.append("PYTHONUNBUFFERED=1 is not set")
    installs = [args for args in arguments("RUN") if "pip install" in args]
    if not any(re.search(r"-r\s+requirements\.txt\b", args) for args in installs):
        problems.append("no `pip install -r requirements.txt`")
    if any("requirements-dev" in args for _, args in instructions):
        problems.append("dev/test requirements go into the image")
    users = arguments("USER")
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the services run as root")
    if "ENTRYPOINT" in kinds:
        problems.append("ENTRYPOINT would wrap every compose command")
    cmd = (arguments("CMD") or [""])[-1]
    problems += command_problems("Dockerfile CMD", exec_form(cmd) or cmd)
    return problems


def needed_at_runtime():
    """What the image must contain: the packages that the services and the
    migration and the healthchecks import, config.yml and requirements.txt."""
    return first_party_packages(
        *makefile_services(), "order_pipeline.migrations", "order_pipeline.probe"
    ) + [CONFIG_FILE, "requirements.txt"]


def check_image_contents(deployment):
    """COPY brings in every package the commands import (and config.yml), and
    .dockerignore does not keep any of them out of the build context."""
    sources = copied_sources(deployment)
    problems = [
        f"{path} is not copied into the image"
        for path in needed_at_runtime()
        if path not in sources and "." not in sources
    ]
    problems += [
        f"{path} is copied, but .dockerignore excludes it"
        for path in needed_at_runtime()
        if ignored(deployment, path)
    ]
    return problems


def check_build_context_is_lean(deployment):
    must_ignore = [
        ".git",
        ".venv",
        ".env",
        ".pytest_cache",
        ".hypothesis",
        "order_pipeline/__pycache__",
        "bench-results",
    ]
    return [
        f".dockerignore does not exclude {path}"
        for path in must_ignore
        if not ignored(deployment, path)
    ]


def check_variables_documented(deployment):
    """Every variable compose reads is in .env.example with compose's default
    as its value, and none is required: `up` works without a .env."""
    example = deployment.env_example
    problems = []
    for name, op, default in sorted(set(compose_variables(deployment))):
        if name not in example:
            problems.append(f"{name} is read by compose.yaml but not in .env.example")
        elif op.endswith("?"):
            problems.append(f"{name} is required, so compose fails without a .env")
        elif default != example[name]:
            problems.append(
                f"{name} defaults to {default!r} in compose.yaml, {example[name]!r} in .env.example"
            )
    read = {name for name, _, _ in compose_variables(deployment)}
    problems += [
        f"{name} is in .env.example but compose.yaml ignores it"
        for name in example
        if name not in read
    ]
    return problems


def check_no_secrets(deployment):
    """Credentials come only from variables: no literal password in a
    service's environment or inside a URI, no shipped token, none baked
    into the image."""
    problems = []
    for name, service in deployment.compose["services"].items():
        for key, raw in environment(service).items():
            if (
                SECRET_NAME.search(key)
                and raw.lower() not in FLAG_VALUES
                and not COMPOSE_VARIABLE.fullmatch(raw)
            ):
                problems.append(f"{name}: {key} is a literal, not a variable")
            # Variables masked first: their `:-` is not the user:password colon.
            userinfo = re.match(r"\w[\w+.-]*://([^@/]*)@", COMPOSE_VARIABLE.sub("<var>", raw))
            password = userinfo and userinfo.group(1).partition(":")[2]
            if password and password != "<var>":
                problems.append(f"{name}: {key} has a literal password")
    for name, value in deployment.env_example.items():
        if re.search(r"TOKEN|SECRET", name) and value:
            problems.append(f".env.example ships a value for {name}")
    for kind, args in dockerfile_instructions(deployment.dockerfile):
        names = re.findall(r"(\w+)=", args) or args.split()[:1]
        if kind in ("ENV", "ARG") and any(SECRET_NAME.search(name) for name in names):
            problems.append(f"Dockerfile {kind} {args} looks like a secret")
    return problems


CHECKS = [
    check_commands,
    check_one_service_per_container,
    check_settings_are_read,
    check_passed_settings_keep_config_defaults,
    check_every_setting_reaches_the_services,
    check_services_reach_broker_and_database,
    check_only_gateway_published,
    check_healthchecks,
    check_start_order,
    check_persistent_data,
    check_image,
    check_image_contents,
    check_build_context_is_lean,
    check_variables_documented,
    check_no_secrets,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_deployment_holds(check):
    assert check(Deployment.from_files()) == []


def test_runtime_packages_are_found():
    """The image-contents check has something to check: the packages the
    services import, found from the code rather than listed by hand."""
    assert {"order_pipeline", "generator_service", "processor_service", "gateway"} <= set(
        needed_at_runtime()
    )


# --- each check can fail ----------------------------------------------------


def service(deployment, name):
    return deployment.compose["services"][name]


def setting(deployment, name, key, value):
    service(deployment, name)["environment"] = {
        **environment(service(deployment, name)),
        key: value,
    }


def replace_in_dockerfile(old, new):
    def mutate(deployment):
        assert old in deployment.dockerfile
        deployment.dockerfile = deployment.dockerfile.replace(old, new)

    return mutate


BREAKAGES = {
    "misspelt service module": (
        check_commands,
        lambda d: service(d, "processor")["command"].__setitem__(-1, "processor_servce"),
    ),
    "module without a service": (
        check_commands,
        lambda d: service(d, "processor")["command"].__setitem__(-1, "order_pipeline.config"),
    ),
    "shell-form command": (
        check_commands,
        lambda d: service(d, "gateway").__setitem__(
            "command", "nameko run --config config.yml gateway"
        ),
    ),
    "migrate runs something else": (
        check_commands,
        lambda d: service(d, MIGRATE).__setitem__("command", NAMEKO_RUN + ["gateway"]),
    ),
    "two services in one container": (
        check_one_service_per_container,
        lambda d: service(d, "processor")["command"].append("gateway"),
    ),
    "a service not started": (
        check_one_service_per_container,
        lambda d: d.compose["services"].pop("generator"),
    ),
    "typo'd setting": (
        check_settings_are_read,
        lambda d: setting(d, "generator", "ORDER_INTERVAL_SECOND", "1"),
    ),
    "default differs from config.yml": (
        check_passed_settings_keep_config_defaults,
        lambda d: setting(d, "generator", "ORDER_INTERVAL_SECONDS", "${ORDER_INTERVAL_SECONDS:-5}"),
    ),
    "processor misses a setting": (
        check_every_setting_reaches_the_services,
        lambda d: service(d, "processor").__setitem__(
            "environment",
            {
                key: value
                for key, value in environment(service(d, "processor")).items()
                if key != "RETRY_MAX_ATTEMPTS"
            },
        ),
    ),
    "setting fixed in compose": (
        check_every_setting_reaches_the_services,
        lambda d: setting(d, "generator", "MAX_WORKERS", "10"),
    ),
    "empty in .env is not the default": (
        check_every_setting_reaches_the_services,
        lambda d: setting(d, "processor", "PRICE_BAND", "${PRICE_BAND-0.10}"),
    ),
    "gateway address not set": (
        check_every_setting_reaches_the_services,
        lambda d: service(d, GATEWAY).__setitem__(
            "environment",
            {
                key: value
                for key, value in environment(service(d, GATEWAY)).items()
                if key != "WEB_SERVER_ADDRESS"
            },
        ),
    ),
    "AMQP_URI on localhost": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d,
            "processor",
            "AMQP_URI",
            "amqp://${RABBITMQ_USER:-orders}:${RABBITMQ_PASSWORD:-orders}@localhost:5672/",
        ),
    ),
    "DB password not the database's": (
        check_services_reach_broker_and_database,
        lambda d: setting(d, DATABASE, "MARIADB_PASSWORD", "${DB_ROOT_PASSWORD:-orders}"),
    ),
    "gateway publishes the wrong port": (
        check_only_gateway_published,
        lambda d: service(d, GATEWAY).__setitem__("ports", ["8000:8080"]),
    ),
    "processor publishes a port": (
        check_only_gateway_published,
        lambda d: service(d, "processor").__setitem__("ports", ["9000:8000"]),
    ),
    "processor has a container_name": (
        check_only_gateway_published,
        lambda d: service(d, "processor").__setitem__("container_name", "processor"),
    ),
    "no broker healthcheck": (check_healthchecks, lambda d: service(d, BROKER).pop("healthcheck")),
    "database healthcheck disabled": (
        check_healthchecks,
        lambda d: service(d, DATABASE)["healthcheck"].__setitem__("disable", True),
    ),
    "processor without a healthcheck": (
        check_healthchecks,
        lambda d: service(d, "processor").pop("healthcheck"),
    ),
    "generator probed as the processor": (
        check_healthchecks,
        lambda d: service(d, "generator")["healthcheck"].__setitem__(
            "test", PROBE + ["rpc", "order_processor", "metrics"]
        ),
    ),
    "healthcheck switches generation on": (
        check_healthchecks,
        lambda d: service(d, "generator")["healthcheck"].__setitem__(
            "test", PROBE + ["rpc", "order_generator", "start"]
        ),
    ),
    "healthcheck calls a method that is not RPC": (
        check_healthchecks,
        lambda d: service(d, "generator")["healthcheck"].__setitem__(
            "test", PROBE + ["rpc", "order_generator", "_set_running"]
        ),
    ),
    "probe arguments it does not accept": (
        check_healthchecks,
        lambda d: service(d, "processor")["healthcheck"].__setitem__(
            "test", PROBE + ["order_processor", "metrics"]
        ),
    ),
    "gateway probes another path": (
        check_healthchecks,
        lambda d: service(d, GATEWAY)["healthcheck"].__setitem__(
            "test", PROBE + ["http", "http://127.0.0.1:8000/openapi.json"]
        ),
    ),
    "gateway probes another port": (
        check_healthchecks,
        lambda d: service(d, GATEWAY)["healthcheck"].__setitem__(
            "test", PROBE + ["http", "http://127.0.0.1:8080/health"]
        ),
    ),
    "gateway healthcheck with curl": (
        check_healthchecks,
        lambda d: service(d, GATEWAY)["healthcheck"].__setitem__(
            "test", ["CMD", "curl", "-f", "http://127.0.0.1:8000/health"]
        ),
    ),
    "probe outlasts the healthcheck": (
        check_healthchecks,
        lambda d: service(d, "processor").__setitem__(
            "healthcheck", {**service(d, "processor")["healthcheck"], "timeout": "3s"}
        ),
    ),
    "service does not wait for migrate": (
        check_start_order,
        lambda d: service(d, "processor").__setitem__(
            "depends_on",
            {
                BROKER: {"condition": "service_healthy"},
                DATABASE: {"condition": "service_healthy"},
                MIGRATE: {"condition": "service_started"},
            },
        ),
    ),
    "migrate restarts forever": (
        check_start_order,
        lambda d: service(d, MIGRATE).__setitem__("restart", "unless-stopped"),
    ),
    "broker without hostname": (
        check_persistent_data,
        lambda d: service(d, BROKER).pop("hostname"),
    ),
    "database on an anonymous volume": (
        check_persistent_data,
        lambda d: service(d, DATABASE).__setitem__("volumes", ["/var/lib/mysql"]),
    ),
    "volume not declared": (check_persistent_data, lambda d: d.compose["volumes"].pop("db-data")),
    "wrong base image": (check_image, replace_in_dockerfile("python:3.11-slim", "python:3.12")),
    "runs as root": (check_image, replace_in_dockerfile("USER 10001:10001", "USER root")),
    "dev requirements installed": (
        check_image,
        replace_in_dockerfile("-r requirements.txt", "-r requirements-dev.txt"),
    ),
    "buffered output": (
        check_image,
        replace_in_dockerfile("PYTHONUNBUFFERED=1", "PYTHONOPTIMIZE=1"),
    ),
    "shell-form CMD": (
        check_image,
        replace_in_dockerfile(
            'CMD ["nameko", "run", "--config", "config.yml", "generator_service", '
            '"processor_service", "gateway"]',
            "CMD nameko run --config config.yml gateway",
        ),
    ),
    "package not copied": (
        check_image_contents,
        replace_in_dockerfile("COPY order_pipeline ./order_pipeline\n", ""),
    ),
    "package excluded from the context": (
        check_image_contents,
        lambda d: d.dockerignore.append("gateway/"),
    ),
    ".venv sent to the builder": (
        check_build_context_is_lean,
        lambda d: d.dockerignore.remove(".venv"),
    ),
    "variable not documented": (
        check_variables_documented,
        lambda d: d.env_example.pop("DB_PASSWORD"),
    ),
    "undocumented default": (
        check_variables_documented,
        lambda d: setting(d, BROKER, "RABBITMQ_DEFAULT_PASS", "${RABBITMQ_PASSWORD:-hunter2}"),
    ),
    "required variable": (
        check_variables_documented,
        lambda d: setting(d, GATEWAY, "GATEWAY_TOKEN", "${GATEWAY_TOKEN:?set a token}"),
    ),
    "literal password": (
        check_no_secrets,
        lambda d: setting(d, BROKER, "RABBITMQ_DEFAULT_PASS", "hunter2"),
    ),
    "literal password in a URI": (
        check_no_secrets,
        lambda d: setting(
            d, "processor", "DB_URI", "mysql+pymysql://orders:hunter2@db:3306/orders"
        ),
    ),
    "shipped token": (
        check_no_secrets,
        lambda d: d.env_example.__setitem__("GATEWAY_TOKEN", "s3cr3t"),
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_check_catches(breakage):
    check, mutate = BREAKAGES[breakage]
    deployment = copy.deepcopy(Deployment.from_files())
    mutate(deployment)
    assert check(deployment) != []


def test_every_check_is_shown_to_fail():
    assert {check for check, _ in BREAKAGES.values()} == set(CHECKS)
