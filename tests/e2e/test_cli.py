"""The commands from the README, as a user types them."""
import os
import socket
import subprocess

import pytest
import requests

from tests.support.processes import CONFIG, NAMEKO, ROOT, wait_until


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


def one_error_line_naming_web_server_address(done):
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "WEB_SERVER_ADDRESS" in errors[0], output
    return errors[0]


@pytest.mark.parametrize("address", [
    "localhost", "host:notaport", "", ":8000", "127.0.0.1:", "127.0.0.1:65536",
])
def test_a_malformed_web_server_address_is_one_line_naming_it(address, amqp_uri):
    done = run_service("gateway", AMQP_URI=amqp_uri, WEB_SERVER_ADDRESS=address)
    one_error_line_naming_web_server_address(done)


def test_a_port_held_by_another_program_is_one_line_naming_web_server_address(amqp_uri):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        done = run_service("gateway", AMQP_URI=amqp_uri, WEB_SERVER_ADDRESS=address)
    error = one_error_line_naming_web_server_address(done)
    assert address in error and "in use" in error


def test_a_second_gateway_on_a_busy_port_stops_at_start_up(pipeline):
    system = pipeline()
    first = system.start_service("gateway")
    wait_until(lambda: answers(system.url("/openapi.json")), 30, message="first gateway")
    # Were the port shared, this gateway would run (the call times out) and
    # the kernel would hand it part of the first one's requests.
    done = run_service("gateway", timeout=60, **system.env(GATEWAY_TOKEN="another-token"))
    error = one_error_line_naming_web_server_address(done)
    assert f"127.0.0.1:{system.port}" in error
    assert first.running and answers(system.url("/openapi.json"))


def answers(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


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
