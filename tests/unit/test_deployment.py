"""The Docker packaging, checked against the code since no Docker engine runs
here: Dockerfile, .dockerignore, and both compose files with their variables
(compose.yaml with .env.example on one host; compose.cluster.yaml with
deploy/cluster.env.example and the files under deploy/ it mounts, on
clusters).

Each check is a function returning the problems it finds (empty when the
files are right). The `test_*_holds` tests run every check on the real files,
each compose check on both compose files; `test_check_catches` runs each
check on a copy broken in the way it guards against, so every check is shown
to be able to fail.

The files are read as compose and docker build read them by
tests/support/deployment.py (`Deployment`); commands and healthchecks are
checked against the code by tests/support/service_commands.py, which the
Kubernetes manifests' test shares.
"""

import copy
import os
import re
from urllib.parse import urlsplit

import pytest

from order_pipeline.commands.provision import password_variable
from order_pipeline.identities import IDENTITIES, identity
from tests.support.deployment import (
    CERTIFICATES,
    CLUSTER,
    COMPOSE_VARIABLE,
    CONFIG_FILE,
    LAYOUTS,
    NAMEKO_RUN,
    ROOT,
    Deployment,
    bind_mounts,
    compose_variables,
    config_variables,
    container_ports,
    copied_sources,
    dockerfile_instructions,
    environment,
    exec_form,
    first_party_packages,
    ignored,
    made_certificates,
    makefile_services,
    named_volume,
    nameko_modules,
    nameko_services,
    strings_in,
)
from tests.support.service_commands import (
    GATEWAY,
    PROBE,
    SETTINGS_IN_PROGRESS,
    command_problems,
    known_settings,
    probe_problems,
)

# What the provision command reads besides config.yml's settings.
PROVISION_INPUTS = {"RABBITMQ_ADMIN_URL", "DB_ADMIN_URI", "RABBITMQ_VHOST"} | {
    password_variable(each.name, system)
    for each in IDENTITIES
    for system, grant in (("AMQP", each.broker), ("DB", each.database))
    if grant is not None
}
# The broker and database user each nameko service module connects as.
SERVICE_IDENTITIES = {
    "generator_service": "order_generator",
    "processor_service": "order_processor",
    "gateway": "order_gateway",
}
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|COOKIE", re.IGNORECASE)
# Settings that name a file (a certificate, a key): paths, not secrets.
FILE_SETTING = re.compile(r"_FILE$")
# Variables the services' containers may set that config.yml does not read:
# OpenSSL's own, which the gateway's healthcheck probe trusts its CA by.
STANDARD_VARIABLES = {"SSL_CERT_FILE"}
# Secrets with no safe default: an example file leaves them empty.
UNSHIPPED_SECRET = re.compile(r"TOKEN|SECRET|COOKIE")
FLAG_VALUES = {"0", "1", "yes", "no", "true", "false"}


# --- the checks -----------------------------------------------------------


