"""The Kubernetes manifests (deploy/k8s), checked without a cluster:
rendered by `kubectl kustomize` as `kubectl apply -k` would, validated
against the API schemas kubernetes-validate bundles, and checked against the
code and config.yml.

Each check returns the problems it finds in the rendered objects;
`test_manifests_hold` runs them on the real files, `test_check_catches` on
copies broken the way each guards against.
"""

import base64
import copy
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml
from nameko.cli.run import import_service
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from tests.support.deployment import ROOT, config_variables, makefile_services, nameko_modules
from tests.support.service_commands import (
    MIGRATE_COMMAND,
    SETTINGS_IN_PROGRESS,
    command_problems,
    probe_problems,
)

K8S = ROOT / "deploy" / "k8s"
SECRETS_FILE = "secrets.env"
# The newest Kubernetes API the installed kubernetes-validate has schemas for.
KUBERNETES_VERSION = kubernetes_validate.utils.latest_version()
# Settings that hold credentials: from the Secret, never the ConfigMap.
SECRET_SETTINGS = {"AMQP_URI", "DB_URI", "GATEWAY_TOKEN"}
# ConfigMap values that differ from config.yml's defaults, on purpose:
# quorum queues on a broker cluster, and one JSON object a log line for a
# log collector.
CHANGED_DEFAULTS = {"QUEUE_TYPE": "quorum", "LOG_FORMAT": "json"}
PROBE = ["python", "-m", "order_pipeline.commands.probe"]


