"""The commands from the README, as a user types them."""

import os
import signal
import socket
import subprocess
import sys

import pytest
import requests

from harness.processes import CONFIG, NAMEKO, ROOT, free_port, wait_until
from harness.sandbox import wait_for_rpc

# The environment of a user's shell: no PYTHONPATH, no warning filters.
# Services that cannot start say so at once rather than wait for a broker or
# database to come up (STARTUP_WAIT_SECONDS).
USER_ENV = {
    **{
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONWARNINGS")
    },
    "STARTUP_WAIT_SECONDS": "0",
}


def run_service(module, timeout=30, **env):
    return subprocess.run(
        [NAMEKO, "run", "--config", CONFIG, module],
        cwd=ROOT,
        env={**USER_ENV, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("module", ["generator_service", "processor_service", "gateway"])
def test_an_unreachable_broker_is_one_line_naming_amqp_uri(module, db_uri):
    done = run_service(module, AMQP_URI="amqp://guest:guest@127.0.0.1:1/", DB_URI=db_uri)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "AMQP_URI=amqp://guest:********@127.0.0.1:1/" in errors[0]


@pytest.mark.parametrize(
    "db_uri_value, hint",
    [
        ("mysql+pymysql://root@127.0.0.1:1/orders", "set DB_URI"),
        ("mysql+pymysql://root@127.0.0.1:3306/orders_test_does_not_exist", "make migrate"),
    ],
)
def test_an_unusable_database_is_one_line_naming_db_uri(db_uri_value, hint, amqp_uri):
    done = run_service("generator_service", AMQP_URI=amqp_uri, DB_URI=db_uri_value)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "DB_URI=" + db_uri_value in errors[0] and hint in errors[0]


@pytest.mark.parametrize("module", ["generator_service", "processor_service"])
@pytest.mark.parametrize(
    "db_uri_value, said",
    [
        ("postgresql://root:s3cret@127.0.0.1/orders", "the scheme postgresql://"),
        ("root:s3cret@127.0.0.1/orders", "is not a database URL"),
    ],
)
def test_a_db_uri_that_is_no_mariadb_url_is_one_line_without_its_password(
    module, db_uri_value, said, amqp_uri
):
    done = run_service(module, AMQP_URI=amqp_uri, DB_URI=db_uri_value)
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert "Traceback" not in output and "s3cret" not in output
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and said in errors[0] and "mysql+pymysql://" in errors[0]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("GATEWAY_TOKEN", "CHANGE-ME"),
        ("GATEWAY_TOKEN", "hunter2"),
        ("GATEWAY_READ_TOKEN", "read-only"),
    ],
)
def test_a_placeholder_or_weak_token_stops_the_gateway_in_one_line_naming_it(
    setting, value, amqp_uri
):
    done = run_service("gateway", AMQP_URI=amqp_uri, **{setting: value})
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and value not in output, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"{setting} is refused" in errors[0], output


def one_error_line_naming_web_server_address(done):
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "WEB_SERVER_ADDRESS" in errors[0], output
    return errors[0]


@pytest.mark.parametrize(
    "address",
    [
        "localhost",
        "host:notaport",
        "",
        ":8000",
        "127.0.0.1:",
        "127.0.0.1:65536",
    ],
)
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
    done = run_service(
        "gateway", timeout=60, **system.env(GATEWAY_TOKEN="Mv8-AnOther_Gw9pLq2xZr7Kt4Hs6Yd1Nb")
    )
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
    script = (
        "print('created', n.rpc.order_generator.create_order(3)['quantity'])\n"
        "print('missing', n.rpc.order_generator.get_order(999))\n"
    )
    done = subprocess.run(
        [NAMEKO, "shell", "--config", CONFIG, "--interface", "plain"],
        cwd=ROOT,
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AMQP_URI": amqp_uri, "PYTHONWARNINGS": "ignore"},
    )
    assert "created 3" in done.stdout, done.stdout + done.stderr
    assert "missing None" in done.stdout


def test_nameko_run_starts_without_deprecation_noise(amqp_uri):
    """The pkg_resources and eventlet deprecation warnings are silenced by
    name; the first line a user reads is the service's own."""
    done = run_service(
        "generator_service", AMQP_URI=amqp_uri, DB_URI="mysql+pymysql://root@127.0.0.1:1/orders"
    )
    output = done.stdout + done.stderr
    assert "deprecated" not in output.lower(), output
    assert done.stderr.startswith("Error: cannot use the database"), output


