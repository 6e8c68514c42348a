"""The harness's ports and private servers: what the suites running side by
side (make test) rely on to start their own servers without colliding."""

import socket
import subprocess
import sys

import pytest

from harness.ports import BLOCK_SIZE, FIRST_PORT, PortBlock
from harness.private_server import PrivateServer
from harness.processes import ROOT

EPHEMERAL_FIRST = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])

HOLDER = """
import sys
from harness.ports import PortBlock
block = PortBlock(sys.argv[1])  # held, as harness.ports holds its own
print(block.port(), flush=True)
sys.stdin.read()
"""


def block_of(port):
    return (port - FIRST_PORT) // BLOCK_SIZE


def test_ports_are_distinct_and_outside_the_kernels_ephemeral_range(tmp_path):
    block = PortBlock(str(tmp_path))
    ports = [block.port() for _ in range(40)]
    assert len(set(ports)) == 40
    assert all(FIRST_PORT <= port < EPHEMERAL_FIRST for port in ports)
    assert {block_of(port) for port in ports} == {0}


def test_a_port_something_listens_on_is_skipped(tmp_path):
    block = PortBlock(str(tmp_path))
    first = block.port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", first + 1))
        listener.listen()
        assert block.port() == first + 2


def test_two_live_processes_get_disjoint_blocks_and_a_dead_ones_is_taken_again(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        held = int(holder.stdout.readline())
        assert block_of(held) == 0
        assert block_of(PortBlock(str(tmp_path)).port()) == 1
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead process's lock: its block is free again.
    assert block_of(PortBlock(str(tmp_path)).port()) == 0


class Crashing(PrivateServer):
    name = "crasher"

    def command(self):
        return ["sh", "-c", "echo 'bind: Address already in use'; exit 3"]

    def answers(self):
        return False


def test_a_server_that_dies_at_start_says_why_in_the_error(tmp_path):
    server = Crashing(str(tmp_path), "crasher.log")
    with pytest.raises(RuntimeError) as raised:
        server.start(timeout=30)
    assert "exited with 3" in str(raised.value)
    assert "bind: Address already in use" in str(raised.value)
