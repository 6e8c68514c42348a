"""The harness's network (harness/netns.py): a cut drops packets both ways
between two namespaces while a third still reaches both, a heal restores
them, and removing the network leaves no namespace, bridge or directory."""

import os
import subprocess
import sys

import pytest

from harness.netns import PREFIX, Network, ip
from harness.processes import wait_until

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="network namespaces and nftables need root (CI runs as root)"
)


PORT = 8000
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], {port}), 2).close()"


def answers(network, name, address):
    """Does a TCP connection from namespace `name` to `address` open
    within 2 s?"""
    command = [sys.executable, "-c", CONNECT.format(port=PORT), address]
    run = subprocess.run([*network.exec_prefix(name), *command], capture_output=True, check=False)
    return run.returncode == 0


def listen(network, name, address):
    """An HTTP server on `address` in namespace `name`, up when returned."""
    server = subprocess.Popen(
        [
            *network.exec_prefix(name),
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            address,
            str(PORT),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: answers(network, name, address), 30, message=f"a listener on {address}")
    return server


def test_a_cut_drops_both_ways_a_heal_restores_and_nothing_is_left():
    network = Network()
    try:
        a, b, c = (network.add(name) for name in ("a", "b", "c"))
        for name, address in (("a", a), ("b", b)):
            listen(network, name, address)
        assert answers(network, "a", b) and answers(network, "c", a)
        network.cut_between(["a"], ["b"])
        assert not answers(network, "a", b)
        assert not answers(network, "b", a)
        assert answers(network, "c", a) and answers(network, "c", b)
        network.heal()
        assert answers(network, "a", b) and answers(network, "b", a)
    finally:
        network.remove()  # and the listeners in it
    assert f"{PREFIX}{network.suffix}" not in ip("netns", "list") + ip("link", "show")
    assert not os.path.exists(network.state_dir)
