"""config.yml: one file, every value overridable by an environment variable."""

import os
import re

import yaml

from harness.processes import CONFIG, ROOT
from order_pipeline.config import load_config

ENV_VALUE = re.compile(r"^\$\{([A-Z_]+):(.*)\}$")
# Keys whose value is structure (a mapping or list) rather than a setting.
STRUCTURE = {"DB_URIS", "LOGGING"}


def raw_settings():
    with open(CONFIG) as config_file:
        # BaseLoader: every value as its raw text. (nameko's loader set-up adds
        # the ${VAR:default} expansion to yaml.SafeLoader for the whole process.)
        return yaml.load(config_file, Loader=yaml.BaseLoader)


def test_every_setting_is_an_environment_variable_with_a_default():
    raw = raw_settings()
    for key, value in raw.items():
        if key in STRUCTURE:
            continue
        assert isinstance(value, str) and ENV_VALUE.match(value), (
            f"{key} is not ${{VAR:default}}: {value!r}"
        )


def test_the_local_defaults_match_the_documented_servers(monkeypatch):
    for name in ("AMQP_URI", "DB_URI", "ORDER_INTERVAL_SECONDS", "WEB_SERVER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(CONFIG)
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost:5672/"
    assert config["DB_URI"] == "mysql+pymysql://root@127.0.0.1:3306/orders"
    assert config["ORDER_INTERVAL_SECONDS"] == 2
    assert config["WEB_SERVER_ADDRESS"] == "0.0.0.0:8000"
    assert config["LOGGING"]["handlers"]["console"]["stream"] == "ext://sys.stdout"


def test_environment_overrides_reach_every_service(monkeypatch):
    monkeypatch.setenv("DB_URI", "mysql+pymysql://u:p@db:3306/other")
    monkeypatch.setenv("MAX_WORKERS", "4")
    config = load_config(CONFIG)
    assert config["DB_URI"] == "mysql+pymysql://u:p@db:3306/other"
    # Both services' database entries follow DB_URI.
    assert set(config["DB_URIS"].values()) == {"mysql+pymysql://u:p@db:3306/other"}
    assert config["max_workers"] == 4


def test_each_environment_variable_is_used_once():
    names = [
        ENV_VALUE.match(value).group(1)
        for key, value in raw_settings().items()
        if key not in STRUCTURE
    ]
    assert len(names) == len(set(names))


def test_the_readme_documents_every_environment_variable():
    with open(os.path.join(ROOT, "README.md")) as readme:
        documented = readme.read()
    with open(CONFIG) as config_file:
        settings = "".join(line for line in config_file if not line.lstrip().startswith("#"))
    names = set(re.findall(r"\$\{([A-Z_]+):", settings))
    assert len(names) > 20
    missing = sorted(name for name in names if f"`{name}`" not in documented)
    assert missing == []
