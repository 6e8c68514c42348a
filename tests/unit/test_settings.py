"""Settings: each one read by one function in order_pipeline/settings.py,
with a one-line error naming it when its value is unusable."""

import ast
import re
from pathlib import Path

import pytest

from harness.processes import CONFIG, ROOT
from order_contract import MAX_QUANTITY
from order_pipeline import settings
from order_pipeline.config import load_config
from order_pipeline.errors import StartupError

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
                    and getattr(node.func, "id", None) == "setting"
                    and len(node.args) > 1
                    and isinstance(node.args[1], ast.Constant)
                ):
                    reads.append((path.relative_to(ROOT).as_posix(), node.args[1].value))
    return reads


def test_every_setting_is_read_once_and_in_one_module():
    reads = setting_reads()
    keys = [key for _, key in reads]
    assert {path for path, _ in reads} == {"order_pipeline/settings.py"}
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
    generator = settings.generator_settings(load_config(CONFIG))
    assert generator == settings.GeneratorSettings(
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
    assert settings.generator_settings(config).interval_seconds == 0.25
    assert settings.generator_settings(config).generate_on_first_start is False
    assert settings.batch_settings(config).size == 7


@pytest.mark.parametrize(
    ("reader", "overrides"),
    [
        (settings.generator_settings, {"ORDER_INTERVAL_SECONDS": 0}),
        (settings.generator_settings, {"ORDER_INTERVAL_SECONDS": "often"}),
        (settings.generator_settings, {"ORDER_QUANTITY_MIN": 10, "ORDER_QUANTITY_MAX": 5}),
        (settings.generator_settings, {"ORDER_QUANTITY_MAX": MAX_QUANTITY + 1}),
        (settings.generator_settings, {"GENERATE_ON_FIRST_START": "maybe"}),
        (settings.generator_settings, {"ORDERS_PER_TICK": 0}),
        (settings.generator_settings, {"ORDERS_PER_TICK": 1001}),
        (settings.outbox_sweep_seconds, {"OUTBOX_SWEEP_SECONDS": 0}),
        (settings.batch_settings, {"EVENT_BATCH_SIZE": 0}),
        (settings.batch_settings, {"EVENT_BATCHES_IN_FLIGHT": "two"}),
        (settings.retry_settings, {"RETRY_FIRST_DELAY_SECONDS": 1, "RETRY_MAX_DELAY_SECONDS": 0.5}),
        (settings.retry_settings, {"RETRY_MAX_ATTEMPTS": -1}),
        (settings.rpc_timeout_seconds, {"RPC_TIMEOUT_SECONDS": 0}),
        (settings.max_request_bytes, {"MAX_REQUEST_BYTES": -1}),
        (settings.gateway_max_workers, {"GATEWAY_MAX_WORKERS": 2}),
        (settings.price_settings, {"PRICE_SOURCE": "oracle"}),
        (settings.price_settings, {"PRICE_SOURCE": "http", "PRICE_FEED_URL": ""}),
        (settings.price_settings, {"PRICE_BASE": "lots"}),
        (settings.amqp_uri, {"AMQP_URI": ""}),
        (settings.generator_metrics_address, {"GENERATOR_METRICS_ADDRESS": "somewhere"}),
        (settings.processor_metrics_address, {"PROCESSOR_METRICS_ADDRESS": "127.0.0.1:99999"}),
        (settings.gateway_metrics_address, {"GATEWAY_METRICS_ADDRESS": "host:port"}),
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
    assert settings.generator_metrics_address(config) is None
    assert settings.processor_metrics_address(config) is None
    assert settings.gateway_metrics_address(config) is None
    monkeypatch.setenv("PROCESSOR_METRICS_ADDRESS", "9472")
    monkeypatch.setenv("GATEWAY_METRICS_ADDRESS", "127.0.0.1:9473")
    config = load_config(CONFIG)
    assert settings.processor_metrics_address(config) == settings.MetricsAddress(
        "PROCESSOR_METRICS_ADDRESS", "", 9472
    )
    assert settings.gateway_metrics_address(config) == settings.MetricsAddress(
        "GATEWAY_METRICS_ADDRESS", "127.0.0.1", 9473
    )
    assert settings.generator_metrics_address(config) is None
