"""The gateway nameko service: HTTP in, RPC out, JSON everywhere."""

import logging

import eventlet

from gateway.auth import GatewayAccess
from gateway.console_files import console_asset, console_page
from gateway.errors import BadRequest, NotFound
from gateway.event_streams import EventStreams
from gateway.exposition import JSON, exposition_response, negotiate, read_pipeline_figures
from gateway.http import json_http, json_response
from gateway.limits import open_stream
from gateway.monitoring import read_instances
from gateway.openapi import openapi_document
from gateway.queue_figures import QueueFigures
from gateway.request_body import read_edit, read_ids, read_quantity
from gateway.settings import gateway_max_workers, gateway_metrics_address, instance_rules
from gateway.shared_reads import SharedReads
from gateway.snapshot import ConsoleSnapshot
from gateway.triage import read_audit_query, read_groups
from order_contract import (
    DEFAULT_DEAD_LETTER_LIMIT,
    GATEWAY,
    GENERATOR,
    MAX_ORDER_ID,
    MAX_ORDERS_PER_CALL,
    PROCESSOR,
    validate_quantity,
)
from order_pipeline.extensions.heartbeats import Heartbeat
from order_pipeline.extensions.rpc_proxy import RpcTimeout, ServiceUnavailable, TimeoutRpcProxy
from order_pipeline.extensions.runtime_metrics import RuntimeMetrics
from order_pipeline.extensions.service_settings import Settings
from order_pipeline.extensions.shared_batches import SharedBatches
from order_pipeline.extensions.timer import configured_timer
from order_pipeline.extensions.tracing import Tracing

log = logging.getLogger(__name__)

MAX_ID_DIGITS = len(str(MAX_ORDER_ID))
# The console's pages get one snapshot about this often.
SNAPSHOT_INTERVAL_SECONDS = 1.0


def parse_order_id(text):
    """A path segment as an order id, or BadRequest."""
    if not (text.isascii() and text.isdigit()):
        raise BadRequest("order id must be a positive integer")
    # Counting digits first keeps int() away from a path of thousands of them.
    digits = text.lstrip("0") or "0"
    order_id = int(digits) if len(digits) <= MAX_ID_DIGITS else None
    if order_id is None or not 1 <= order_id <= MAX_ORDER_ID:
        raise BadRequest(f"order id must be between 1 and {MAX_ORDER_ID}")
    return order_id


