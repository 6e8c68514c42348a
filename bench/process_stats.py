"""What a running process costs, from /proc (Linux): peak resident memory
and CPU time, of the services the benchmark starts and of the machine's own
RabbitMQ and MariaDB servers."""

import os
import pwd

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid):
    """VmHWM (the peak resident set size so far) in MiB, or None if the
    process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def cpu_seconds(pid):
    """User + system CPU time used so far, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # The command name may hold spaces; the fields after it do not.
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_by_service(named_processes):
    """{label: VmHWM MiB} for [(label, NamekoProcess)], read while they run."""
    return {label: peak_rss_mb(process.process.pid) for label, process in named_processes}


def server_pids():
    """{"rabbitmq": pid, "mariadb": pid} of the machine's broker and
    database servers, those found. The broker is the `beam.smp` run by the
    rabbitmq user that is not a `rabbitmqctl` (an escript); the servers are
    shared, so their CPU includes whatever else uses them meanwhile."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as comm:
                name = comm.read().strip()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                arguments = cmdline.read().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if name in ("mariadbd", "mysqld"):
            found.setdefault("mariadb", int(entry))
        elif name == "beam.smp" and b"escript" not in arguments and _owner(entry) == "rabbitmq":
            found.setdefault("rabbitmq", int(entry))
    return found


def _owner(pid):
    try:
        return pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
    except (OSError, KeyError):
        return None


def _pid(process):
    """A NamekoProcess's pid, or a pid as it is."""
    return process if isinstance(process, int) else process.process.pid


class CpuPerOrder:
    """CPU milliseconds each process spends per order processed, between the
    first poll that sees an order processed and the last poll (so process
    start-up is left out). Feed it with `sample(processed_count)`. Each
    process is a NamekoProcess or a pid."""

    def __init__(self, named_processes):
        self.named_processes = named_processes
        self.first = None
        self.last = None

    def sample(self, processed):
        if processed == 0:
            return
        reading = (
            processed,
            {label: cpu_seconds(_pid(process)) for label, process in self.named_processes},
        )
        if self.first is None:
            self.first = reading
        self.last = reading

    def ms_per_order(self):
        if self.first is None or self.last[0] == self.first[0]:
            return {}
        orders = self.last[0] - self.first[0]
        return {
            label: (self.last[1][label] - self.first[1][label]) / orders * 1000
            for label, _ in self.named_processes
            if self.first[1][label] is not None and self.last[1][label] is not None
        }
