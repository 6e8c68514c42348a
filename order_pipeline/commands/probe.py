"""Health probes for container healthchecks: exit status 0 when the service
answers, 1 when it does not, and one line saying which.

    python -m order_pipeline.commands.probe rpc order_generator status
    python -m order_pipeline.commands.probe http http://127.0.0.1:8000/health

`rpc` makes a real RPC call over the broker named by AMQP_URI in config.yml
(the service must consume its queue, reach its database and reply); `http`
wants a 2xx answer. Either gives up after --timeout seconds.
"""

import argparse
import logging
import sys
import urllib.error
import urllib.request
import warnings

HEALTHY, UNHEALTHY = 0, 1
DEFAULT_TIMEOUT = 5.0
# How much of an unhealthy HTTP answer's body the probe repeats.
BODY_SHOWN = 300


def probe_rpc(config: dict, service: str, method: str, timeout: float) -> tuple[bool, str]:
    """Call `service.method()` with no arguments: (answered, what happened)."""
    # Imported here, where main() has already silenced the warnings eventlet
    # gives on import; the http probe does without nameko.
    from nameko.constants import NON_PERSISTENT
    from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
    from nameko.standalone.rpc import ClusterRpcProxy

    from order_pipeline.broker import broker, describe_failure, nameko_config
    from order_pipeline.errors import StartupError
    from order_pipeline.identities import PROBE

    class ProbeRpcProxy(ClusterRpcProxy):
        # Its reply queue is `rpc.reply-probe-<uuid>`, not the shell's: a
        # service's broker user, which its container's probe uses, may
        # declare and read this one only (order_pipeline/identities.py).
        class ServiceContainer(ClusterRpcProxy.ServiceContainer):
            service_name = PROBE

    try:
        # AMQP_SSL and LOGIN_METHOD from AMQP_URI and AMQP_SSL_*.
        config = nameko_config(config)
    except StartupError as exc:
        return False, exc.message
    try:
        with ProbeRpcProxy(config, timeout=timeout) as cluster:
            proxy = cluster[service]
            # A request nobody waits for any more expires, rather than
            # waiting in a stopped service's queue (one more each probe
            # interval) to be answered when the service comes back.
            proxy.options.update(expiration=timeout, delivery_mode=NON_PERSISTENT)
            getattr(proxy, method)()
    except UnknownService:
        return False, "not running (nothing consumes its RPC queue)"
    except RpcTimeout:
        return False, f"no answer within {timeout:g} s"
    except RemoteError as exc:
        return False, f"answered with an error: {exc.exc_type}"
    except Exception as exc:  # anything else: the broker cannot be used
        return False, describe_failure(broker(config), exc)
    return True, "ok"


def probe_http(url: str, timeout: float) -> tuple[bool, str]:
    """GET `url`: (2xx answer, what happened)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return True, f"{response.status} ok"
    except urllib.error.HTTPError as exc:
        body = exc.read(BODY_SHOWN).decode("utf-8", "replace")
        return False, f"{exc.code} {body}".strip()
    except (urllib.error.URLError, OSError) as exc:
        return False, f"no answer: {getattr(exc, 'reason', exc)}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m order_pipeline.commands.probe", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the answer (default {DEFAULT_TIMEOUT:g})",
    )
    kinds = parser.add_subparsers(dest="kind", required=True)
    rpc = kinds.add_parser("rpc", help="call a nameko service's RPC method over the broker")
    rpc.add_argument("--config", default="config.yml")
    rpc.add_argument("service", help="the service's nameko name, e.g. order_generator")
    rpc.add_argument("method", help="an RPC method that takes no arguments, e.g. status")
    http = kinds.add_parser("http", help="GET a URL")
    http.add_argument("url")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A probe's output is its one line, which a healthcheck log keeps: not
    # the libraries' warnings (eventlet's and pkg_resources' deprecation on
    # import, amqp noting the broker's return of a request to a service that
    # is not running).
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.ERROR)
    if args.kind == "rpc":
        from order_pipeline.config import load_config

        target = f"{args.service}.{args.method}"
        try:
            config = load_config(args.config)
        except OSError as exc:
            print(f"{target}: cannot read {args.config}: {exc.strerror}", flush=True)
            return UNHEALTHY
        healthy, outcome = probe_rpc(config, args.service, args.method, args.timeout)
    else:
        target = args.url
        healthy, outcome = probe_http(args.url, args.timeout)
    print(f"{target}: {outcome}", flush=True)
    return HEALTHY if healthy else UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
