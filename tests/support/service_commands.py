"""What a deployment's containers run and how they are probed, checked
against the code: shared by tests/unit/test_deployment.py (the compose
files) and tests/unit/test_k8s.py (the Kubernetes manifests).
"""

import inspect
import re
from urllib.parse import urlsplit

from nameko.cli.run import import_service
from nameko.exceptions import CommandError
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc

from order_pipeline.commands import probe
from tests.support.deployment import CONFIG_FILE, NAMEKO_RUN, config_variables, nameko_modules

GATEWAY = "gateway"
MIGRATE_COMMAND = ["python", "-m", "order_pipeline.commands.migrate", "--config", CONFIG_FILE]
# Creates every service's users, then migrates (compose.yaml's one-shot step).
PROVISION_COMMAND = ["python", "-m", "order_pipeline.commands.provision", "--migrate"]
PROBE = ["CMD", "python", "-m", "order_pipeline.commands.probe"]
# What a service's healthcheck may call: it runs every interval, so it must
# only read (start or stop would switch generation on or off).
READ_ONLY_RPC = {"status", "metrics"}


# Settings compose.cluster.yaml and deploy/k8s set that config.yml does not
# read yet: the TLS settings of issue 17, which the services' code is being
# given. test_settings_in_progress_are_not_read_yet fails once config.yml
# reads one, so that it is taken off this list and checked like the others.
SETTINGS_IN_PROGRESS: set[str] = set()


def known_settings():
    return set(config_variables()) | SETTINGS_IN_PROGRESS


def command_problems(where, command):
    """A command must be exec form and start only things that exist."""
    if not isinstance(command, list):
        return [f"{where}: command {command!r} is not exec form (a list)"]
    if command in (MIGRATE_COMMAND, PROVISION_COMMAND):
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


def seconds(duration):
    """A compose duration ("1m30s", "10s", "500ms") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def probe_problems(name, health, modules, listens_on):
    """A service's healthcheck runs order_pipeline.commands.probe: the gateway's GETs
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
