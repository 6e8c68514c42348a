"""config.yml: one file, every value overridable by an environment variable."""

import os
import re

import pytest
import yaml

from harness.processes import CONFIG, ROOT
from order_pipeline.config import load_config
from order_pipeline.errors import StartupError

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


def test_a_setting_can_come_from_a_file_and_its_aliases_follow(monkeypatch, tmp_path):
    """DB_URI_FILE: the value is the file's, without the trailing newline;
    DB_URIS (YAML aliases of DB_URI) follows it."""
    secret = tmp_path / "db_uri"
    secret.write_text("mysql+pymysql://orders:s3cret@db:3306/orders\n")
    monkeypatch.delenv("DB_URI", raising=False)
    monkeypatch.setenv("DB_URI_FILE", str(secret))
    config = load_config(CONFIG)
    assert config["DB_URI"] == "mysql+pymysql://orders:s3cret@db:3306/orders"
    assert set(config["DB_URIS"].values()) == {config["DB_URI"]}


def test_a_setting_given_both_ways_or_a_missing_file_stops_start_up(monkeypatch, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("from-the-file")
    monkeypatch.setenv("GATEWAY_TOKEN", "from-the-environment")
    monkeypatch.setenv("GATEWAY_TOKEN_FILE", str(secret))
    with pytest.raises(StartupError, match="GATEWAY_TOKEN or GATEWAY_TOKEN_FILE"):
        load_config(CONFIG)
    monkeypatch.delenv("GATEWAY_TOKEN")
    monkeypatch.setenv("GATEWAY_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(StartupError, match="cannot read GATEWAY_TOKEN_FILE="):
        load_config(CONFIG)


def test_the_service_container_applies_setting_files_under_nameko_run(monkeypatch, tmp_path):
    """`nameko run` loads config.yml with nameko's own loader, which knows
    nothing of VAR_FILE: the container applies it."""
    from nameko.containers import ServiceContainer

    from order_pipeline.extensions.containers import StopOnceServiceContainer

    class Service:
        name = "service_for_config"

    secret = tmp_path / "amqp_uri"
    secret.write_text("amqp://u:p@broker:5672/v")
    monkeypatch.delenv("AMQP_URI", raising=False)
    monkeypatch.setenv("AMQP_URI_FILE", str(secret))
    container = StopOnceServiceContainer(Service, {"AMQP_URI": "amqp://guest:guest@localhost/"})
    assert isinstance(container, ServiceContainer)
    assert container.config["AMQP_URI"] == "amqp://u:p@broker:5672/v"
