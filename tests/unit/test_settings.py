"""Settings: each one read by one function, in the settings module of the
service that owns it (or order_pipeline/settings.py for the infrastructure,
or the extension it tunes), with a one-line error naming it when its value
is unusable."""

import ast
import re
from pathlib import Path

import pytest

from gateway import settings as gateway_settings
from generator_service import settings as generator_settings
from harness.processes import CONFIG, ROOT
from order_contract import MAX_QUANTITY
from order_pipeline import settings
from order_pipeline.config import load_config
from order_pipeline.errors import StartupError
from order_pipeline.extensions.batch_events import batch_settings
from order_pipeline.extensions.reliable_events import retry_settings
from processor_service import settings as processor_settings

# Where settings are read: each service's own module, the infrastructure's,
# and the extensions that the retry, batch, heartbeat and resubscribe
# settings tune.
SETTINGS_MODULES = {
    "order_pipeline/settings.py",
    "generator_service/settings.py",
    "processor_service/settings.py",
    "gateway/settings.py",
    "order_pipeline/extensions/reliable_events.py",
    "order_pipeline/extensions/batch_events.py",
    "order_pipeline/extensions/heartbeats.py",
    "order_pipeline/extensions/resubscribing_consumer.py",
}
# Readers that take the key they read as their second argument.
READERS = {"setting", "metrics_address"}

# Keys that nameko, nameko-sqlalchemy or the logging set-up read themselves.
READ_BY_THE_FRAMEWORK = {"DB_URIS", "max_workers", "SERVICE_CONTAINER_CLS", "LOGGING"}
FIRST_PARTY = [
    "order_contract",
    "order_pipeline",
    "generator_service",
    "processor_service",
    "gateway",
]


def setting_reads():
    """[(module path, key)] for every `setting(config, "KEY", ...)` call in
    the services and their plumbing."""
    reads = []
    for package in FIRST_PARTY:
        for path in Path(ROOT, package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", None) in READERS
                    and len(node.args) > 1
                    and isinstance(node.args[1], ast.Constant)
                ):
                    reads.append((path.relative_to(ROOT).as_posix(), node.args[1].value))
    return reads


def test_every_setting_is_read_once_and_in_one_module():
    reads = setting_reads()
    keys = [key for _, key in reads]
    assert {path for path, _ in reads} == SETTINGS_MODULES
    assert sorted(keys) == sorted(set(keys)), "a setting read by two functions"
    config_keys = set(load_config(CONFIG)) - READ_BY_THE_FRAMEWORK
    assert config_keys == set(keys)


def test_default_generator_settings_match_the_documented_ones(monkeypatch):
    for name in (
        "ORDER_INTERVAL_SECONDS",
        "GENERATE_ON_FIRST_START",
        "ORDER_QUANTITY_MIN",
        "ORDER_QUANTITY_MAX",
        "ORDERS_PER_TICK",
    ):
        monkeypatch.delenv(name, raising=False)
    generator = generator_settings.generator_settings(load_config(CONFIG))
    assert generator == generator_settings.GeneratorSettings(
        interval_seconds=2,
        generate_on_first_start=True,
        quantity_min=1,
        quantity_max=100,
        orders_per_tick=1,
    )


def test_settings_come_from_environment_variables(monkeypatch):
    monkeypatch.setenv("ORDER_INTERVAL_SECONDS", "0.25")
    monkeypatch.setenv("GENERATE_ON_FIRST_START", "false")
    monkeypatch.setenv("EVENT_BATCH_SIZE", "7")
    config = load_config(CONFIG)
    assert generator_settings.generator_settings(config).interval_seconds == 0.25
    assert generator_settings.generator_settings(config).generate_on_first_start is False
    assert batch_settings(config).size == 7


