"""tests/compose builds images and starts containers for minutes: it runs
only through `make compose-check` (which sets COMPOSE_CHECK=1 and makes the
base image first), not in a plain `pytest`; test_cluster.py, longer still,
only through `make compose-cluster-check` (COMPOSE_CLUSTER_CHECK=1)."""

import os

import pytest


def pytest_collection_modifyitems(items):
    compose = os.environ.get("COMPOSE_CHECK") == "1"
    cluster = os.environ.get("COMPOSE_CLUSTER_CHECK") == "1"
    skip = pytest.mark.skip(reason="run by `make compose-check` (COMPOSE_CHECK=1)")
    skip_cluster = pytest.mark.skip(
        reason="run by `make compose-cluster-check` (COMPOSE_CLUSTER_CHECK=1)"
    )
    for item in items:
        if "compose" not in item.keywords:
            continue
        if item.module.__name__.endswith("test_cluster"):
            if not cluster:
                item.add_marker(skip_cluster)
        elif not compose:
            item.add_marker(skip)