def render(directory):
    """`kubectl kustomize directory` as a list of objects."""
    result = subprocess.run(
        [shutil.which("kubectl") or "kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        raise RuntimeError(result.stderr.strip())
    return [each for each in yaml.safe_load_all(result.stdout) if each]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The manifests rendered with secrets.env made from its example, as
    whoever deploys them does."""
    directory = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, directory, ignore=shutil.ignore_patterns(SECRETS_FILE))
    shutil.copy(directory / "secrets.env.example", directory / SECRETS_FILE)
    return render(directory)


def of_kind(objects, kind):
    return [each for each in objects if each["kind"] == kind]


def named(objects, kind, name):
    return next((each for each in of_kind(objects, kind) if each["metadata"]["name"] == name), {})


def pod_specs(objects):
    """{object name: pod spec} of every Deployment and Job."""
    return {
        each["metadata"]["name"]: each["spec"]["template"]["spec"]
        for each in objects
        if each["kind"] in ("Deployment", "Job")
    }


def containers(objects):
    """[(object name, container)] of every Deployment and Job."""
    return [
        (name, container)
        for name, spec in pod_specs(objects).items()
        for container in spec.get("containers", []) + spec.get("initContainers", [])
    ]


def settings_map(objects):
    maps = of_kind(objects, "ConfigMap")
    return maps[0] if len(maps) == 1 else {}


def secret(objects):
    secrets = of_kind(objects, "Secret")
    return secrets[0] if len(secrets) == 1 else {}


def env_sources(container):
    """(ConfigMap names, Secret names) a container takes all its env from."""
    sources = container.get("envFrom", [])
    return (
        [each["configMapRef"]["name"] for each in sources if "configMapRef" in each],
        [each["secretRef"]["name"] for each in sources if "secretRef" in each],
    )


# --- the checks -----------------------------------------------------------


def check_schemas(objects):
    """Every object is valid against its Kubernetes API schema (strict: no
    unknown fields, so a misspelt field is not silently dropped)."""
    problems = []
    for each in objects:
        try:
            kubernetes_validate.validate(each, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{each['kind']} {each['metadata'].get('name')}: {exc.message}")
    return problems


def check_settings(objects):
    """The ConfigMap has every setting config.yml reads, with config.yml's
    default unless CHANGED_DEFAULTS says otherwise, except the credentials,
    which are in the Secret and nowhere else; and nothing config.yml does
    not read."""
    defaults = config_variables()
    data = settings_map(objects).get("data") or {}
    secret_keys = set(secret(objects).get("data") or {})
    problems = []
    for key, default in defaults.items():
        if key in SECRET_SETTINGS:
            if key not in secret_keys or key in data:
                problems.append(f"{key} is not in the Secret alone")
        elif key not in data:
            problems.append(f"{key} is neither in the ConfigMap nor deliberately left out")
        elif data[key] != CHANGED_DEFAULTS.get(key, default):
            problems.append(f"{key} is {data[key]!r} in the ConfigMap, config.yml says {default!r}")
    known = set(defaults) | SETTINGS_IN_PROGRESS
    problems += [
        f"{key} is in the ConfigMap, but config.yml never reads it"
        for key in data
        if key not in known
    ]
    problems += [
        f"{key} is in the Secret, which holds only {sorted(SECRET_SETTINGS)}"
        for key in secret_keys - SECRET_SETTINGS
    ]
    problems += [
        f"the ConfigMap sets {key}={data.get(key)!r}, wanted {value!r}"
        for key, value in CHANGED_DEFAULTS.items()
        if data.get(key) != value
    ]
    return problems


def check_credentials_from_the_secret(objects):
    """Every container takes its settings from the ConfigMap and its
    credentials from the Secret, and sets no credential of its own."""
    config_name = settings_map(objects).get("metadata", {}).get("name")
    secret_name = secret(objects).get("metadata", {}).get("name")
    problems = []
    if secret(objects).get("type") != "Opaque":
        problems.append("no single Opaque Secret")
    for name, container in containers(objects):
        if env_sources(container) != ([config_name], [secret_name]):
            problems.append(
                f"{name}: env from {env_sources(container)}, wanted ConfigMap {config_name} and Secret {secret_name}"
            )
        problems += [
            f"{name}: sets {each['name']} itself"
            for each in container.get("env", [])
            if each["name"] in SECRET_SETTINGS or "value" in each
        ]
    return problems


def check_commands_and_image(objects):
    """Each container runs a command that exists, one service a
    Deployment, every service `make run` starts has one, and the migration
    is a Job; all from one image."""
    problems = []
    running = {}
    for name, container in containers(objects):
        problems += command_problems(name, container.get("command"))
        modules = nameko_modules(container.get("command")) or []
        if len(modules) > 1:
            problems.append(f"{name} runs {modules} in one container")
        running.update({module: name for module in modules})
    if sorted(running) != sorted(makefile_services()):
        problems.append(
            f"the Deployments run {sorted(running)}, make run {sorted(makefile_services())}"
        )
    deployments = {each["metadata"]["name"] for each in of_kind(objects, "Deployment")}
    problems += [
        f"{module} runs in {name}, not a Deployment"
        for module, name in running.items()
        if name not in deployments
    ]
    jobs = [
        name
        for name, container in containers(objects)
        if container.get("command") == MIGRATE_COMMAND and name not in deployments
    ]
    if len(jobs) != 1 or named(objects, "Job", jobs[0]).get("spec", {}).get("template", {}).get(
        "spec", {}
    ).get("restartPolicy") not in ("Never", "OnFailure"):
        problems.append(f"migrations run in Jobs {jobs}, wanted one that ends")
    images = {container.get("image") for _, container in containers(objects)}
    if len(images) != 1:
        problems.append(f"the containers run images {sorted(map(str, images))}, wanted one")
    return problems


def gateway_routes():
    """(method, path) of every HTTP route the gateway serves."""
    (cls,) = import_service("gateway")
    return {
        (entrypoint.method, entrypoint.url)
        for attribute in dir(cls)
        for entrypoint in getattr(getattr(cls, attribute), ENTRYPOINT_EXTENSIONS_ATTR, ())
        if hasattr(entrypoint, "url")
    }


def check_probes(objects):
    """The gateway is ready when GET /health answers 200, on the port it
    listens on, and alive while it serves a route of its own; the other
    services' probes run order_pipeline.commands.probe against a read-only RPC
    method of the service the container runs, within the probe's time."""
    listens_on = int(
        (settings_map(objects).get("data") or {}).get("WEB_SERVER_ADDRESS", ":0").rsplit(":", 1)[1]
    )
    problems = []
    for name, container in containers(objects):
        modules = nameko_modules(container.get("command")) or []
        if not modules:
            continue
        ports = {port.get("name"): port["containerPort"] for port in container.get("ports", [])}
        for kind in ("readinessProbe", "livenessProbe"):
            probe = container.get(kind) or {}
            if modules == ["gateway"]:
                get = probe.get("httpGet") or {}
                port = ports.get(get.get("port"), get.get("port"))
                wanted = "/health" if kind == "readinessProbe" else None
                if (
                    port != listens_on
                    or ("GET", get.get("path")) not in gateway_routes()
                    or (wanted and get.get("path") != wanted)
                ):
                    problems.append(
                        f"{name}: {kind} {get} is not a GET of {wanted or 'a gateway route'} on port {listens_on}"
                    )
                continue
            command = (probe.get("exec") or {}).get("command") or []
            health = {"test": ["CMD", *command], "timeout": f"{probe.get('timeoutSeconds', 1)}s"}
            problems += [
                f"{kind}: {problem}"
                for problem in probe_problems(name, health, modules, listens_on)
            ]
    return problems


def check_scaling(objects):
    """The processor Deployment runs several replicas, and nothing binds a
    node's port or network (which would stop a second pod on a node)."""
    problems = []
    processor = next(
        (
            each
            for each in of_kind(objects, "Deployment")
            if nameko_modules(each["spec"]["template"]["spec"]["containers"][0].get("command"))
            == ["processor_service"]
        ),
        {},
    )
    if (processor.get("spec") or {}).get("replicas", 1) < 2:
        problems.append("the processor Deployment has fewer than 2 replicas")
    for name, spec in pod_specs(objects).items():
        if spec.get("hostNetwork"):
            problems.append(f"{name} uses the node's network")
    for name, container in containers(objects):
        problems += [
            f"{name}: hostPort {port['hostPort']}"
            for port in container.get("ports", [])
            if "hostPort" in port
        ]
    return problems


def check_gateway_service(objects):
    """A Service sends traffic to the gateway's pods, on its HTTP port."""
    gateway = next(
        (
            each
            for each in of_kind(objects, "Deployment")
            if nameko_modules(each["spec"]["template"]["spec"]["containers"][0].get("command"))
            == ["gateway"]
        ),
        {},
    )
    labels = gateway.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    ports = {
        port.get("name"): port["containerPort"]
        for container in gateway.get("spec", {})
        .get("template", {})
        .get("spec", {})
        .get("containers", [])
        for port in container.get("ports", [])
    }
    for service in of_kind(objects, "Service"):
        selector = service["spec"].get("selector") or {}
        targets = [
            ports.get(port.get("targetPort"), port.get("targetPort"))
            for port in service["spec"]["ports"]
        ]
        if selector and selector.items() <= labels.items() and set(targets) & set(ports.values()):
            return []
    return ["no Service selects the gateway's pods on its port"]


CHECKS = [
    check_schemas,
    check_settings,
    check_credentials_from_the_secret,
    check_commands_and_image,
    check_probes,
    check_scaling,
    check_gateway_service,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_manifests_hold(check, rendered):
    assert check(rendered) == []


def test_the_secret_comes_from_an_uncommitted_file(tmp_path):
    """secrets.env is git-ignored and rendering stops without it, naming
    it; the example holds placeholders only."""
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(K8S / SECRETS_FILE)], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0
    directory = tmp_path / "k8s"
    shutil.copytree(K8S, directory, ignore=shutil.ignore_patterns(SECRETS_FILE))
    with pytest.raises(RuntimeError, match=SECRETS_FILE):
        render(directory)
    example = (K8S / "secrets.env.example").read_text()
    values = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert set(values) == SECRET_SETTINGS
    assert all("CHANGE-ME" in value for value in values.values())


def test_the_secret_holds_what_secrets_env_says(rendered):
    data = secret(rendered)["data"]
    assert base64.b64decode(data["GATEWAY_TOKEN"]).decode() == "CHANGE-ME"
    nodes = base64.b64decode(data["AMQP_URI"]).decode().split(";")
    assert len(nodes) == 3 and all(node.startswith("amqp://") for node in nodes)


# --- each check can fail ----------------------------------------------------


def deployment_running(objects, module):
    return next(
        each
        for each in of_kind(objects, "Deployment")
        if nameko_modules(each["spec"]["template"]["spec"]["containers"][0]["command"]) == [module]
    )


def container_running(objects, module):
    return deployment_running(objects, module)["spec"]["template"]["spec"]["containers"][0]


BREAKAGES = {
    "misspelt field": (
        check_schemas,
        lambda o: container_running(o, "gateway").__setitem__("readinesProbe", {}),
    ),
    "replicas as a string": (
        check_schemas,
        lambda o: deployment_running(o, "processor_service")["spec"].__setitem__("replicas", "3"),
    ),
    "setting missing": (
        check_settings,
        lambda o: settings_map(o)["data"].pop("RETRY_MAX_ATTEMPTS"),
    ),
    "setting with another default": (
        check_settings,
        lambda o: settings_map(o)["data"].__setitem__("RETRY_MAX_ATTEMPTS", "5"),
    ),
    "misspelt setting": (
        check_settings,
        lambda o: settings_map(o)["data"].__setitem__("RETRY_MAX_ATTEMPT", "50"),
    ),
    "token in the ConfigMap": (
        check_settings,
        lambda o: settings_map(o)["data"].__setitem__("GATEWAY_TOKEN", "hunter2"),
    ),
    "classic queues": (
        check_settings,
        lambda o: settings_map(o)["data"].__setitem__("QUEUE_TYPE", "classic"),
    ),
    "gateway without the Secret": (
        check_credentials_from_the_secret,
        lambda o: container_running(o, "gateway").__setitem__(
            "envFrom", container_running(o, "gateway")["envFrom"][:1]
        ),
    ),
    "literal token": (
        check_credentials_from_the_secret,
        lambda o: container_running(o, "gateway").__setitem__(
            "env", [{"name": "GATEWAY_TOKEN", "value": "hunter2"}]
        ),
    ),
    "misspelt service module": (
        check_commands_and_image,
        lambda o: container_running(o, "processor_service")["command"].__setitem__(
            -1, "processor_servce"
        ),
    ),
    "two services in one pod": (
        check_commands_and_image,
        lambda o: container_running(o, "processor_service")["command"].append("gateway"),
    ),
    "no migration": (
        check_commands_and_image,
        lambda o: o.remove(next(each for each in o if each["kind"] == "Job")),
    ),
    "another image": (
        check_commands_and_image,
        lambda o: container_running(o, "gateway").__setitem__("image", "order-pipeline:old"),
    ),
    "gateway ready on another path": (
        check_probes,
        lambda o: container_running(o, "gateway")["readinessProbe"]["httpGet"].__setitem__(
            "path", "/status"
        ),
    ),
    "gateway alive on a path it does not serve": (
        check_probes,
        lambda o: container_running(o, "gateway")["livenessProbe"]["httpGet"].__setitem__(
            "path", "/healthz"
        ),
    ),
    "gateway probed on another port": (
        check_probes,
        lambda o: container_running(o, "gateway")["readinessProbe"]["httpGet"].__setitem__(
            "port", 8080
        ),
    ),
    "processor probed as the generator": (
        check_probes,
        lambda o: container_running(o, "processor_service")["livenessProbe"]["exec"].__setitem__(
            "command", PROBE + ["rpc", "order_generator", "status"]
        ),
    ),
    "probe switches generation on": (
        check_probes,
        lambda o: container_running(o, "generator_service")["readinessProbe"]["exec"].__setitem__(
            "command", PROBE + ["rpc", "order_generator", "start"]
        ),
    ),
    "probe outlasts its timeout": (
        check_probes,
        lambda o: container_running(o, "generator_service")["readinessProbe"].__setitem__(
            "timeoutSeconds", 5
        ),
    ),
    "one processor": (
        check_scaling,
        lambda o: deployment_running(o, "processor_service")["spec"].__setitem__("replicas", 1),
    ),
    "processor on a host port": (
        check_scaling,
        lambda o: container_running(o, "processor_service").__setitem__(
            "ports", [{"containerPort": 9000, "hostPort": 9000}]
        ),
    ),
    "Service selects nothing": (
        check_gateway_service,
        lambda o: next(each for each in o if each["kind"] == "Service")["spec"].__setitem__(
            "selector", {"app.kubernetes.io/name": "gatway"}
        ),
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_check_catches(breakage, rendered):
    check, mutate = BREAKAGES[breakage]
    objects = copy.deepcopy(rendered)
    mutate(objects)
    assert check(objects) != []


def test_every_check_is_shown_to_fail():
    assert {check for check, _ in BREAKAGES.values()} == set(CHECKS)