def check_commands(deployment):
    problems = []
    for name, service in deployment.services().items():
        for key in ("command", "entrypoint"):
            if key in service and not isinstance(service[key], list):
                problems.append(f"{name}: {key} is not exec form")
    for name, service in deployment.app_services().items():
        problems += command_problems(name, service.get("command"))
    migration, command = deployment.layout.migration, list(deployment.layout.migration_command)
    if deployment.app_services().get(migration, {}).get("command") != command:
        problems.append(f"{migration} does not run {command}")
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
    known = known_settings() | STANDARD_VARIABLES
    return [
        f"{name}: sets {key}, which config.yml never reads"
        for name, service in deployment.app_services().items()
        for key in environment(service)
        if key not in known
        and not (name == deployment.layout.migration and key in PROVISION_INPUTS)
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


def check_every_setting_reaches_the_services(deployment):
    """Every setting config.yml reads, set in .env or the environment,
    arrives in every container built from our image; left unset or empty
    (as the example file leaves some), the container gets config.yml's
    default. The settings compose sets itself (`Layout.set_by_compose`) are
    set in every one of them, to the value the layout needs."""
    set_by_compose = deployment.layout.set_by_compose
    problems = []
    for key, wanted in set_by_compose.items():
        for name, service in deployment.app_services().items():
            got = environment(service).get(key)
            if not got or wanted not in (None, got):
                problems.append(f"{name}: {key} is {got!r}, wanted {wanted or 'a value'}")
    passed = {
        key: default
        for key, default in config_variables().items()
        if key not in set_by_compose and key not in PER_SERVICE_SETTINGS
    }
    # Each setting with a value of its own, so one read from another's
    # variable shows; then none set; then all empty.
    values = {key: "value-of-" + key.lower() for key in passed}
    for label, env, wanted in (
        ("each set", values, values),
        ("nothing set", {}, passed),
        ("each empty", dict.fromkeys(passed, ""), passed),
    ):
        for name, service in deployment.app_services(env).items():
            settings = environment(service)
            problems += [
                f"{name}: with {label} the container gets {key}={settings.get(key)!r}, wanted {wanted[key]!r}"
                for key in passed
                if settings.get(key) != wanted[key]
            ]
    return problems


# What each service sets for itself, with its own user
# (check_services_reach_broker_and_database).
PER_SERVICE_SETTINGS = {"AMQP_URI", "DB_URI"}


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
    """Each nameko service connects to every broker node (AMQP_URI lists
    them, separated by ";") and, if its identity has tables, to the
    database's address, as its own user with the password the provision
    step gives that user; the provision step logs in as the administrators
    the brokers and database servers are started with, to the first
    broker's management API and to the database they create."""
    layout = deployment.layout
    problems = []
    for label, env in variable_sets(deployment).items():
        services = deployment.services(env)
        broker = environment(services.get(layout.brokers[0], {}))
        database = environment(services.get(layout.database_servers[0], {}))
        provision = environment(services.get(layout.migration, {}))
        for name, modules in nameko_services(deployment).items():
            user = SERVICE_IDENTITIES.get(modules[0], "?")
            settings = environment(services[name])
            wanted = {"AMQP_URI": (layout.amqp[0], layout.brokers, layout.amqp[1], "")}
            if identity(user).database is not None:
                wanted["DB_URI"] = (
                    "mysql+pymysql",
                    (layout.database_address,),
                    3306,
                    database.get("MARIADB_DATABASE"),
                )
            elif "DB_URI" in settings:
                problems.append(f"{name} ({label}): DB_URI set, but {user} has no database user")
            for key, (scheme, hosts, port, path) in wanted.items():
                system = "AMQP" if key == "AMQP_URI" else "DB"
                password = provision.get(password_variable(user, system))
                nodes = [urlsplit(uri) for uri in settings.get(key, "").split(";")]
                if sorted(node.hostname or "" for node in nodes) != sorted(hosts):
                    problems.append(
                        f"{name} ({label}): {key} names {[node.hostname for node in nodes]}, "
                        f"not {list(hosts)}"
                    )
                problems += [
                    f"{name} ({label}): {key} {node.geturl()} is not {user} with its "
                    f"provisioned password at {scheme}://{node.hostname}:{port}/{path}"
                    for node in nodes
                    if (node.scheme, node.port, node.path.lstrip("/")) != (scheme, port, path)
                    or (node.username, node.password) != (user, password)
                    or not password
                ]
        admin = urlsplit(provision.get("RABBITMQ_ADMIN_URL", ""))
        if (admin.scheme, admin.hostname, admin.port, admin.username, admin.password) != (
            layout.management[0],
            layout.brokers[0],
            layout.management[1],
            broker.get("RABBITMQ_DEFAULT_USER"),
            broker.get("RABBITMQ_DEFAULT_PASS"),
        ):
            problems.append(
                f"{layout.migration} ({label}): RABBITMQ_ADMIN_URL is not the broker's "
                f"administrator at {layout.management[0]}://{layout.brokers[0]}:{layout.management[1]}/"
            )
        root = urlsplit(provision.get("DB_ADMIN_URI", ""))
        if (root.hostname, root.username, root.password, root.path.lstrip("/")) != (
            layout.database_address,
            "root",
            database.get("MARIADB_ROOT_PASSWORD"),
            database.get("MARIADB_DATABASE"),
        ):
            problems.append(
                f"{layout.migration} ({label}): DB_ADMIN_URI is not the database's root"
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


def check_healthchecks(deployment):
    """The brokers and database servers have their images' own checks (a
    proxy's is `check_database_proxy`'s); every nameko service has one that
    asks the service itself (see `probe_problems`)."""
    layout = deployment.layout
    expected = {broker: ["CMD", "rabbitmq-diagnostics"] for broker in layout.brokers} | {
        server: ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]
        for server in layout.database_servers
    }
    services = deployment.services()
    problems = []
    for name, start in expected.items():
        health = services.get(name, {}).get("healthcheck") or {}
        test = health.get("test") or []
        # MariaDB's check may log in as mysql@localhost over the socket,
        # which the image creates only when asked to.
        if "--su-mysql" in test:
            test = [arg for arg in test if arg != "--su-mysql"]
            if environment(services[name]).get("MARIADB_MYSQL_LOCALHOST_USER") != "1":
                problems.append(f"{name}: healthcheck as mysql@localhost, which is not created")
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
    """No service built from our image depends on anything, and nothing on
    it (podman-compose's --requires chains fail on podman 4.3 and keep
    `down` from removing the servers after --scale): every service and the
    provision step wait by themselves, STARTUP_WAIT_SECONDS being more than
    0 by default; the provision step does not run again once it has
    succeeded. Servers may wait for each other (a cluster's nodes for the
    one that forms it)."""
    layout = deployment.layout
    services = deployment.services()
    apps = deployment.app_services()
    problems = [
        f"{name}: depends_on {service['depends_on']}; the services wait by themselves"
        for name, service in apps.items()
        if service.get("depends_on")
    ]
    problems += [
        f"{name}: depends_on {dependency}, a service that waits by itself"
        for name, service in services.items()
        for dependency in service.get("depends_on") or {}
        if dependency in apps
    ]
    for name in [*nameko_services_of(services), layout.migration]:
        wait = environment(services.get(name, {})).get("STARTUP_WAIT_SECONDS", "0")
        if float(wait or config_variables()["STARTUP_WAIT_SECONDS"]) <= 0:
            problems.append(f"{name}: STARTUP_WAIT_SECONDS={wait!r}, so it does not wait")
    migrate = services.get(layout.migration, {})
    if migrate.get("restart", "no") not in ("no", "on-failure"):
        problems.append(
            "{} restarts after success ({})".format(layout.migration, migrate["restart"])
        )
    return problems


def nameko_services_of(services):
    return [name for name, service in services.items() if nameko_modules(service.get("command"))]


def check_persistent_data(deployment):
    """Brokers and database servers keep their data in named volumes of
    their own, declared, and each broker's node name (from its hostname) is
    fixed."""
    layout = deployment.layout
    rendered = deployment.rendered()
    declared = set(rendered.get("volumes") or {})
    problems = []
    for broker in layout.brokers:
        if not rendered["services"].get(broker, {}).get("hostname"):
            problems.append(f"{broker} has no fixed hostname")
    data_dirs = [(broker, "/var/lib/rabbitmq") for broker in layout.brokers] + [
        (server, "/var/lib/mysql") for server in layout.database_servers
    ]
    owners = {}
    for name, data_dir in data_dirs:
        mounts = {
            target: volume
            for volume, target in map(
                named_volume, rendered["services"].get(name, {}).get("volumes", [])
            )
        }
        if not mounts.get(data_dir):
            problems.append(f"{name}: {data_dir} is not on a named volume")
        elif owners.setdefault(mounts[data_dir], name) != name:
            problems.append(
                f"{name} shares volume {mounts[data_dir]} with {owners[mounts[data_dir]]}"
            )
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
    # FROM ${BASE_IMAGE}: the ARG's default is what users build on.
    build_args = dict(args.partition("=")[::2] for args in arguments("ARG") if "=" in args)
    base = [
        COMPOSE_VARIABLE.sub(lambda m: build_args.get(m["name"] or m["bare"], ""), args)
        for args in arguments("FROM")
    ]
    if base[-1:] != ["python:3.11-slim"]:
        problems.append("the image is not built FROM python:3.11-slim by default")
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
        *makefile_services(), "order_pipeline.commands.migrate", "order_pipeline.commands.probe"
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
        "deploy/cluster.env",
        "deploy/k8s/secrets/gateway.env",
        "deploy/k8s/tls/order_gateway/key.pem",
        "deploy/tls/certs/order_gateway/key.pem",
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
    """Every variable compose reads is in the example file with compose's
    default as its value, and none is required but the layout's secrets
    without a default: `up` works without a .env otherwise."""
    layout, example = deployment.layout, deployment.env_example
    compose_file, example_file = layout.compose_file, layout.env_example
    problems = []
    for name, op, default in sorted(set(compose_variables(deployment))):
        if name not in example:
            problems.append(f"{name} is read by {compose_file} but not in {example_file}")
        elif op.endswith("?") != (name in layout.required):
            problems.append(
                f"{name} is {'' if op.endswith('?') else 'not '}required by {compose_file}"
            )
        elif not op.endswith("?") and default != example[name]:
            problems.append(
                f"{name} defaults to {default!r} in {compose_file}, {example[name]!r} in {example_file}"
            )
    read = {name for name, _, _ in compose_variables(deployment)}
    # A password with a default is a password everyone knows.
    problems += [
        f"{name} is a secret with a default in {compose_file}"
        for name in sorted(read)
        if name.endswith(("PASSWORD", "COOKIE")) and name not in layout.required
    ]
    problems += [
        f"{name} is in {example_file} but {compose_file} ignores it"
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
        # A secret passed on a command line: an Erlang cookie, or the
        # password of Galera's state transfer.
        for raw in strings_in(service):
            masked = COMPOSE_VARIABLE.sub("<var>", raw)
            if re.search(r"-setcookie\s+(?!<var>)\S|sst-auth=[^:\s]*:(?!<var>)\S", masked):
                problems.append(f"{name}: {raw!r} holds a literal secret")
        for key, raw in environment(service).items():
            if (
                SECRET_NAME.search(key)
                and not FILE_SETTING.search(key)
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
        if UNSHIPPED_SECRET.search(name) and value:
            problems.append(f"{deployment.layout.env_example} ships a value for {name}")
    for kind, args in dockerfile_instructions(deployment.dockerfile):
        names = re.findall(r"(\w+)=", args) or args.split()[:1]
        if kind in ("ENV", "ARG") and any(SECRET_NAME.search(name) for name in names):
            problems.append(f"Dockerfile {kind} {args} looks like a secret")
    return problems


def mounted_file(service, target_dir):
    """(source, text) of the file a service mounts into `target_dir`, else
    (None, "")."""
    for target, source in bind_mounts(service).items():
        if target.startswith(target_dir) and (ROOT / source).is_file():
            return source, (ROOT / source).read_text()
    return None, ""


def check_mounted_files_exist(deployment):
    """What a service mounts from the repository is there, and an entrypoint
    it mounts can be executed."""
    problems = []
    for name, service in deployment.services().items():
        mounts = bind_mounts(service)
        problems += [
            f"{name}: mounts ./{source}, which does not exist"
            for source in mounts.values()
            if not (ROOT / source).exists() and not source.startswith(CERTIFICATES + "/")
        ]
        entrypoint = (service.get("entrypoint") or [None])[0]
        source = mounts.get(entrypoint)
        if source and not os.access(ROOT / source, os.X_OK):
            problems.append(f"{name}: its entrypoint ./{source} is not executable")
    return problems


def check_broker_cluster(deployment):
    """Several broker nodes form one cluster: each reads a rabbitmq.conf
    whose classic peer discovery lists exactly their node names, and all of
    them (and their CLI tools, which the healthcheck uses) share one Erlang
    cookie and the administrator."""
    brokers = deployment.layout.brokers
    if len(brokers) < 2:
        return []
    services = deployment.services()
    problems = []
    shared = set()
    for broker in brokers:
        service = services.get(broker, {})
        source, text = mounted_file(service, "/etc/rabbitmq/conf.d/")
        settings = dict(
            (key.strip(), value.strip())
            for key, _, value in (
                line.partition("=") for line in text.splitlines() if not line.startswith("#")
            )
            if value
        )
        nodes = {
            value
            for key, value in settings.items()
            if key.startswith("cluster_formation.classic_config.nodes.")
        }
        if settings.get("cluster_formation.peer_discovery_backend") != "classic_config":
            problems.append(f"{broker}: no classic_config peer discovery in {source}")
        if nodes != {f"rabbit@{services[each].get('hostname')}" for each in brokers}:
            problems.append(f"{broker}: {source} lists {sorted(nodes)}, not the broker nodes")
        env = environment(service)
        cookies = {
            re.sub(r".*-setcookie\s+(\S+).*", r"\1", env.get(key, ""))
            for key in ("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "RABBITMQ_CTL_ERL_ARGS")
        }
        if len(cookies) != 1 or not all(cookies):
            problems.append(f"{broker}: the node and its CLI tools are not given one cookie")
        shared.add(
            (frozenset(cookies), env.get("RABBITMQ_DEFAULT_USER"), env.get("RABBITMQ_DEFAULT_PASS"))
        )
    if len(shared) != 1:
        problems.append("the broker nodes do not share one cookie and administrator")
    return problems


def check_galera_cluster(deployment):
    """Several database servers form one Galera cluster: each reads a
    galera.cnf whose gcomm:// address lists exactly them, names itself in
    its command, and logs state transfers in as the SST user the initdb
    script creates; exactly one bootstraps, and the others start after it."""
    servers = deployment.layout.database_servers
    if len(servers) < 2:
        return []
    services = deployment.services()
    problems = []
    bootstrap = [
        name
        for name in servers
        if environment(services.get(name, {})).get("GALERA_BOOTSTRAP") == "1"
    ]
    if len(bootstrap) != 1:
        return [f"{bootstrap} have GALERA_BOOTSTRAP=1, wanted exactly one node"]
    for name in servers:
        service = services.get(name, {})
        source, text = mounted_file(service, "/etc/mysql/conf.d/")
        cnf = {
            key.strip(): value.strip().strip('"')
            for key, _, value in (line.partition("=") for line in text.splitlines())
            if value and not key.lstrip().startswith("#")
        }
        address = cnf.get("wsrep_cluster_address", "")
        if not address.startswith("gcomm://") or sorted(address[8:].split(",")) != sorted(servers):
            problems.append(f"{name}: {source} has wsrep_cluster_address {address!r}")
        for key, wanted in (
            ("wsrep_on", "ON"),
            ("binlog_format", "ROW"),
            ("innodb_autoinc_lock_mode", "2"),
        ):
            if cnf.get(key) != wanted:
                problems.append(
                    f"{name}: {source} has {key}={cnf.get(key)!r}, Galera needs {wanted}"
                )
        command = service.get("command") or []
        for flag in ("--wsrep-node-name", "--wsrep-node-address"):
            if f"{flag}={name}" not in command:
                problems.append(f"{name}: its command has no {flag}={name}")
        env = environment(service)
        auth = f"--wsrep-sst-auth={env.get('GALERA_SST_USER')}:{env.get('GALERA_SST_PASSWORD')}"
        if cnf.get("wsrep_sst_method") == "mariabackup" and auth not in command:
            problems.append(f"{name}: mariabackup state transfers without {auth}")
        initdb = bind_mounts(service).get("/docker-entrypoint-initdb.d")
        scripts = " ".join(
            path.read_text() for path in sorted((ROOT / (initdb or "-")).glob("*.sh"))
        )
        if "CREATE USER IF NOT EXISTS '${GALERA_SST_USER}'" not in scripts:
            problems.append(f"{name}: no initdb script creates the SST user")
        if "--galera_ready" not in ((service.get("healthcheck") or {}).get("test") or []):
            problems.append(f"{name}: healthy before it is synced with the cluster")
        if name not in bootstrap:
            depends = (service.get("depends_on") or {}).get(bootstrap[0]) or {}
            if depends.get("condition") != "service_healthy":
                problems.append(f"{name} does not wait for the bootstrap node {bootstrap[0]}")
    return problems


def haproxy_sections(text):
    """{section header: [its lines]} of an haproxy.cfg."""
    sections, current = {}, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            current = sections.setdefault(line.strip(), [])
        elif current is not None:
            current.append(line.strip())
    return sections


# The error a node that requires TLS answers a plain login with.
ACCESS_DENIED = "ff1504"  # an ERR packet, code 1045 (little-endian)


def proxy_check_user(listener, tls):
    """The user HAProxy's check logs in as. On plain nodes, `option
    mysql-check user NAME`, which needs the login to succeed. On nodes that
    require TLS, which HAProxy cannot speak inside the MySQL protocol, a
    tcp-check that sends a protocol 4.1 login (the user name from byte 36
    of the packet) and expects the node to refuse it (error 1045): a node
    that took the plain login fails the check, as long as the user exists."""
    if not tls:
        found = next((re.search(r"option mysql-check user (\S+)", line) for line in listener), None)
        return found and found.group(1)
    steps = [line for line in listener if line.startswith(("option tcp-check", "tcp-check "))]
    sends = [line.split()[-1] for line in steps if line.startswith("tcp-check send-binary ")]
    if "option tcp-check" not in steps or len(sends) != 1:
        return None
    after_send = steps[steps.index(f"tcp-check send-binary {sends[0]}") + 1 :]
    if f"tcp-check expect binary {ACCESS_DENIED}" not in after_send:
        return None
    login = bytes.fromhex(sends[0])
    return login[36:].split(b"\0", 1)[0].decode()


def check_database_proxy(deployment):
    """A proxy in front of the database servers: it listens on DB_URI's
    port and passes connections to exactly those servers, each health
    checked with a MariaDB handshake as a user the initdb script creates,
    holding the node in use (no failback);
    its own healthcheck asks its monitor URI, which fails when no server is
    up."""
    layout = deployment.layout
    if layout.database_address in layout.database_servers:
        return []
    services = deployment.services()
    proxy = services.get(layout.database_address, {})
    source, text = mounted_file(proxy, "/usr/local/etc/haproxy/")
    sections = haproxy_sections(text)
    problems = []
    listener = next((lines for lines in sections.values() if "bind :3306" in lines), None)
    if listener is None:
        return [f"{layout.database_address}: {source} listens on no :3306"]
    servers = sorted(line.split()[1] for line in listener if line.startswith("server "))
    if servers != sorted(layout.database_servers) or not all(
        " check" in line for line in listener if line.startswith("server ")
    ):
        problems.append(
            f"{source} passes connections to {servers}, each checked, not {list(layout.database_servers)}"
        )
    if "stick on int(1)" not in listener:
        problems.append(
            f"{source}: traffic goes back to a node that returns (no one-entry stick table)"
        )
    check_user = proxy_check_user(listener, layout.tls)
    initdb = bind_mounts(services.get(layout.database_servers[0], {})).get(
        "/docker-entrypoint-initdb.d"
    )
    scripts = " ".join(path.read_text() for path in sorted((ROOT / (initdb or "-")).glob("*.sh")))
    if not check_user or f"'{check_user}'@'%'" not in scripts:
        problems.append(
            f"{source}: no {'TLS-refusal check' if layout.tls else 'mysql-check'}"
            " logging in as a user the initdb script creates"
        )
    monitor = next(
        (
            lines
            for lines in sections.values()
            if any(line.startswith("monitor-uri ") for line in lines)
        ),
        [],
    )
    uri = next((line.split()[1] for line in monitor if line.startswith("monitor-uri ")), None)
    port = next((line.rsplit(":", 1)[1] for line in monitor if line.startswith("bind ")), None)
    if not any(re.fullmatch(r"monitor fail if \{ nbsrv\(\w+\) lt 1 \}", line) for line in monitor):
        problems.append(f"{source}: the monitor URI does not fail when no server is up")
    health = proxy.get("healthcheck") or {}
    test = " ".join(health.get("test") or [])
    if (
        health.get("disable")
        or not uri
        or f"/dev/tcp/127.0.0.1/{port}" not in test
        or f"GET {uri} " not in test
    ):
        problems.append(
            f"{layout.database_address}: healthcheck {test!r} does not ask {uri} on port {port}"
        )
    return problems


def conf_settings(text):
    """{key: value} of a RabbitMQ .conf or MariaDB .cnf text (sections
    ignored: the keys checked here are in one each)."""
    return {
        key.strip(): value.strip().strip('"')
        for key, _, value in (line.partition("=") for line in text.splitlines())
        if value and not key.lstrip().startswith(("#", "["))
    }


def erlang_options(text, side):
    """{option: value} of the `server` or `client` list of an Erlang
    distribution options file, for the simple terms it holds."""
    body = re.search(r"\{" + side + r",\s*\[(.*?)\]\}", text, re.DOTALL)
    return dict(re.findall(r"\{(\w+),\s*\"?([^\"}]+)\"?\}", body.group(1) if body else ""))


def broker_settings(service):
    """{key: value} of every file a broker node mounts into conf.d, read in
    the order RabbitMQ reads them (by name, a later one winning)."""
    settings = {}
    for target, source in sorted(bind_mounts(service).items()):
        if target.startswith("/etc/rabbitmq/conf.d/") and (ROOT / source).is_file():
            settings.update(conf_settings((ROOT / source).read_text()))
    return settings


def certificate_mount(service):
    """(identity, target) of a service's mount of a make-certs.sh directory,
    else (None, None); only a mount that compose refuses to create when the
    directory is missing counts."""
    for mount in service.get("volumes", []):
        if (
            isinstance(mount, dict)
            and mount.get("source", "").startswith(f"./{CERTIFICATES}/")
            and mount.get("read_only")
            and (mount.get("bind") or {}).get("create_host_path") is False
        ):
            return mount["source"].rsplit("/", 1)[1], mount["target"]
    return None, None


def in_directory(path, directory, name):
    return bool(directory) and path == f"{directory}/{name}"


def check_tls(deployment):
    """Every hop of a TLS layout is TLS, with certificates make-certs.sh
    makes, each for the host its peers name:

    - brokers: deploy/rabbitmq/tls.conf in conf.d (no plain listener, amqps
      on 5671, peers verified and made to show a certificate), and the
      management API on https only, the same way (the provision step's
      port, checked by check_services_reach_broker_and_database); nodes and
      CLI tools on Erlang distribution over TLS with inter_node_tls.config
      (both sides verified), its files those of the node's certificate;
    - Galera nodes: TLS required of clients, replication (socket.ssl) and
      state transfers (encrypt=3, peer names checked) over TLS, all with
      the node's certificate;
    - services: each mounts a certificate of its own, and its TLS settings
      name those files (the gateway's HTTPS too, which its healthcheck asks
      over https); AMQP_URI's scheme is checked by
      check_services_reach_broker_and_database.
    """
    layout = deployment.layout
    if not layout.tls:
        return []
    services = deployment.services()
    problems = []
    identities = {}
    for name, service in services.items():
        identity, target = certificate_mount(service)
        if identity:
            identities[name] = (identity, target)
        elif name in (*layout.brokers, *layout.database_servers, *deployment.app_services()):
            problems.append(
                f"{name}: mounts no certificates from {CERTIFICATES} (read-only, never created)"
            )
    shared = {each for each, _ in identities.values()}
    if len(shared) != len(identities):
        problems.append(f"services share certificates: {identities}")
    made = made_certificates()
    for name, (identity, _) in identities.items():
        if identity not in made:
            problems.append(
                f"{name}: mounts {CERTIFICATES}/{identity}, which make-certs.sh does not make"
            )
            continue
        wanted = {services[name].get("hostname") or name}
        if name in layout.database_servers:
            wanted.add(layout.database_address)
        if name == GATEWAY:
            wanted.add("127.0.0.1")  # its healthcheck's host
        if name in (*layout.brokers, *layout.database_servers, GATEWAY) and not (
            wanted <= made[identity]
        ):
            problems.append(
                f"{name}: its certificate is for {sorted(made[identity])}, not {sorted(wanted)}"
            )

    for broker in layout.brokers:
        service = services.get(broker, {})
        certs = identities.get(broker, (None, None))[1]
        tls_source, tls_text = mounted_file(service, "/etc/rabbitmq/conf.d/30-tls.conf")
        conf = conf_settings(tls_text)
        wanted = {
            "listeners.tcp": "none",
            "listeners.ssl.default": "5671",
            "ssl_options.verify": "verify_peer",
            "ssl_options.fail_if_no_peer_cert": "true",
        }
        problems += [
            f"{broker}: {tls_source} sets {key}={conf.get(key)!r}, wanted {value!r}"
            for key, value in wanted.items()
            if conf.get(key) != value
        ]
        for key, file in (
            ("cacertfile", "ca.pem"),
            ("certfile", "cert.pem"),
            ("keyfile", "key.pem"),
        ):
            if not in_directory(conf.get(f"ssl_options.{key}"), certs, file):
                problems.append(f"{broker}: ssl_options.{key} is not {certs}/{file}")
        management = broker_settings(service)
        wanted = {
            "management.ssl.port": str(layout.management[1]),
            "management.ssl.verify": "verify_peer",
            "management.ssl.fail_if_no_peer_cert": "true",
        }
        problems += [
            f"{broker}: its conf.d sets {key}={management.get(key)!r}, wanted {value!r}"
            for key, value in wanted.items()
            if management.get(key) != value
        ]
        for key, file in (
            ("cacertfile", "ca.pem"),
            ("certfile", "cert.pem"),
            ("keyfile", "key.pem"),
        ):
            if not in_directory(management.get(f"management.ssl.{key}"), certs, file):
                problems.append(f"{broker}: management.ssl.{key} is not {certs}/{file}")
        problems += [
            f"{broker}: its conf.d sets {key}, a plain management listener"
            for key in management
            if key.startswith("management.tcp.")
        ]
        env = environment(service)
        optfiles = set()
        for key in ("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "RABBITMQ_CTL_ERL_ARGS"):
            found = re.search(r"-proto_dist inet_tls -ssl_dist_optfile (\S+)", env.get(key, ""))
            if not found:
                problems.append(f"{broker}: {key} does not put Erlang distribution on TLS")
            else:
                optfiles.add(found.group(1))
        source = bind_mounts(service).get(next(iter(optfiles), None) or "-")
        text = (ROOT / source).read_text() if source and (ROOT / source).is_file() else ""
        for side, verify in (
            ("server", {"verify": "verify_peer", "fail_if_no_peer_cert": "true"}),
            ("client", {"verify": "verify_peer"}),
        ):
            options = erlang_options(text, side)
            problems += [
                f"{broker}: {source} {side} {key} is {options.get(key)!r}, wanted {value!r}"
                for key, value in verify.items()
                if options.get(key) != value
            ]
            for key, file in (
                ("cacertfile", "ca.pem"),
                ("certfile", "cert.pem"),
                ("keyfile", "key.pem"),
            ):
                if not in_directory(options.get(key), certs, file):
                    problems.append(f"{broker}: {source} {side} {key} is not {certs}/{file}")

    for server in layout.database_servers:
        service = services.get(server, {})
        certs = identities.get(server, (None, None))[1]
        source, text = mounted_file(service, "/etc/mysql/conf.d/")
        cnf = conf_settings(text)
        if cnf.get("require_secure_transport") != "ON":
            problems.append(f"{server}: {source} does not require TLS of clients")
        provider = dict(
            option.strip().split("=", 1)
            for option in cnf.get("wsrep_provider_options", "").split(";")
            if "=" in option
        )
        if provider.get("socket.ssl") != "YES":
            problems.append(f"{server}: {source} replicates without socket.ssl=YES")
        for key, file in (("ca", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem")):
            if not in_directory(cnf.get(f"ssl_{key}"), certs, file):
                problems.append(f"{server}: ssl_{key} is not {certs}/{file}")
            if not in_directory(provider.get(f"socket.ssl_{key}"), certs, file):
                problems.append(f"{server}: socket.ssl_{key} is not {certs}/{file}")
        if cnf.get("wsrep_sst_method") != "mariabackup" or cnf.get("encrypt") not in ("3", "4"):
            problems.append(f"{server}: state transfers are not mariabackup over TLS (encrypt=3)")
        if cnf.get("ssl-mode") not in ("VERIFY_IDENTITY", "VERIFY_CA"):
            problems.append(f"{server}: state transfers do not verify the peer (ssl-mode)")

    settings = [
        ("AMQP_SSL_CA_FILE", "ca.pem"),
        ("AMQP_SSL_CERT_FILE", "cert.pem"),
        ("AMQP_SSL_KEY_FILE", "key.pem"),
        ("DB_SSL_CA_FILE", "ca.pem"),
        ("DB_SSL_CERT_FILE", "cert.pem"),
        ("DB_SSL_KEY_FILE", "key.pem"),
    ]
    for name, service in deployment.app_services().items():
        certs = identities.get(name, (None, None))[1]
        env = environment(service)
        wanted = settings + (
            [("GATEWAY_TLS_CERT_FILE", "cert.pem"), ("GATEWAY_TLS_KEY_FILE", "key.pem")]
            if name == GATEWAY
            else []
        )
        problems += [
            f"{name}: {key} is {env.get(key)!r}, not {certs}/{file}"
            for key, file in wanted
            if not in_directory(env.get(key), certs, file)
        ]
    test = (services.get(GATEWAY, {}).get("healthcheck") or {}).get("test") or []
    if not any(arg.startswith("https://") for arg in test):
        problems.append(f"{GATEWAY}: healthcheck {test} does not ask over HTTPS")
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
    check_mounted_files_exist,
    check_broker_cluster,
    check_galera_cluster,
    check_database_proxy,
    check_tls,
]
# What reads only the Dockerfile and .dockerignore: checked once.
IMAGE_CHECKS = {check_image, check_image_contents, check_build_context_is_lean}


def layout_id(layout):
    return layout.compose_file


@pytest.mark.parametrize(
    "check, layout",
    [
        pytest.param(check, layout, id=f"{check.__name__}-{layout_id(layout)}")
        for layout in LAYOUTS
        for check in CHECKS
        if layout == LAYOUTS[0] or check not in IMAGE_CHECKS
    ],
)
def test_deployment_holds(check, layout):
    assert check(Deployment.from_files(layout)) == []


def test_settings_in_progress_are_not_read_yet():
    """Once config.yml reads a setting of SETTINGS_IN_PROGRESS, it is to be
    taken off that list, so that it is checked like every other."""
    assert SETTINGS_IN_PROGRESS & set(config_variables()) == set()


def test_runtime_packages_are_found():
    """The image-contents check has something to check: the packages the
    services import, found from the code rather than listed by hand."""
    assert {"order_pipeline", "generator_service", "processor_service", "gateway"} <= set(
        needed_at_runtime()
    )


# --- each check can fail ----------------------------------------------------


def service(deployment, name):
    return deployment.compose["services"][name]


def broker(deployment):
    return service(deployment, deployment.layout.brokers[0])


def database_server(deployment):
    return service(deployment, deployment.layout.database_servers[0])


def proxy(deployment):
    return service(deployment, deployment.layout.database_address)


def replace_in_mounted_file(target_dir, old, new):
    """Point the first database server's or the proxy's mount into
    `target_dir` at a broken copy of its file."""

    def mutate(deployment):
        for each in (database_server(deployment), proxy(deployment), broker(deployment)):
            source = bind_mounts(each).get(
                next((t for t in bind_mounts(each) if t.startswith(target_dir)), None)
            )
            if source:
                text = (ROOT / source).read_text()
                assert old in text, (old, source)
                broken = ROOT / ".pytest_cache" / "broken" / source
                broken.parent.mkdir(parents=True, exist_ok=True)
                broken.write_text(text.replace(old, new))
                each["volumes"] = [
                    replace_source(mount, f"./{source}", f"./{broken.relative_to(ROOT)}")
                    for mount in each["volumes"]
                ]
                return
        raise AssertionError(f"nothing mounts a file into {target_dir}")

    return mutate


def replace_source(mount, old, new):
    """A volume mount (short or long syntax) with source `old` made `new`."""
    if isinstance(mount, dict):
        return {**mount, "source": new} if mount.get("source") == old else mount
    return mount.replace(f"{old}:", f"{new}:")


def setting(deployment, name, key, value):
    service(deployment, name)["environment"] = {
        **environment(service(deployment, name)),
        key: value,
    }


def amqp_uri(deployment, user, password, hosts=None, scheme=None, port=None):
    """An AMQP_URI as `user` with the variable `password`, on the layout's
    broker nodes, scheme and port unless others are given."""
    scheme = scheme or deployment.layout.amqp[0]
    port = port or deployment.layout.amqp[1]
    return ";".join(
        f"{scheme}://{user}:${{{password}:?x}}@{host}:{port}/"
        for host in hosts or deployment.layout.brokers
    )


def db_uri(deployment, user, password, host=None):
    """A DB_URI as `user` with the variable `password`, on the layout's
    database address unless another is given."""
    host = host or deployment.layout.database_address
    return f"mysql+pymysql://{user}:${{{password}:?x}}@{host}:3306/${{DB_NAME:-orders}}"


def admin_url(deployment, user="${RABBITMQ_ADMIN_USER:-admin}", scheme=None, port=None):
    """A RABBITMQ_ADMIN_URL for the layout's first broker."""
    scheme = scheme or deployment.layout.management[0]
    port = port or deployment.layout.management[1]
    return (
        f"{scheme}://{user}:${{RABBITMQ_ADMIN_PASSWORD:?x}}@{deployment.layout.brokers[0]}:{port}/"
    )


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
        lambda d: service(d, d.layout.migration).__setitem__("command", NAMEKO_RUN + ["gateway"]),
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
            amqp_uri(d, "order_processor", "ORDER_PROCESSOR_AMQP_PASSWORD", hosts=["localhost"]),
        ),
    ),
    "DB password not the database's": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d,
            d.layout.database_servers[0],
            "MARIADB_ROOT_PASSWORD",
            "${DB_PASSWORD_OTHER:-other}",
        ),
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
    "no broker healthcheck": (check_healthchecks, lambda d: broker(d).pop("healthcheck")),
    "database healthcheck disabled": (
        check_healthchecks,
        lambda d: database_server(d).__setitem__(
            "healthcheck", {**database_server(d)["healthcheck"], "disable": True}
        ),
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
    "a service that depends on the servers": (
        check_start_order,
        lambda d: service(d, "processor").__setitem__(
            "depends_on",
            {
                **{name: {"condition": "service_healthy"} for name in d.layout.brokers},
                d.layout.database_address: {"condition": "service_started"},
                d.layout.migration: {"condition": "service_completed_successfully"},
            },
        ),
    ),
    "a server that depends on a service": (
        check_start_order,
        lambda d: broker(d).__setitem__(
            "depends_on", {"generator": {"condition": "service_started"}}
        ),
    ),
    "provision restarts forever": (
        check_start_order,
        lambda d: service(d, d.layout.migration).__setitem__("restart", "unless-stopped"),
    ),
    "broker without hostname": (
        check_persistent_data,
        lambda d: broker(d).pop("hostname"),
    ),
    "database on an anonymous volume": (
        check_persistent_data,
        lambda d: database_server(d).__setitem__("volumes", ["/var/lib/mysql"]),
    ),
    "volume not declared": (
        check_persistent_data,
        lambda d: d.compose["volumes"].pop(named_volume(database_server(d)["volumes"][0])[0]),
    ),
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
        lambda d: d.env_example.pop("DB_NAME"),
    ),
    "undocumented default": (
        check_variables_documented,
        lambda d: setting(
            d, d.layout.brokers[0], "RABBITMQ_DEFAULT_PASS", "${RABBITMQ_ADMIN_PASSWORD:-hunter2}"
        ),
    ),
    "required variable": (
        check_variables_documented,
        lambda d: setting(d, GATEWAY, "GATEWAY_TOKEN", "${GATEWAY_TOKEN:?set a token}"),
    ),
    "literal password": (
        check_no_secrets,
        lambda d: setting(d, d.layout.brokers[0], "RABBITMQ_DEFAULT_PASS", "hunter2"),
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


def without(deployment, name, key):
    service(deployment, name)["environment"] = {
        each: value for each, value in environment(service(deployment, name)).items() if each != key
    }


# Each service as its own user, the provision step as the administrators.
BREAKAGES |= {
    "a service that does not wait": (
        check_start_order,
        lambda d: setting(d, "processor", "STARTUP_WAIT_SECONDS", "0"),
    ),
    "processor connects as the generator": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d,
            "processor",
            "AMQP_URI",
            amqp_uri(d, "order_generator", "ORDER_GENERATOR_AMQP_PASSWORD"),
        ),
    ),
    "one broker node as another user": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d,
            GATEWAY,
            "AMQP_URI",
            ";".join(
                [
                    amqp_uri(d, "order_gateway", "ORDER_GATEWAY_AMQP_PASSWORD")
                    .split(";")[0]
                    .replace("order_gateway:", "order_operator:")
                ]
                + amqp_uri(d, "order_gateway", "ORDER_GATEWAY_AMQP_PASSWORD").split(";")[1:]
            ),
        ),
    ),
    "generator's password not the one provisioned": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d, "generator", "DB_URI", db_uri(d, "order_generator", "ORDER_PROCESSOR_DB_PASSWORD")
        ),
    ),
    "gateway with a database user": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d, GATEWAY, "DB_URI", db_uri(d, "order_gateway", "ORDER_GENERATOR_DB_PASSWORD")
        ),
    ),
    "provision as another broker user": (
        check_services_reach_broker_and_database,
        lambda d: setting(d, "provision", "RABBITMQ_ADMIN_URL", admin_url(d, user="guest")),
    ),
    "provision as another database user": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d,
            "provision",
            "DB_ADMIN_URI",
            db_uri(d, "order_migrate", "ORDER_MIGRATE_DB_PASSWORD"),
        ),
    ),
}


