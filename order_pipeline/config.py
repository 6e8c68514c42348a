"""Reading config.yml, and one setting of it.

config.yml's values are `${VAR:default}`: the environment variable VAR, or
the default when it is unset, read as YAML (so `${X:2}` is the number 2).
`nameko run` expands them with its own loader; everything else (the
commands, the tests, the benchmark) loads the file with `load_config`, which
gives the same values (tests/unit/test_config.py compares the two).

A setting can also come from a file, for secrets mounted by Docker or
Kubernetes: with `VAR_FILE` set (and VAR unset), VAR's value is the file's
content, without its trailing newline. `apply_setting_files` does it, for
`load_config` and for the service container (order_pipeline.extensions.containers),
so it holds under `nameko run` too.
"""

import os
import re
from collections.abc import Mapping
from decimal import Decimal

import yaml

from order_pipeline.errors import StartupError

# `${VAR}` or `${VAR:default}`, as nameko's CLI reads them.
ENV_VAR = re.compile(r"\$\{([^}:\s]+):?([^}]+)?\}")
HAS_ENV_VAR = re.compile(r".*\$\{.*\}.*")
FILE_SUFFIX = "_FILE"


class ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader, with `${VAR:default}` expanded in any scalar."""


def _expand(loader, node):
    raw = loader.construct_scalar(node)
    value = ENV_VAR.sub(lambda match: os.environ.get(match[1], match[2] or ""), raw)
    if value == raw:
        return value
    return yaml.safe_load(value)


ConfigLoader.add_constructor("!env_var", _expand)
ConfigLoader.add_implicit_resolver("!env_var", HAS_ENV_VAR, None)


def load_config(path="config.yml") -> dict:
    with open(path) as config_file:
        config = yaml.load(config_file, Loader=ConfigLoader)  # noqa: S506 (a SafeLoader)
    return apply_setting_files(config)


def apply_setting_files(config: dict, environ: Mapping[str, str] = os.environ) -> dict:
    """A copy of `config` in which each top-level setting KEY whose
    `KEY_FILE` variable is set takes that file's content. An alias of the
    setting elsewhere in the file (DB_URIS repeats DB_URI) takes it too."""
    config = dict(config)
    for key, value in list(config.items()):
        path = environ.get(key + FILE_SUFFIX)
        if not path:
            continue
        if environ.get(key):
            raise StartupError(f"set {key} or {key}{FILE_SUFFIX}, not both")
        try:
            with open(path) as secret:
                content = secret.read().rstrip("\r\n")
        except OSError as exc:
            raise StartupError(
                f"cannot read {key}{FILE_SUFFIX}={path}: {exc.strerror or exc}"
            ) from None
        config[key] = content
        for other, nested in config.items():
            if isinstance(nested, dict):
                config[other] = {
                    name: content if item == value else item for name, item in nested.items()
                }
    return config


_REQUIRED = object()


def setting(config, key, kind, minimum=None, default=_REQUIRED):
    """Read `config[key]` as `kind` (int, float, Decimal, bool or str).

    YAML types values itself (`100.00` arrives as a float, a numeric token as
    an int), so each reader states the type it needs; a bad value is a
    StartupError that names the setting. A setting with a `default` may be
    missing from a config made by hand (config.yml has every setting).
    """
    if key not in config:
        if default is not _REQUIRED:
            return default
        raise StartupError(f"missing setting {key}")
    raw = config[key]
    try:
        if kind is bool:
            value = _as_bool(raw)
        elif kind is Decimal:
            value = Decimal(str(raw))
        elif kind is str:
            value = "" if raw is None else str(raw)
        else:
            value = kind(raw)
    except (TypeError, ValueError, ArithmeticError):
        raise StartupError(f"setting {key} must be {kind.__name__}, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise StartupError(f"setting {key} must be at least {minimum}, got {raw!r}")
    return value


def _as_bool(raw):
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)
