"""A private network for the partition suite: one bridge, and one network
namespace per broker node, database node and service, each with an address
on the bridge (after /work/shared/recipes/rabbitmq-netns-3-nodes.sh). The
root namespace has the bridge's last address, so the tests (and HAProxy,
which runs there) reach every namespace.

Links are cut with nftables drop rules inside the namespaces (a table of
our own in each), and healed by deleting that table: every process keeps
running and sees its packets vanish, as on a broken link. `tc netem` is not
in this kernel, so there are no slow links here.

Every name starts with PREFIX and a random suffix unique to the run, and
the run's state directory (tempdir/PREFIX<suffix>) holds the owner's pid:
`remove_leftovers()` deletes the namespaces and bridges of runs whose owner
is dead (killing what still runs in them). Only addresses inside this
bridge's subnet are used.
"""

import ipaddress
import os
import random
import secrets
import subprocess
import tempfile

from harness import leftovers

# Interface names are at most 15 characters: PREFIX + 6 hex + 3.
PREFIX = "opn"
TABLE = "orders_partition"


def ip(*args, check=True):
    return subprocess.run(
        ["ip", *args], check=check, capture_output=True, text=True, timeout=30
    ).stdout


def _free_subnet():
    """A /24 in 10.200.0.0/13 that no interface of the machine uses."""
    used = ip("-4", "-o", "addr", "show")
    while True:
        prefix = f"10.{random.randint(200, 207)}.{random.randint(0, 255)}."
        if f" {prefix}" not in used:
            return ipaddress.ip_network(f"{prefix}0/24")


class Network:
    """`add(name)` makes a namespace on the bridge and returns its address;
    `cut(name, addresses)` drops its traffic to and from those addresses;
    `heal()` removes every cut."""

    def __init__(self):
        self.suffix = secrets.token_hex(3)
        self.state_dir = os.path.join(tempfile.gettempdir(), f"{PREFIX}{self.suffix}")
        os.makedirs(self.state_dir)
        leftovers.claim(self.state_dir)
        self.bridge = f"{PREFIX}{self.suffix}br"
        self.subnet = _free_subnet()
        hosts = list(self.subnet.hosts())
        self._addresses = iter(hosts[:200])
        self.root_address = str(hosts[-1])
        self.namespaces = {}  # name -> (namespace, address)
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.root_address}/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
        except BaseException:
            self.remove()
            raise

    def namespace(self, name):
        return self.namespaces[name][0]

    def address(self, name):
        return self.namespaces[name][1]

    def add(self, name):
        index = len(self.namespaces)
        namespace = f"{PREFIX}{self.suffix}-{name}"
        veth = f"{PREFIX}{self.suffix}v{index}"
        address = str(next(self._addresses))
        ip("netns", "add", namespace)
        self.namespaces[name] = (namespace, address)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        ip("link", "set", veth, "master", self.bridge)
        ip("link", "set", veth, "up")
        self.run(name, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        self.run(name, "ip", "link", "set", "eth0", "up")
        self.run(name, "ip", "link", "set", "lo", "up")
        return address

    def exec_prefix(self, name):
        """The command prefix that runs a program inside `name`'s namespace
        (`ip netns exec` execs it: the pid stays the program's)."""
        return ["ip", "netns", "exec", self.namespace(name)]

    def run(self, name, *command):
        return subprocess.run(
            [*self.exec_prefix(name), *command],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def cut(self, name, addresses):
        """Drop every packet between `name` and `addresses`, both ways
        (rules in `name`'s namespace only: the others are untouched)."""
        rules = [
            f"add table inet {TABLE}",
            f"add chain inet {TABLE} in {{ type filter hook input priority 0; }}",
            f"add chain inet {TABLE} out {{ type filter hook output priority 0; }}",
        ]
        for address in addresses:
            rules.append(f"add rule inet {TABLE} in ip saddr {address} drop")
            rules.append(f"add rule inet {TABLE} out ip daddr {address} drop")
        self._nft(name, "\n".join(rules))

    def cut_between(self, side, other_side):
        """No packet between any namespace of `side` and any of
        `other_side` (names; "root" is the root namespace, which is cut
        from inside the others)."""
        for a in side:
            for b in other_side:
                if a != "root":
                    self.cut(a, [self._address_of(b)])
                if b != "root":
                    self.cut(b, [self._address_of(a)])

    def _address_of(self, name):
        return self.root_address if name == "root" else self.address(name)

    def heal(self):
        for name in self.namespaces:
            # (Fails where there is no cut: nothing to heal there.)
            self._nft(name, f"delete table inet {TABLE}", check=False)

    def _nft(self, name, script, check=True):
        subprocess.run(
            [*self.exec_prefix(name), "nft", "-f", "-"],
            input=script,
            check=check,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def remove(self):
        remove_run(self.suffix)


def remove_run(suffix):
    """Kill what runs in the run's namespaces, delete its links, them, its
    bridge and state directory."""
    namespaces = [name for name in _namespaces() if name.startswith(f"{PREFIX}{suffix}-")]
    for namespace in namespaces:
        for pid in ip("netns", "pids", namespace, check=False).split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
    # The root namespace's end of each veth pair, deleted here: deleting a
    # namespace removes them too, but later, in the kernel's own time.
    for line in ip("-o", "link", "show", check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(f"{PREFIX}{suffix}") and name != f"{PREFIX}{suffix}br":
            ip("link", "del", name, check=False)
    for namespace in namespaces:
        ip("netns", "del", namespace, check=False)
    ip("link", "del", f"{PREFIX}{suffix}br", check=False)
    state_dir = os.path.join(tempfile.gettempdir(), f"{PREFIX}{suffix}")
    subprocess.run(["rm", "-rf", state_dir], check=False)


def _namespaces():
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def remove_leftovers():
    """The namespaces and bridges of runs whose owner died (a run that was
    killed outright): theirs only, never a live run's."""
    suffixes = {
        name[len(PREFIX) :].split("-")[0] for name in _namespaces() if name.startswith(PREFIX)
    }
    for line in ip("-o", "link", "show", "type", "bridge").splitlines():
        name = line.split(":")[1].strip()
        if name.startswith(PREFIX) and name.endswith("br"):
            suffixes.add(name[len(PREFIX) : -2])
    for suffix in suffixes:
        owner = leftovers.owner_of(os.path.join(tempfile.gettempdir(), f"{PREFIX}{suffix}"))
        if owner is None or not leftovers.alive(owner):
            remove_run(suffix)
