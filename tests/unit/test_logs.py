"""LOG_FORMAT: the console formatter config.yml builds, text or JSON."""

import io
import json
import logging
import re

import pytest

from harness.processes import CONFIG
from order_pipeline.config import load_config
from order_pipeline.errors import StartupError
from order_pipeline.logs import ORDER_LOGGER, console_formatter, log_order
from tests.faults.ledger import EXECUTION_LINE


@pytest.fixture
def logged(monkeypatch):
    """Lines written through config.yml's console formatter for a LOG_FORMAT."""

    def log(log_format, emit):
        monkeypatch.setenv("LOG_FORMAT", log_format)
        formatter_config = load_config(CONFIG)["LOGGING"]["formatters"]["console"]
        assert formatter_config["()"] == "order_pipeline.logs.console_formatter"
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(console_formatter(formatter_config["log_format_name"]))
        logger = logging.getLogger(ORDER_LOGGER)
        logger.addHandler(handler)
        # setLevel, not a plain attribute: it also clears the logger's cache
        # of enabled levels, which an earlier test may have filled.
        level = logger.level
        logger.setLevel(logging.INFO)
        try:
            emit()
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        return stream.getvalue().splitlines()

    return log


def test_json_lines_are_objects_with_the_documented_fields(logged):
    (line,) = logged("json", lambda: log_order("Order 7 OrderExecutionPrice 12.30", 7))
    record = json.loads(line)
    assert record["message"] == "Order 7 OrderExecutionPrice 12.30"
    assert record["order_id"] == 7
    assert record["level"] == "INFO"
    assert record["logger"] == ORDER_LOGGER
    assert record["service"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])


def test_json_lines_keep_an_exception(logged):
    def fail():
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger(ORDER_LOGGER).exception("it broke")

    (line,) = logged("JSON", fail)
    record = json.loads(line)
    assert record["message"] == "it broke"
    assert "ValueError: bad" in record["exc_info"]
    assert "order_id" not in record


def test_text_lines_have_a_time_and_the_contract_text_the_ledger_counts(logged):
    lines = logged("text", lambda: log_order("Order 7 OrderExecutionPrice 12.30", 7))
    assert len(lines) == 1
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO orders: Order 7 ", lines[0])
    assert EXECUTION_LINE.findall("\n".join(lines * 2)) == ["7", "7"]


def test_an_unknown_log_format_fails_at_start_naming_the_setting():
    with pytest.raises(StartupError, match=r"\bLOG_FORMAT\b"):
        console_formatter("yaml")
