"""Reading config.yml outside `nameko run` (scripts, tests, the benchmark).

nameko's CLI expands `${VAR:default}` while it loads YAML; plain
`yaml.safe_load` does not, so everything that is not started by the CLI loads
the file through `load_config` to see the same values the services see.
"""

from decimal import Decimal

import yaml
from nameko.cli.main import setup_yaml_parser

from order_pipeline.errors import StartupError

_parser_ready = False


def load_config(path="config.yml"):
    global _parser_ready
    if not _parser_ready:
        setup_yaml_parser()
        _parser_ready = True
    with open(path) as config_file:
        return yaml.safe_load(config_file)


def setting(config, key, kind, minimum=None):
    """Read `config[key]` as `kind` (int, float, Decimal, bool or str).

    YAML types values itself (`100.00` arrives as a float, a numeric token as
    an int), so each reader states the type it needs; a bad value is a
    StartupError that names the setting.
    """
    if key not in config:
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
        raise StartupError(f"setting {key} must be {kind.__name__}, got {raw!r}")
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