# Breakages only a cluster can have (its compose file, deploy/ files and
# variables); those above are tried on both compose files.
CLUSTER_BREAKAGES = {
    "a broker node missing from AMQP_URI": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d,
            "processor",
            "AMQP_URI",
            amqp_uri(d, "order_processor", "ORDER_PROCESSOR_AMQP_PASSWORD", hosts=["rabbitmq-1"]),
        ),
    ),
    "services on one Galera node, not the proxy": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d,
            "processor",
            "DB_URI",
            db_uri(d, "order_processor", "ORDER_PROCESSOR_DB_PASSWORD", host="galera-1"),
        ),
    ),
    "classic queues on the cluster": (
        check_every_setting_reaches_the_services,
        lambda d: setting(d, "processor", "QUEUE_TYPE", "classic"),
    ),
    "peer discovery lists another node": (
        check_broker_cluster,
        replace_in_mounted_file("/etc/rabbitmq/conf.d/", "rabbit@rabbitmq-3", "rabbit@rabbitmq-4"),
    ),
    "no peer discovery": (
        check_broker_cluster,
        replace_in_mounted_file("/etc/rabbitmq/conf.d/", "= classic_config", "= dns"),
    ),
    "healthcheck as a user that is not created": (
        check_healthchecks,
        lambda d: without(d, "galera-1", "MARIADB_MYSQL_LOCALHOST_USER"),
    ),
    "Galera node healthy before it is synced": (
        check_galera_cluster,
        lambda d: service(d, "galera-2").__setitem__(
            "healthcheck",
            {
                **service(d, "galera-2")["healthcheck"],
                "test": ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"],
            },
        ),
    ),
    "CLI tools without the cookie": (
        check_broker_cluster,
        lambda d: without(d, "rabbitmq-2", "RABBITMQ_CTL_ERL_ARGS"),
    ),
    "two bootstrap nodes": (
        check_galera_cluster,
        lambda d: setting(d, "galera-2", "GALERA_BOOTSTRAP", "1"),
    ),
    "gcomm:// misses a node": (
        check_galera_cluster,
        replace_in_mounted_file("/etc/mysql/conf.d/", "galera-2,galera-3", "galera-2"),
    ),
    "Galera without row-based binary log": (
        check_galera_cluster,
        replace_in_mounted_file(
            "/etc/mysql/conf.d/", "binlog_format = ROW", "binlog_format = MIXED"
        ),
    ),
    "a node does not wait for the bootstrap": (
        check_galera_cluster,
        lambda d: service(d, "galera-2").pop("depends_on"),
    ),
    "a node named as another": (
        check_galera_cluster,
        lambda d: service(d, "galera-3").__setitem__(
            "command",
            [arg.replace("galera-3", "galera-2") for arg in service(d, "galera-3")["command"]],
        ),
    ),
    "state transfer without the SST user": (
        check_galera_cluster,
        lambda d: service(d, "galera-2").__setitem__(
            "command",
            [arg for arg in service(d, "galera-2")["command"] if "sst-auth" not in arg],
        ),
    ),
    "the proxy leaves out a node": (
        check_database_proxy,
        replace_in_mounted_file(
            "/usr/local/etc/haproxy/", "    server galera-3 galera-3:3306 check backup\n", ""
        ),
    ),
    "the proxy fails back to a returning node": (
        check_database_proxy,
        replace_in_mounted_file("/usr/local/etc/haproxy/", "    stick on int(1)\n", ""),
    ),
    "the proxy checks as a user nobody creates": (
        check_database_proxy,
        replace_in_mounted_file(
            "/usr/local/etc/haproxy/", b"haproxy_check".hex(), b"monitor".hex()
        ),
    ),
    "the proxy passes a node that takes a plain login": (
        check_database_proxy,
        replace_in_mounted_file(
            "/usr/local/etc/haproxy/",
            "tcp-check expect binary ff1504",
            "tcp-check expect binary 00",
        ),
    ),
    "the proxy's check wants a plain login to succeed": (
        check_database_proxy,
        replace_in_mounted_file(
            "/usr/local/etc/haproxy/",
            "    option tcp-check\n",
            "    option mysql-check user haproxy_check post-41\n",
        ),
    ),
    "a broker with a plain listener": (
        check_tls,
        replace_in_mounted_file(
            "/etc/rabbitmq/conf.d/30-tls.conf",
            "listeners.tcp = none",
            "listeners.tcp.default = 5672",
        ),
    ),
    "a broker that lets clients in without a certificate": (
        check_tls,
        replace_in_mounted_file(
            "/etc/rabbitmq/conf.d/30-tls.conf",
            "ssl_options.fail_if_no_peer_cert = true",
            "ssl_options.fail_if_no_peer_cert = false",
        ),
    ),
    "a broker on another node's key": (
        check_tls,
        replace_in_mounted_file(
            "/etc/rabbitmq/conf.d/30-tls.conf", "/etc/rabbitmq/tls/key.pem", "/tmp/key.pem"
        ),
    ),
    "nodes on plain Erlang distribution": (
        check_tls,
        lambda d: setting(
            d,
            "rabbitmq-2",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "-setcookie ${RABBITMQ_ERLANG_COOKIE:?set it}",
        ),
    ),
    "CLI tools on plain Erlang distribution": (
        check_tls,
        lambda d: setting(
            d, "rabbitmq-3", "RABBITMQ_CTL_ERL_ARGS", "-setcookie ${RABBITMQ_ERLANG_COOKIE:?set it}"
        ),
    ),
    "nodes that do not verify their peers": (
        check_tls,
        replace_in_mounted_file(
            "/etc/rabbitmq/inter_node_tls.config",
            "{fail_if_no_peer_cert, true}",
            "{fail_if_no_peer_cert, false}",
        ),
    ),
    "a broker node with another node's certificate": (
        check_tls,
        lambda d: service(d, "rabbitmq-2").__setitem__(
            "volumes",
            [
                replace_source(
                    mount, f"./{CERTIFICATES}/rabbitmq-2", f"./{CERTIFICATES}/rabbitmq-1"
                )
                for mount in service(d, "rabbitmq-2")["volumes"]
            ],
        ),
    ),
    "Galera replication in clear": (
        check_tls,
        replace_in_mounted_file("/etc/mysql/conf.d/", "socket.ssl=YES;", ""),
    ),
    "the database takes plain clients": (
        check_tls,
        replace_in_mounted_file(
            "/etc/mysql/conf.d/", "require_secure_transport = ON", "require_secure_transport = OFF"
        ),
    ),
    "state transfers in clear": (
        check_tls,
        replace_in_mounted_file("/etc/mysql/conf.d/", "encrypt = 3", "encrypt = 0"),
    ),
    "a service on another's certificate": (
        check_tls,
        lambda d: service(d, "processor").__setitem__(
            "volumes",
            [
                replace_source(
                    mount, f"./{CERTIFICATES}/order_processor", f"./{CERTIFICATES}/order_generator"
                )
                for mount in service(d, "processor")["volumes"]
            ],
        ),
    ),
    "a certificate directory compose would create empty": (
        check_tls,
        lambda d: service(d, "generator")["volumes"][0].pop("bind"),
    ),
    "a service trusting another CA file": (
        check_tls,
        lambda d: setting(d, "generator", "DB_SSL_CA_FILE", "/etc/ssl/certs/ca-certificates.crt"),
    ),
    "the gateway without HTTPS": (
        check_tls,
        lambda d: without(d, GATEWAY, "GATEWAY_TLS_CERT_FILE"),
    ),
    "the gateway's healthcheck over plain HTTP": (
        check_tls,
        lambda d: service(d, GATEWAY)["healthcheck"].__setitem__(
            "test", PROBE + ["http", "http://127.0.0.1:8000/health"]
        ),
    ),
    "plain AMQP on the cluster": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d,
            "processor",
            "AMQP_URI",
            amqp_uri(
                d, "order_processor", "ORDER_PROCESSOR_AMQP_PASSWORD", scheme="amqp", port=5672
            ),
        ),
    ),
    "the management API over plain HTTP": (
        check_services_reach_broker_and_database,
        lambda d: setting(
            d, "provision", "RABBITMQ_ADMIN_URL", admin_url(d, scheme="http", port=15672)
        ),
    ),
    "a management API that lets clients in without a certificate": (
        check_tls,
        replace_in_mounted_file(
            "/etc/rabbitmq/conf.d/40-management-tls.conf",
            "management.ssl.fail_if_no_peer_cert = true",
            "management.ssl.fail_if_no_peer_cert = false",
        ),
    ),
    "a plain management listener beside the HTTPS one": (
        check_tls,
        replace_in_mounted_file(
            "/etc/rabbitmq/conf.d/40-management-tls.conf",
            "management.ssl.port = 15671",
            "management.ssl.port = 15671\nmanagement.tcp.port = 15672",
        ),
    ),
    "a broker node without the management API over TLS": (
        check_tls,
        lambda d: service(d, "rabbitmq-3").__setitem__(
            "volumes",
            [
                mount
                for mount in service(d, "rabbitmq-3")["volumes"]
                if "management_tls.conf" not in str(mount)
            ],
        ),
    ),
    "the proxy healthy with every node down": (
        check_database_proxy,
        replace_in_mounted_file(
            "/usr/local/etc/haproxy/", "    monitor fail if { nbsrv(galera) lt 1 }\n", ""
        ),
    ),
    "the proxy's healthcheck asks another port": (
        check_database_proxy,
        lambda d: proxy(d).__setitem__(
            "healthcheck",
            {
                **proxy(d)["healthcheck"],
                "test": [arg.replace("8404", "8405") for arg in proxy(d)["healthcheck"]["test"]],
            },
        ),
    ),
    "entrypoint not executable": (
        check_mounted_files_exist,
        lambda d: service(d, "galera-1").__setitem__(
            "volumes",
            [
                replace_source(mount, "./deploy/galera/start.sh", "./deploy/galera/galera.cnf")
                for mount in service(d, "galera-1")["volumes"]
            ],
        ),
    ),
    "literal cookie": (
        check_no_secrets,
        lambda d: setting(
            d, "rabbitmq-1", "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-setcookie hunter2"
        ),
    ),
    "literal SST password": (
        check_no_secrets,
        lambda d: service(d, "galera-1")["command"].__setitem__(-1, "--wsrep-sst-auth=sst:hunter2"),
    ),
    "shipped cookie": (
        check_no_secrets,
        lambda d: d.env_example.__setitem__("RABBITMQ_ERLANG_COOKIE", "hunter2"),
    ),
    "cookie with a default": (
        check_variables_documented,
        lambda d: setting(
            d, "rabbitmq-1", "RABBITMQ_CTL_ERL_ARGS", "-setcookie ${RABBITMQ_ERLANG_COOKIE:-cookie}"
        ),
    ),
}
BREAKAGES["mounted file missing"] = (
    check_mounted_files_exist,
    lambda d: broker(d).__setitem__(
        "volumes", [*broker(d).get("volumes", []), "./deploy/missing.conf:/etc/missing.conf:ro"]
    ),
)
CASES = [
    pytest.param(breakage, layout, id=f"{layout_id(layout)}: {breakage}")
    for layout in LAYOUTS
    for breakage in BREAKAGES
    if layout == LAYOUTS[0] or BREAKAGES[breakage][0] not in IMAGE_CHECKS
] + [
    pytest.param(breakage, CLUSTER, id=f"{layout_id(CLUSTER)}: {breakage}")
    for breakage in CLUSTER_BREAKAGES
]


@pytest.mark.parametrize("breakage, layout", CASES)
def test_check_catches(breakage, layout):
    check, mutate = {**BREAKAGES, **CLUSTER_BREAKAGES}[breakage]
    deployment = copy.deepcopy(Deployment.from_files(layout))
    mutate(deployment)
    assert check(deployment) != []


def test_every_check_is_shown_to_fail():
    shown = {check for check, _ in [*BREAKAGES.values(), *CLUSTER_BREAKAGES.values()]}
    assert shown == set(CHECKS)