class GatewayService:
    name = GATEWAY
    # Its own worker pool (order_pipeline.extensions.containers): a request
    # holds a worker while it waits on the services.
    read_max_workers = staticmethod(gateway_max_workers)
    tracing = Tracing()

    order_generator = TimeoutRpcProxy(GENERATOR)
    order_processor = TimeoutRpcProxy(PROCESSOR)
    access = GatewayAccess()
    shared_read = SharedReads()
    # Concurrent POST /orders share one create_orders call.
    shared_create = SharedBatches(MAX_ORDERS_PER_CALL)
    event_streams = EventStreams()
    console_snapshot = ConsoleSnapshot()
    queue_figures = QueueFigures()
    runtime_metrics = RuntimeMetrics(gateway_metrics_address)
    heartbeat = Heartbeat()
    instance_rules = Settings(instance_rules)

    @json_http("POST", "/start")
    def start(self, request):
        """Turn generation on (needs the bearer token); returns the status."""
        self.access.control(request)
        return self.order_generator.start()

    @json_http("POST", "/stop")
    def stop(self, request):
        """Turn generation off (needs the bearer token); returns the status."""
        self.access.control(request)
        return self.order_generator.stop()

    @json_http("GET", "/status", costly=False)
    def status(self, request):
        self.access.read(request)
        return self.shared_read("status", self.order_generator.status)

    @json_http("GET", "/metrics", costly=False)
    def metrics(self, request):
        """{"total_orders_processed": N, "average_execution_price": "12.34"};
        the pipeline's Prometheus metrics instead for a client whose Accept
        header prefers their text format or OpenMetrics (gateway.exposition)."""
        self.access.read(request)
        media_type = negotiate(request.headers.get("Accept"))
        if media_type == JSON:
            body = self.shared_read("metrics", self.order_processor.metrics)
            return json_response(200, body, headers={"Vary": "Accept"})
        answers = self.shared_read(
            "pipeline_figures",
            lambda: read_pipeline_figures(
                self.order_generator, self.order_processor, self.queue_figures, self.instance_rules
            ),
        )
        return exposition_response(answers, media_type)

    @json_http("POST", "/orders")
    def create_order(self, request):
        """Create an order from {"quantity": n} (needs the bearer token):
        201 with the order and its Location.

        Concurrent requests share one create_orders call
        (order_pipeline.extensions.shared_batches): one transaction for all of them,
        each answered with its own order. The quantity is checked first, so
        a bad one is a 400 of its own and never fails the others' call; a
        call that fails (the generator does not answer) fails each of its
        requests as a call of its own would have.

        With an Idempotency-Key header, a repeat of a key seen within 24
        hours answers 200 with the order that key created, and creates
        nothing (one create_order_once call per keyed request)."""
        self.access.control(request)
        quantity = read_quantity(request)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            create_orders = self.order_generator.create_orders
            order, created = self.shared_create(create_orders, validate_quantity(quantity)), True
        else:
            answer = self.order_generator.create_order_once(quantity, key)
            order, created = answer["order"], answer["created"]
        return json_response(
            201 if created else 200, order, headers={"Location": f"/orders/{order['id']}"}
        )

    @json_http("GET", "/orders/<order_id>")
    def get_order(self, request, order_id):
        """The order and its processing result (null until processed)."""
        self.access.read(request)
        order_id = parse_order_id(order_id)
        # Ask both services at once: one RPC timeout at most, not two.
        processing = eventlet.spawn(self.order_processor.get_result, order_id)
        try:
            order = self.order_generator.get_order(order_id)
        except BaseException:
            processing.kill()
            raise
        if order is None:
            processing.kill()
            raise NotFound(f"order {order_id} not found")
        order["processing"] = processing.wait()
        return order

    @json_http("GET", "/health", costly=False)
    def health(self, request):
        """200 if both services answer, else 503 naming the ones that do not.

        Both are asked at once, so the answer comes within one RPC timeout.
        The questions are the reads behind /status and /metrics, shared with
        every concurrent request for them: a burst of health checks costs
        the services one round of calls.
        """
        checks = {
            GENERATOR: lambda: self.shared_read("status", self.order_generator.status),
            PROCESSOR: lambda: self.shared_read("metrics", self.order_processor.metrics),
        }
        answers = eventlet.GreenPile()
        for name, call in checks.items():
            answers.spawn(service_state, name, call)
        services = dict(zip(checks, answers))
        healthy = all(state == "ok" for state in services.values())
        return (200 if healthy else 503), {
            "status": "ok" if healthy else "degraded",
            "services": services,
        }

    @json_http("GET", "/openapi.json", costly=False)
    def openapi(self, request):
        """This API described as an OpenAPI 3.0 document."""
        return openapi_document()

    # --- service instances and timing (gateway.monitoring) ----------------------

    @json_http("GET", "/instances", costly=False)
    def instances(self, request):
        """Every instance of every service seen in the last hour, with its
        state (live, silent, stalled), and each service's count of each."""
        self.access.read(request)
        return self.shared_read(
            "instances", read_instances(self.order_processor, self.instance_rules)
        )

    @json_http("GET", "/timing", costly=False)
    def timing(self, request):
        """The OrderCreated handler's throughput, processing time, critical
        time and retries over the last 10 minutes, per service."""
        self.access.read(request)
        return self.shared_read("timing", self.order_processor.service_timing)

    # --- the console -----------------------------------------------------------

    @json_http("GET", "/", costly=False)
    def console(self, request):
        """The console: a page that shows the pipeline live."""
        return console_page()

    @json_http("GET", "/console/<asset>", costly=False)
    def console_file(self, request, asset):
        return console_asset(asset)

    @json_http("GET", "/events", costly=False)
    def events(self, request):
        """Server-sent events: a `snapshot` about every second. The stream
        is written outside this worker (see gateway.event_streams), on a
        connection counted against MAX_STREAMS, not MAX_CONNECTIONS. With
        GATEWAY_READ_TOKEN set it needs a token, as every read does: the
        console reads it with fetch(), which can send one (EventSource
        cannot)."""
        self.access.read(request)
        open_stream(request)  # 503 when MAX_STREAMS are open; freed on close
        return self.event_streams.response(request)

    @configured_timer(read_interval=lambda config: SNAPSHOT_INTERVAL_SECONDS)
    def publish_snapshot(self):
        """One read of the services for every open page, none when no page is open."""
        if self.event_streams.open_count:
            snapshot = self.console_snapshot(
                self.order_generator, self.order_processor, self.queue_figures
            )
            self.event_streams.publish("snapshot", snapshot)

    # --- dead letters ----------------------------------------------------------

    @json_http("GET", "/dead-letters")
    def dead_letters(self, request):
        """{"count": n, "dead_letters": [the first 100, oldest first]}"""
        self.access.read(request)
        return self.order_processor.dead_letter_overview(DEFAULT_DEAD_LETTER_LIMIT)

    @json_http("POST", "/dead-letters/replay")
    def replay_dead_letters(self, request):
        """Replay the dead letters named by {"ids": [...]}, all without ids
        (needs the bearer token): {"replayed": n}."""
        actor = self.access.control(request)
        ids = read_ids(request, required=False)
        return self.order_processor.replay_dead_letters(ids, actor)

    @json_http("POST", "/dead-letters/discard")
    def discard_dead_letters(self, request):
        """Discard, for good, the dead letters named by {"ids": [...]}
        (needs the bearer token): {"discarded": n}."""
        actor = self.access.control(request)
        return self.order_processor.discard_dead_letters(read_ids(request, required=True), actor)

    # --- failure triage (order_contract.triage, gateway.triage) ----------------
    # Ids and groups are 16 characters; the processor checks the rest.

    @json_http("GET", "/dead-letters/groups")
    def dead_letter_groups(self, request):
        """The parked dead letters grouped by cause, the largest first, each
        with the share of the last 10 minutes' orders it affects."""
        self.access.read(request)
        return read_groups(self.order_processor, self.order_generator)

    @json_http("POST", "/dead-letters/groups/<string(length=16):group>/replay")
    def replay_dead_letter_group(self, request, group):
        """Replay a group's dead letters (needs the bearer token):
        {"replayed": n, "left": m}."""
        actor = self.access.control(request)
        return self.order_processor.replay_dead_letter_group(group, actor)

    @json_http("POST", "/dead-letters/groups/<string(length=16):group>/discard")
    def discard_dead_letter_group(self, request, group):
        """Discard a group's dead letters for good (needs the bearer token):
        {"discarded": n, "left": m}."""
        actor = self.access.control(request)
        return self.order_processor.discard_dead_letter_group(group, actor)

    @json_http("GET", "/dead-letters/audit")
    def dead_letter_audit(self, request):
        """The audit trail, newest first, a page at a time (?before=&limit=)."""
        self.access.read(request)
        return self.order_processor.dead_letter_audit(*read_audit_query(request))

    @json_http("GET", "/dead-letters/<string(length=16):dead_letter_id>")
    def dead_letter(self, request, dead_letter_id):
        """One dead letter in full: body, trace, attempts, failure history."""
        self.access.read(request)
        letter = self.order_processor.dead_letter(dead_letter_id)
        if letter is None:
            raise NotFound(f"no dead letter {dead_letter_id}")
        return letter

    @json_http("POST", "/dead-letters/<string(length=16):dead_letter_id>/edit")
    def edit_dead_letter(self, request, dead_letter_id):
        """Send {"payload": {"order_id": n}} in place of a parked dead letter
        (needs the bearer token): {"edited", "message_id", "payload"}."""
        actor = self.access.control(request)
        payload = read_edit(request)
        return self.order_processor.edit_dead_letter(dead_letter_id, payload, actor)


def service_state(name, call):
    """What /health reports for one service: ok if `call()` answers,
    unavailable if nothing answers in time, error if it answers with one."""
    try:
        call()
        return "ok"
    except (RpcTimeout, ServiceUnavailable):
        return "unavailable"
    except Exception as exc:
        log.warning("health check of %s failed: %s: %s", name, type(exc).__name__, exc)
        return "error"