def test_other_warnings_stay_visible():
    done = subprocess.run(
        [sys.executable, "-c", "import warnings; warnings.warn('keep me')"],
        env=USER_ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "UserWarning: keep me" in done.stderr


def test_rpc_errors_arrive_typed_in_nameko_shell_started_anywhere(pipeline, amqp_uri, tmp_path):
    """The project is installed in the venv: `from order_contract import
    InvalidQuantity` works in nameko shell outside the project folder."""
    pipeline(GENERATE_ON_FIRST_START="false").start()
    script = (
        "from order_contract import InvalidQuantity\n"
        "try:\n"
        "    n.rpc.order_generator.create_order(0)\n"
        "except InvalidQuantity as error:\n"
        "    print('caught', type(error).__name__, error)\n\n"
    )
    done = subprocess.run(
        [NAMEKO, "shell", "--config", CONFIG, "--interface", "plain"],
        cwd=tmp_path,
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        env={**USER_ENV, "AMQP_URI": amqp_uri},
    )
    assert "caught InvalidQuantity quantity must be between 1 and 1000000, got 0" in done.stdout, (
        done.stdout + done.stderr
    )


def test_the_generator_says_at_start_whether_generation_is_on(pipeline, amqp_uri):
    system = pipeline(GENERATE_ON_FIRST_START="false")
    generator = system.start_service("generator_service")
    generator.wait_for_output("order generation is off")
    assert "POST /start" in generator.output()
    wait_for_rpc(amqp_uri, "order_generator", "status", [generator])
    generator.stop()
    restarted = system.start_service("generator_service", GENERATE_ON_FIRST_START="true")
    # The stored state wins over the first-start default.
    restarted.wait_for_output("order generation is off")


def test_a_sigterm_while_a_service_starts_stops_it(pipeline, amqp_uri):
    """Ctrl-C right after `make run` prints its first lines: the stop waits
    for the start under way, then ends the process (it used to hang)."""
    system = pipeline(GENERATE_ON_FIRST_START="false")
    first = system.start_service("generator_service")
    wait_for_rpc(amqp_uri, "order_generator", "status", [first])
    first.stop()
    for _ in range(3):
        generator = system.start_service("generator_service")
        # Logged while the container is still starting its extensions.
        generator.wait_for_output("order generation is off")
        assert generator.stop(timeout=30) == 0


def start_make_run(db_uri, amqp_uri, log_path, **env):
    """`make run` as a user starts it, in its own process group."""
    port = free_port()
    log = open(log_path, "wb")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={
            **USER_ENV,
            "DB_URI": db_uri,
            "AMQP_URI": amqp_uri,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            **env,
        },
    )
    log.close()
    return process, port


def stop_process_group(process):
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.mark.parametrize("user_token", [None, "Uq5_ChOsen-ByThe8User3kWz7Rp2Lt9Xc"])
def test_make_run_prints_the_token_only_when_it_made_it(db_uri, amqp_uri, tmp_path, user_token):
    env = {"GATEWAY_TOKEN": user_token} if user_token else {}
    log_path = tmp_path / "make-run.log"
    process, port = start_make_run(db_uri, amqp_uri, log_path, **env)
    try:
        wait_until(
            lambda: "starting services" in log_path.read_text(),
            60,
            message="make run started the services",
        )
        output = log_path.read_text()
        # make run's own first line is the console's address (after what
        # the migration says it did).
        run_lines = output.split("processor_service: ", 1)[1].splitlines()[1:]
        assert run_lines[0].startswith(f"Console: http://localhost:{port}/ "), output
        assert f"Gateway API on http://localhost:{port}" in output
        if user_token:
            assert user_token not in output
            token = user_token
        else:
            (line,) = [line for line in output.splitlines() if line.startswith("Control token")]
            token = line.rsplit(" ", 1)[1]
        answer = wait_until(lambda: _post_stop(port, token), 30, message="POST /stop answers")
        assert answer.status_code == 200, answer.text
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.headers["Content-Type"].startswith("text/html"), page.headers
    finally:
        stop_process_group(process)


def _post_stop(port, token):
    try:
        return requests.post(
            f"http://127.0.0.1:{port}/stop", timeout=5, headers={"Authorization": f"Bearer {token}"}
        )
    except requests.ConnectionError:
        return None


def test_make_shell_shows_the_broker_without_any_password(amqp_uri):
    """`make shell` runs nameko's shell through order_pipeline.commands.shell, whose
    banner masks every node of AMQP_URI (nameko's prints them as they are)."""
    vhost = amqp_uri.rsplit("/", 1)[1]
    nodes = f"amqp://guest:first-node-secret@127.0.0.1:{free_port()}/{vhost};{amqp_uri}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "order_pipeline.commands.shell",
            "--config",
            CONFIG,
            "--interface",
            "plain",
        ],
        cwd=ROOT,
        input="print('answer', 6 * 7)\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AMQP_URI": nodes, "PYTHONWARNINGS": "ignore"},
    )
    output = done.stdout + done.stderr
    assert "answer 42" in done.stdout, output
    assert "Broker: amqp://guest:********@127.0.0.1" in output
    assert "first-node-secret" not in output and "guest:guest@" not in output


def test_a_broker_still_away_after_the_start_up_wait_is_one_line_naming_it(db_uri):
    # Unbuffered, so that the log line said while waiting is not lost at exit.
    done = run_service(
        "gateway",
        AMQP_URI="amqp://guest:guest@127.0.0.1:1/",
        STARTUP_WAIT_SECONDS="6",
        PYTHONUNBUFFERED="1",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert "waiting for the broker" in output
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert "AMQP_URI=amqp://guest:********@127.0.0.1:1/" in errors[0]
    assert "STARTUP_WAIT_SECONDS" in errors[0]
