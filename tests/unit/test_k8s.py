"""The Kubernetes manifests (deploy/k8s), checked without a cluster:
rendered by `kubectl kustomize` as `kubectl apply -k` would (with the
example secrets and new certificates, by deploy/k8s/render-example.sh),
validated against the API schemas kubernetes-validate bundles, and checked
against the code, config.yml and the hardening every workload must have.

Each check returns the problems it finds in the rendered objects;
`test_manifests_hold` runs them on the real files, `test_check_catches` on
copies broken the way each guards against. `make checkov` scans the same
rendering with checkov's own Kubernetes checks.
"""

import base64
import copy
import json
import shutil
import subprocess
from urllib.parse import urlsplit

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
RENDER_EXAMPLE = K8S / "render-example.sh"
# The newest Kubernetes API the installed kubernetes-validate has schemas for.
KUBERNETES_VERSION = kubernetes_validate.utils.latest_version()
# Settings that hold credentials: from a workload's own Secret, never the
# ConfigMap.
# Secrets a workload may leave out (the Secret key is optional).
OPTIONAL_SECRETS = {"GATEWAY_NEXT_TOKEN", "GATEWAY_READ_TOKEN"}
SECRET_SETTINGS = {
    "AMQP_URI",
    "DB_URI",
    "GATEWAY_TOKEN",
    "GATEWAY_NEXT_TOKEN",
    "GATEWAY_READ_TOKEN",
}
# What each workload (by what it runs) may hold, and the broker and
# database user it connects as: its own, with only what its role needs. The
# gateway never touches the database; the migration never the broker.
MIGRATE = "migrate"
ROLES = {
    "generator_service": ({"AMQP_URI", "DB_URI"}, "order_generator"),
    "processor_service": ({"AMQP_URI", "DB_URI"}, "order_processor"),
    "gateway": (
        {"AMQP_URI", "GATEWAY_TOKEN", "GATEWAY_NEXT_TOKEN", "GATEWAY_READ_TOKEN"},
        "order_gateway",
    ),
    MIGRATE: ({"DB_URI"}, "order_migrate"),
}
# The files of a workload's certificate in its Secret, mounted in its pod;
# the ConfigMap's TLS settings name them.
TLS_FILES = {"ca.pem", "cert.pem", "key.pem"}
TLS_SETTINGS = {
    "AMQP_SSL_CA_FILE": "ca.pem",
    "AMQP_SSL_CERT_FILE": "cert.pem",
    "AMQP_SSL_KEY_FILE": "key.pem",
    "DB_SSL_CA_FILE": "ca.pem",
    "DB_SSL_CERT_FILE": "cert.pem",
    "DB_SSL_KEY_FILE": "key.pem",
    "GATEWAY_TLS_CERT_FILE": "cert.pem",
    "GATEWAY_TLS_KEY_FILE": "key.pem",
}
# ConfigMap values that differ from config.yml's defaults, on purpose:
# quorum queues on a broker cluster, one JSON object a log line for a log
# collector, and the TLS files.
CHANGED_DEFAULTS = {
    "QUEUE_TYPE": "quorum",
    "LOG_FORMAT": "json",
    **{key: f"/etc/order-pipeline/tls/{file}" for key, file in TLS_SETTINGS.items()},
}
PROBE = ["python", "-m", "order_pipeline.commands.probe"]
# The broker's TLS port (amqps) and the database's port.
AMQPS_PORT, DATABASE_PORT = 5671, 3306
# Objects that live in no namespace.
CLUSTER_SCOPED = {"Namespace"}


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
def rendered():
    """The manifests rendered with each secrets/*.env made from its example
    and new certificates, as whoever deploys them does (and as `make
    checkov` scans them)."""
    output = subprocess.run(
        [str(RENDER_EXAMPLE)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [each for each in yaml.safe_load_all(output) if each]


def of_kind(objects, kind):
    return [each for each in objects if each["kind"] == kind]


def named(objects, kind, name):
    return next((each for each in of_kind(objects, kind) if each["metadata"]["name"] == name), {})


def workloads(objects):
    return [each for each in objects if each["kind"] in ("Deployment", "Job")]


def pod_specs(objects):
    """{object name: pod spec} of every Deployment and Job."""
    return {
        each["metadata"]["name"]: each["spec"]["template"]["spec"] for each in workloads(objects)
    }


def containers(objects):
    """[(object name, container)] of every Deployment and Job."""
    return [
        (name, container)
        for name, spec in pod_specs(objects).items()
        for container in spec.get("containers", []) + spec.get("initContainers", [])
    ]


def role(container):
    """What a container runs: its service module, or MIGRATE."""
    if container.get("command") == MIGRATE_COMMAND:
        return MIGRATE
    modules = nameko_modules(container.get("command")) or []
    return modules[0] if len(modules) == 1 else None


def settings_map(objects):
    maps = of_kind(objects, "ConfigMap")
    return maps[0] if len(maps) == 1 else {}


def secret_data(objects, name):
    """{key: decoded value} of the Secret `name`."""
    return {
        key: base64.b64decode(value).decode()
        for key, value in (named(objects, "Secret", name).get("data") or {}).items()
    }


def secret_env(container):
    """{setting: (Secret name, key)} a container takes from Secrets."""
    return {
        each["name"]: (
            each["valueFrom"]["secretKeyRef"]["name"],
            each["valueFrom"]["secretKeyRef"]["key"],
        )
        for each in container.get("env", [])
        if "secretKeyRef" in (each.get("valueFrom") or {})
    }


def container_secrets(objects):
    """{object name: the Secrets its container takes settings from}."""
    return {name: {ref for ref, _ in secret_env(c).values()} for name, c in containers(objects)}


def env_sources(container):
    """(ConfigMap names, Secret names) a container takes all its env from."""
    sources = container.get("envFrom", [])
    return (
        [each["configMapRef"]["name"] for each in sources if "configMapRef" in each],
        [each["secretRef"]["name"] for each in sources if "secretRef" in each],
    )


def mounted_volumes(spec, container):
    """{mount path: the pod's volume} of a container's mounts."""
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    return {
        mount["mountPath"]: volumes.get(mount["name"], {})
        for mount in container.get("volumeMounts", [])
    }


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
    which are in Secrets and nowhere else; and nothing config.yml does not
    read."""
    defaults = config_variables()
    data = settings_map(objects).get("data") or {}
    problems = []
    for key, default in defaults.items():
        if key in SECRET_SETTINGS:
            if key in data:
                problems.append(f"{key} is in the ConfigMap, not only in Secrets")
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
        f"the ConfigMap sets {key}={data.get(key)!r}, wanted {value!r}"
        for key, value in CHANGED_DEFAULTS.items()
        if data.get(key) != value
    ]
    for each in of_kind(objects, "Secret"):
        extra = set(each.get("data") or {}) - SECRET_SETTINGS - TLS_FILES
        if extra or each.get("type") != "Opaque":
            problems.append(
                f"Secret {each['metadata']['name']} ({each.get('type')}) holds {sorted(extra)}, "
                f"beyond {sorted(SECRET_SETTINGS)} and {sorted(TLS_FILES)}"
            )
    return problems


def check_each_workload_its_own_secret(objects):
    """Every container takes its settings from the ConfigMap, and from
    exactly one Secret, used by no other workload, exactly the credentials
    its role needs (by secretKeyRef: never the whole Secret, which also
    holds its certificate's files); it sets nothing literal."""
    config_name = settings_map(objects).get("metadata", {}).get("name")
    used_by = {}
    for name, refs in container_secrets(objects).items():
        for ref in refs:
            used_by.setdefault(ref, set()).add(name)
    problems = [
        f"Secret {ref} is used by {sorted(names)}: each workload needs its own"
        for ref, names in used_by.items()
        if len(names) > 1
    ]
    for name, container in containers(objects):
        needs = ROLES.get(role(container), (set(), None))[0]
        if env_sources(container) != ([config_name], []):
            problems.append(
                f"{name}: env from {env_sources(container)}, wanted ConfigMap {config_name} only"
            )
        refs = secret_env(container)
        if set(refs) != needs:
            problems.append(
                f"{name}: takes {sorted(refs)} from Secrets, its role needs {sorted(needs)}"
            )
        problems += [
            f"{name}: {setting} comes from the Secret's {key}"
            for setting, (_, key) in refs.items()
            if key != setting
        ]
        if len({ref for ref, _ in refs.values()}) > 1:
            problems.append(f"{name}: takes settings from several Secrets")
        for ref, key in refs.values():
            if key not in secret_data(objects, ref) and key not in OPTIONAL_SECRETS:
                problems.append(f"{name}: Secret {ref} has no {key}")
        problems += [
            f"{name}: sets {each['name']} itself"
            for each in container.get("env", [])
            if "value" in each or "valueFrom" not in each
        ]
    return problems


def check_own_users_over_tls(objects):
    """Each workload's Secret (rendered from the examples) names its own
    broker and database user, every broker node over amqps, the database
    over mysql+pymysql: nobody shares a user or reaches a plain port."""
    problems = []
    for name, container in containers(objects):
        user = ROLES.get(role(container), (set(), None))[1]
        refs = secret_env(container)
        for setting in ("AMQP_URI", "DB_URI"):
            if setting not in refs:
                continue
            value = secret_data(objects, refs[setting][0]).get(refs[setting][1], "")
            for uri in map(urlsplit, value.split(";")):
                wanted = (
                    ("amqps", AMQPS_PORT)
                    if setting == "AMQP_URI"
                    else ("mysql+pymysql", DATABASE_PORT)
                )
                if (uri.scheme, uri.port) != wanted or uri.username != user:
                    problems.append(
                        f"{name}: {setting} {uri.scheme}://{uri.username}@{uri.hostname}:{uri.port}, "
                        f"wanted {wanted[0]} on {wanted[1]} as {user}"
                    )
    return problems


def check_tls_files(objects):
    """Each container mounts its own Secret's certificate, key and CA (only
    those keys, readable by its group only) where the ConfigMap's TLS
    settings look for them."""
    data = settings_map(objects).get("data") or {}
    directories = {data.get(key, "").rsplit("/", 1)[0] for key in TLS_SETTINGS}
    if len(directories) != 1:
        return [f"the TLS settings name files in {sorted(directories)}, not one directory"]
    (directory,) = directories
    problems = [
        f"{key} is {data.get(key)!r}, not {directory}/{file}"
        for key, file in TLS_SETTINGS.items()
        if data.get(key) != f"{directory}/{file}"
    ]
    specs = pod_specs(objects)
    for name, container in containers(objects):
        refs = {ref for ref, _ in secret_env(container).values()}
        volume = mounted_volumes(specs[name], container).get(directory, {})
        source = volume.get("secret") or {}
        items = {item["key"]: item["path"] for item in source.get("items", [])}
        if source.get("secretName") not in refs or items != {file: file for file in TLS_FILES}:
            problems.append(
                f"{name}: mounts {source.get('secretName')} items {items} at {directory}, "
                f"wanted {sorted(TLS_FILES)} of its own Secret {sorted(refs)}"
            )
        elif source.get("defaultMode", 0o644) & 0o007:
            problems.append(f"{name}: its certificate files are readable by others")
        elif not TLS_FILES <= set(secret_data(objects, source["secretName"])):
            problems.append(f"{name}: Secret {source['secretName']} lacks {sorted(TLS_FILES)}")
    return problems


def quantity(value):
    """A CPU or memory quantity as a number (cores or bytes)."""
    value = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for unit in sorted(units, key=len, reverse=True):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * units[unit]
    return float(value)


def check_hardening(objects):
    """Every pod: no service account token, non-root, the runtime's seccomp
    profile, no host namespaces or paths; every container: no privilege
    escalation, a read-only root filesystem (with an emptyDir at /tmp, where
    Python writes temporary files), every capability dropped, CPU and memory
    requested and limited (requests within limits)."""
    problems = []
    specs = pod_specs(objects)
    for name, spec in specs.items():
        pod = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts the service account token")
        if pod.get("runAsNonRoot") is not True or pod.get("runAsUser", 0) == 0:
            problems.append(f"{name}: may run as root")
        if (pod.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                problems.append(f"{name}: {key}")
        problems += [
            f"{name}: mounts the node's {volume['hostPath'].get('path')}"
            for volume in spec.get("volumes", [])
            if "hostPath" in volume
        ]
    for name, container in containers(objects):
        context = container.get("securityContext") or {}
        capabilities = context.get("capabilities") or {}
        if context.get("allowPrivilegeEscalation") is not False or context.get("privileged"):
            problems.append(f"{name}: may escalate privileges")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: its root filesystem is writable")
        if capabilities.get("drop") != ["ALL"] or capabilities.get("add"):
            problems.append(f"{name}: capabilities {capabilities}, wanted drop: [ALL]")
        if "emptyDir" not in mounted_volumes(specs[name], container).get("/tmp", {}):
            problems.append(f"{name}: no emptyDir at /tmp under a read-only root")
        resources = container.get("resources") or {}
        for resource in ("cpu", "memory"):
            request = (resources.get("requests") or {}).get(resource)
            limit = (resources.get("limits") or {}).get(resource)
            if request is None or limit is None:
                problems.append(f"{name}: {resource} request {request}, limit {limit}")
            elif quantity(request) > quantity(limit):
                problems.append(f"{name}: {resource} request {request} above its limit {limit}")
    return problems


def check_namespace(objects):
    """Everything is in one namespace of its own, which enforces Pod
    Security's restricted profile."""
    namespaces = {
        each["metadata"].get("namespace") for each in objects if each["kind"] not in CLUSTER_SCOPED
    }
    if len(namespaces) != 1 or None in namespaces or "default" in namespaces:
        return [
            f"the objects are in namespaces {sorted(map(str, namespaces))}, wanted one of their own"
        ]
    (namespace,) = namespaces
    labels = named(objects, "Namespace", namespace).get("metadata", {}).get("labels") or {}
    if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
        return [f"namespace {namespace} is not created enforcing the restricted profile"]
    return []


def selects(selector, labels):
    """Whether a label selector ({} selects all) selects these labels."""
    if not all(
        labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items()
    ):
        return False
    for expression in selector.get("matchExpressions") or []:
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if (
            (operator == "In" and value not in expression["values"])
            or (operator == "NotIn" and value in expression["values"])
            or (operator == "Exists" and value is None)
            or (operator == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def peers(rule, side):
    """How a rule's peers read: 'any', or each selector as text."""
    if not rule.get(side):
        return "any"
    return ";".join(json.dumps(peer, sort_keys=True, separators=(",", ":")) for peer in rule[side])


def allowed(objects, labels):
    """What the NetworkPolicies allow pods with these labels: ({(protocol,
    port) in}, {(protocol, port, peers) out}); a policy type no policy
    selecting them has is allowed whole ("all")."""
    allow = {"Ingress": set(), "Egress": set()}
    isolated = set()
    for policy in of_kind(objects, "NetworkPolicy"):
        spec = policy["spec"]
        if not selects(spec.get("podSelector") or {}, labels):
            continue
        isolated |= set(spec.get("policyTypes") or ["Ingress"])
        for kind, key, side in (("Ingress", "ingress", "from"), ("Egress", "egress", "to")):
            for rule in spec.get(key) or []:
                for port in rule.get("ports") or [{"port": "all"}]:
                    allow[kind].add((port.get("protocol", "TCP"), port["port"], peers(rule, side)))
    return {
        kind: (rules if kind in isolated else {("all", "all", "any")})
        for kind, rules in allow.items()
    }


def check_network_policies(objects):
    """A default-deny policy, and allows that let each workload reach
    exactly what it needs: the gateway takes connections on its port; the
    services reach the broker on amqps, the generator, processor and
    migration the database; every pod the cluster's DNS, and only it."""
    problems = []
    deny_all = [
        each
        for each in of_kind(objects, "NetworkPolicy")
        if each["spec"].get("podSelector") in ({}, None)
        and set(each["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not each["spec"].get("ingress")
        and not each["spec"].get("egress")
    ]
    if not deny_all:
        problems.append("no default-deny NetworkPolicy (every pod, both directions)")
    web_port = int(
        (settings_map(objects).get("data") or {}).get("WEB_SERVER_ADDRESS", ":0").rsplit(":", 1)[1]
    )
    dns_peer = json.dumps(
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    dns = {("UDP", 53, dns_peer), ("TCP", 53, dns_peer)}
    for workload in workloads(objects):
        name = workload["metadata"]["name"]
        labels = workload["spec"]["template"]["metadata"].get("labels") or {}
        what = role(workload["spec"]["template"]["spec"]["containers"][0])
        needs = ROLES.get(what, (set(), None))[0]
        wanted_in = {("TCP", web_port, "any")} if what == "gateway" else set()
        wanted_out = set(dns)
        if "AMQP_URI" in needs:
            wanted_out.add(("TCP", AMQPS_PORT, "any"))
        if "DB_URI" in needs:
            wanted_out.add(("TCP", DATABASE_PORT, "any"))
        got = allowed(objects, labels)
        if got["Ingress"] != wanted_in:
            problems.append(
                f"{name}: ingress allowed {sorted(map(str, got['Ingress']))}, wanted {sorted(map(str, wanted_in))}"
            )
        if got["Egress"] != wanted_out:
            problems.append(
                f"{name}: egress allowed {sorted(map(str, got['Egress']))}, wanted {sorted(map(str, wanted_out))}"
            )
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
    listens on, over HTTPS (it serves nothing else), and alive while it
    serves a route of its own; the other
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
                    or get.get("scheme") != "HTTPS"
                    or ("GET", get.get("path")) not in gateway_routes()
                    or (wanted and get.get("path") != wanted)
                ):
                    problems.append(
                        f"{name}: {kind} {get} is not an HTTPS GET of "
                        f"{wanted or 'a gateway route'} on port {listens_on}"
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
    check_each_workload_its_own_secret,
    check_own_users_over_tls,
    check_tls_files,
    check_hardening,
    check_namespace,
    check_network_policies,
    check_commands_and_image,
    check_probes,
    check_scaling,
    check_gateway_service,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_manifests_hold(check, rendered):
    assert check(rendered) == []


SECRET_FILES = {
    "generator": "order_generator",
    "processor": "order_processor",
    "gateway": "order_gateway",
    "migrate": "order_migrate",
}


def test_secrets_come_from_uncommitted_files(tmp_path):
    """Each workload's secrets/<name>.env and tls/<its user>/ are
    git-ignored, and rendering stops without them, naming the missing
    file; each example holds placeholders only, for that workload's role."""
    for name, user in SECRET_FILES.items():
        for path in (f"secrets/{name}.env", f"tls/{user}/key.pem"):
            ignored = subprocess.run(["git", "check-ignore", "-q", str(K8S / path)], cwd=ROOT)
            assert ignored.returncode == 0, path
    directory = tmp_path / "k8s"
    shutil.copytree(K8S, directory, ignore=shutil.ignore_patterns("*.env", "tls"))
    with pytest.raises(RuntimeError, match="generator.env"):
        render(directory)
    roles = {"generator": "generator_service", "processor": "processor_service"}
    for name, user in SECRET_FILES.items():
        example = (K8S / "secrets" / f"{name}.env.example").read_text()
        values = dict(
            line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
        )
        assert set(values) == ROLES[roles.get(name, name)][0] - OPTIONAL_SECRETS, name
        assert all("CHANGE-ME" in value for value in values.values()), name
        assert all(
            urlsplit(uri).username == user
            for key in ("AMQP_URI", "DB_URI")
            for uri in values.get(key, "").split(";")
            if uri
        ), name


def test_the_secrets_hold_what_the_files_say(rendered):
    gateway = next(c for _, c in containers(rendered) if role(c) == "gateway")
    (secret_name,) = {ref for ref, _ in secret_env(gateway).values()}
    data = secret_data(rendered, secret_name)
    assert data["GATEWAY_TOKEN"] == "CHANGE-ME"
    assert "DB_URI" not in data
    nodes = data["AMQP_URI"].split(";")
    assert len(nodes) == 3 and all(node.startswith("amqps://order_gateway:") for node in nodes)
    assert data["cert.pem"].startswith("-----BEGIN CERTIFICATE-----")


# --- each check can fail ----------------------------------------------------


def deployment_running(objects, module):
    return next(
        each
        for each in of_kind(objects, "Deployment")
        if nameko_modules(each["spec"]["template"]["spec"]["containers"][0]["command"]) == [module]
    )


def container_running(objects, module):
    return deployment_running(objects, module)["spec"]["template"]["spec"]["containers"][0]


def pod_spec(objects, module):
    return deployment_running(objects, module)["spec"]["template"]["spec"]


def job_container(objects):
    return of_kind(objects, "Job")[0]["spec"]["template"]["spec"]["containers"][0]


def secret_of(objects, what):
    """The Secret a workload (a service module, or MIGRATE) takes its
    settings from."""
    container = job_container(objects) if what == MIGRATE else container_running(objects, what)
    (name,) = {ref for ref, _ in secret_env(container).values()}
    return name


def set_secret(objects, name, key, value):
    named(objects, "Secret", name)["data"][key] = base64.b64encode(value.encode()).decode()


def env_from(secret, key):
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def volume(objects, module, name):
    return next(each for each in pod_spec(objects, module)["volumes"] if each["name"] == name)


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
    "gateway takes its whole Secret as env": (
        check_each_workload_its_own_secret,
        lambda o: container_running(o, "gateway")["envFrom"].append(
            {"secretRef": {"name": secret_of(o, "gateway")}}
        ),
    ),
    "literal token": (
        check_each_workload_its_own_secret,
        lambda o: container_running(o, "gateway")["env"].append(
            {"name": "GATEWAY_TOKEN", "value": "hunter2"}
        ),
    ),
    "gateway with database credentials": (
        check_each_workload_its_own_secret,
        lambda o: container_running(o, "gateway")["env"].append(
            env_from(secret_of(o, "gateway"), "DB_URI")
        ),
    ),
    "migration with broker credentials": (
        check_each_workload_its_own_secret,
        lambda o: job_container(o)["env"].append(env_from(secret_of(o, MIGRATE), "AMQP_URI")),
    ),
    "processor on the generator's Secret": (
        check_each_workload_its_own_secret,
        lambda o: container_running(o, "processor_service").__setitem__(
            "env",
            [env_from(secret_of(o, "generator_service"), key) for key in ("AMQP_URI", "DB_URI")],
        ),
    ),
    "a setting from another key": (
        check_each_workload_its_own_secret,
        lambda o: container_running(o, "generator_service")["env"][0]["valueFrom"][
            "secretKeyRef"
        ].__setitem__("key", "DB_URI"),
    ),
    "a shared broker user": (
        check_own_users_over_tls,
        lambda o: set_secret(
            o,
            secret_of(o, "processor_service"),
            "AMQP_URI",
            "amqps://order_generator:x@rabbitmq-0.rabbitmq:5671/",
        ),
    ),
    "plain AMQP": (
        check_own_users_over_tls,
        lambda o: set_secret(
            o,
            secret_of(o, "generator_service"),
            "AMQP_URI",
            "amqp://order_generator:x@rabbitmq-0.rabbitmq:5672/",
        ),
    ),
    "the migration as a service's user": (
        check_own_users_over_tls,
        lambda o: set_secret(
            o, secret_of(o, MIGRATE), "DB_URI", "mysql+pymysql://order_processor:x@db:3306/orders"
        ),
    ),
    "a Secret holding more": (
        check_settings,
        lambda o: set_secret(o, secret_of(o, "gateway"), "DB_ROOT_PASSWORD", "x"),
    ),
    "no certificate mounted": (
        check_tls_files,
        lambda o: container_running(o, "processor_service").__setitem__(
            "volumeMounts",
            [
                mount
                for mount in container_running(o, "processor_service")["volumeMounts"]
                if mount["name"] != "tls"
            ],
        ),
    ),
    "the whole Secret mounted": (
        check_tls_files,
        lambda o: volume(o, "gateway", "tls")["secret"].pop("items"),
    ),
    "key readable by others": (
        check_tls_files,
        lambda o: volume(o, "generator_service", "tls")["secret"].__setitem__("defaultMode", 0o444),
    ),
    "certificates of another workload": (
        check_tls_files,
        lambda o: volume(o, "processor_service", "tls")["secret"].__setitem__(
            "secretName", secret_of(o, "generator_service")
        ),
    ),
    "TLS settings naming another directory": (
        check_tls_files,
        lambda o: settings_map(o)["data"].__setitem__("DB_SSL_CA_FILE", "/etc/ssl/ca.pem"),
    ),
    "service account token mounted": (
        check_hardening,
        lambda o: pod_spec(o, "gateway").pop("automountServiceAccountToken"),
    ),
    "pod may run as root": (
        check_hardening,
        lambda o: pod_spec(o, "processor_service")["securityContext"].pop("runAsNonRoot"),
    ),
    "no seccomp profile": (
        check_hardening,
        lambda o: pod_spec(o, "generator_service")["securityContext"].pop("seccompProfile"),
    ),
    "privilege escalation": (
        check_hardening,
        lambda o: job_container(o)["securityContext"].__setitem__("allowPrivilegeEscalation", True),
    ),
    "writable root filesystem": (
        check_hardening,
        lambda o: container_running(o, "gateway")["securityContext"].pop("readOnlyRootFilesystem"),
    ),
    "a capability kept": (
        check_hardening,
        lambda o: container_running(o, "gateway")["securityContext"]["capabilities"].__setitem__(
            "add", ["NET_BIND_SERVICE"]
        ),
    ),
    "no /tmp under a read-only root": (
        check_hardening,
        lambda o: container_running(o, "processor_service").__setitem__(
            "volumeMounts",
            [
                mount
                for mount in container_running(o, "processor_service")["volumeMounts"]
                if mount["mountPath"] != "/tmp"
            ],
        ),
    ),
    "no memory limit": (
        check_hardening,
        lambda o: container_running(o, "processor_service")["resources"]["limits"].pop("memory"),
    ),
    "request above its limit": (
        check_hardening,
        lambda o: container_running(o, "generator_service")["resources"]["requests"].__setitem__(
            "cpu", "2"
        ),
    ),
    "host path": (
        check_hardening,
        lambda o: pod_spec(o, "gateway")["volumes"].append(
            {"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}
        ),
    ),
    "in the default namespace": (
        check_namespace,
        lambda o: deployment_running(o, "gateway")["metadata"].__setitem__("namespace", "default"),
    ),
    "namespace without the restricted profile": (
        check_namespace,
        lambda o: of_kind(o, "Namespace")[0]["metadata"]["labels"].pop(
            "pod-security.kubernetes.io/enforce"
        ),
    ),
    "no default deny": (
        check_network_policies,
        lambda o: o.remove(named(o, "NetworkPolicy", "default-deny")),
    ),
    "egress anywhere": (
        check_network_policies,
        lambda o: named(o, "NetworkPolicy", "allow-broker")["spec"]["egress"][0].pop("ports"),
    ),
    "gateway reaching the database": (
        check_network_policies,
        lambda o: named(o, "NetworkPolicy", "allow-database")["spec"]["podSelector"][
            "matchExpressions"
        ][0]["values"].append("gateway"),
    ),
    "the processor taking connections": (
        check_network_policies,
        lambda o: named(o, "NetworkPolicy", "allow-gateway")["spec"].__setitem__("podSelector", {}),
    ),
    "DNS anywhere": (
        check_network_policies,
        lambda o: named(o, "NetworkPolicy", "allow-dns")["spec"]["egress"][0].pop("to"),
    ),
    "the migration cut off from the database": (
        check_network_policies,
        lambda o: named(o, "NetworkPolicy", "allow-database")["spec"]["podSelector"][
            "matchExpressions"
        ][0].__setitem__("values", ["generator", "processor"]),
    ),
    "gateway probed over plain HTTP": (
        check_probes,
        lambda o: container_running(o, "gateway")["readinessProbe"]["httpGet"].pop("scheme"),
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