@pytest.mark.parametrize(
    ("reader", "overrides"),
    [
        (generator_settings.generator_settings, {"ORDER_INTERVAL_SECONDS": 0}),
        (generator_settings.generator_settings, {"ORDER_INTERVAL_SECONDS": "often"}),
        (
            generator_settings.generator_settings,
            {"ORDER_QUANTITY_MIN": 10, "ORDER_QUANTITY_MAX": 5},
        ),
        (generator_settings.generator_settings, {"ORDER_QUANTITY_MAX": MAX_QUANTITY + 1}),
        (generator_settings.generator_settings, {"GENERATE_ON_FIRST_START": "maybe"}),
        (generator_settings.generator_settings, {"ORDERS_PER_TICK": 0}),
        (generator_settings.generator_settings, {"ORDERS_PER_TICK": 1001}),
        (generator_settings.outbox_sweep_seconds, {"OUTBOX_SWEEP_SECONDS": 0}),
        (batch_settings, {"EVENT_BATCH_SIZE": 0}),
        (batch_settings, {"EVENT_BATCH_SIZE": 1001}),
        (batch_settings, {"EVENT_BATCHES_IN_FLIGHT": "two"}),
        (retry_settings, {"RETRY_FIRST_DELAY_SECONDS": 1, "RETRY_MAX_DELAY_SECONDS": 0.5}),
        (retry_settings, {"RETRY_MAX_ATTEMPTS": -1}),
        (settings.rpc_timeout_seconds, {"RPC_TIMEOUT_SECONDS": 0}),
        (gateway_settings.max_request_bytes, {"MAX_REQUEST_BYTES": -1}),
        (gateway_settings.gateway_max_workers, {"GATEWAY_MAX_WORKERS": 2}),
        (generator_settings.generator_max_workers, {"GENERATOR_MAX_WORKERS": 0}),
        (generator_settings.generator_settings, {"LOG_CREATED_ORDERS": "maybe"}),
        (processor_settings.price_settings, {"PRICE_SOURCE": "oracle"}),
        (processor_settings.price_settings, {"PRICE_SOURCE": "http", "PRICE_FEED_URL": ""}),
        (processor_settings.price_settings, {"PRICE_BASE": "lots"}),
        (settings.amqp_uri, {"AMQP_URI": ""}),
        (generator_settings.generator_metrics_address, {"GENERATOR_METRICS_ADDRESS": "somewhere"}),
        (
            processor_settings.processor_metrics_address,
            {"PROCESSOR_METRICS_ADDRESS": "127.0.0.1:99999"},
        ),
        (gateway_settings.gateway_metrics_address, {"GATEWAY_METRICS_ADDRESS": "host:port"}),
    ],
)
def test_a_bad_value_fails_at_start_naming_the_setting(reader, overrides):
    with pytest.raises(StartupError) as error:
        reader({**load_config(CONFIG), **overrides})
    message = str(error.value)
    assert any(re.search(rf"\b{name}\b", message) for name in overrides), message
    assert "\n" not in message


def test_the_metrics_addresses_are_off_unless_set(monkeypatch):
    for name in (
        "GENERATOR_METRICS_ADDRESS",
        "PROCESSOR_METRICS_ADDRESS",
        "GATEWAY_METRICS_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
    config = load_config(CONFIG)
    assert generator_settings.generator_metrics_address(config) is None
    assert processor_settings.processor_metrics_address(config) is None
    assert gateway_settings.gateway_metrics_address(config) is None
    monkeypatch.setenv("PROCESSOR_METRICS_ADDRESS", "9472")
    monkeypatch.setenv("GATEWAY_METRICS_ADDRESS", "127.0.0.1:9473")
    config = load_config(CONFIG)
    assert processor_settings.processor_metrics_address(config) == settings.MetricsAddress(
        "PROCESSOR_METRICS_ADDRESS", "", 9472
    )
    assert gateway_settings.gateway_metrics_address(config) == settings.MetricsAddress(
        "GATEWAY_METRICS_ADDRESS", "127.0.0.1", 9473
    )
    assert generator_settings.generator_metrics_address(config) is None
