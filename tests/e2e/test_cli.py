"""The commands from the README, as a user types them."""
import os
import subprocess

import pytest

from tests.support.processes import CONFIG, NAMEKO, ROOT


def run_service(module, timeout=30, **env):
    return subprocess.run(
        [NAMEKO, "run", "--config", CONFIG, module], cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
        capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("module", ["generator_service", "processor_service", "gateway"])
def test_an_unreachable_broker_is_one_line_naming_amqp_uri(module, db_uri):
    done = run_service(module, AMQP_URI="amqp://guest:guest@127.0.0.1:1/", DB_URI=db_uri)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "AMQP_URI=amqp://guest:********@127.0.0.1:1/" in errors[0]


@pytest.mark.parametrize("db_uri_value, hint", [
    ("mysql+pymysql://root@127.0.0.1:1/orders", "set DB_URI"),
    ("mysql+pymysql://root@127.0.0.1:3306/orders_test_does_not_exist", "make migrate"),
])
def test_an_unusable_database_is_one_line_naming_db_uri(db_uri_value, hint, amqp_uri):
    done = run_service("generator_service", AMQP_URI=amqp_uri, DB_URI=db_uri_value)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "DB_URI=" + db_uri_value in errors[0] and hint in errors[0]


def test_nameko_shell_reaches_the_services(pipeline, amqp_uri, db_uri):
    pipeline(GENERATE_ON_FIRST_START="false").start()
    script = ("print('created', n.rpc.order_generator.create_order(3)['quantity'])\n"
              "print('missing', n.rpc.order_generator.get_order(999))\n")
    done = subprocess.run(
        [NAMEKO, "shell", "--config", CONFIG, "--interface", "plain"], cwd=ROOT,
        input=script, capture_output=True, text=True, timeout=60,
        env={**os.environ, "AMQP_URI": amqp_uri, "PYTHONWARNINGS": "ignore"})
    assert "created 3" in done.stdout, done.stdout + done.stderr
    assert "missing None" in done.stdout
