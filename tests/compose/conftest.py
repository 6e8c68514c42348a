"""tests/compose builds images and starts containers for minutes: it runs
only through `make compose-check` (which sets COMPOSE_CHECK=1 and makes the
base image first), not in a plain `pytest`."""

import os

import pytest


def pytest_collection_modifyitems(items):
    if os.environ.get("COMPOSE_CHECK") == "1":
        return
    skip = pytest.mark.skip(reason="run by `make compose-check` (COMPOSE_CHECK=1)")
    for item in items:
        if "compose" in item.keywords:
            item.add_marker(skip)
