"""The gateway's OpenAPI document (`gateway/openapi.yaml`), read once."""

import functools
import os

import yaml

SPEC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.yaml")


@functools.lru_cache(maxsize=1)
def openapi_document():
    with open(SPEC_PATH, encoding="utf-8") as spec:
        return yaml.safe_load(spec)
