"""What the private RabbitMQ nodes, MariaDB servers and HAProxy of the fault
and cluster suites have in common: a server run as a child process in its
own process group, started and waited for, frozen and thawed (a server that
hangs), stopped cleanly (SIGTERM) or killed if that takes too long."""

import os
import signal
import subprocess
import time


class PrivateServer:
    name = "server"
    poll_seconds = 0.2

    def __init__(self, base_dir, log_name):
        self.base_dir = base_dir
        self.log_path = os.path.join(base_dir, log_name)
        self.process = None

    def command(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def answers(self):
        raise NotImplementedError

    def start(self, timeout=60):
        return self.launch().wait_answering(timeout)

    def launch(self):
        """Start the process and return at once (wait_answering waits)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.base_dir,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # The group id, for harness.leftovers if this run dies uncleanly.
        with open(os.path.join(self.base_dir, "process-group"), "w") as pid_file:
            pid_file.write(str(self.process.pid))
        return self

    def wait_answering(self, timeout=60):
        deadline = time.monotonic() + timeout
        while not self.answers():
            exit_code = self.process.poll()
            if exit_code is not None or time.monotonic() > deadline:
                self.stop()
                why = (
                    f"exited with {exit_code}"
                    if exit_code is not None
                    else f"not up in {timeout} s"
                )
                # The log's end in the error itself: CI prints the error,
                # and the run's directory is gone by the time anyone looks.
                raise RuntimeError(
                    f"private {self.name} did not start ({why}); the end of {self.log_path}:\n"
                    + self.log_tail()
                )
            time.sleep(self.poll_seconds)
        return self

    def log_tail(self, lines=25):
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError as exc:
            return f"(unreadable: {exc})"

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def freeze(self):
        """Stop every process of the server (SIGSTOP): it still accepts TCP
        connections (the kernel does) but answers nothing, as a hung server
        or a network that drops its packets."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self):
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self, timeout=30):
        """A clean shutdown (SIGTERM), killing its process group if it does
        not exit in time. Safe to call twice, and on a frozen server."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.thaw()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                # Not reaped yet, so the group id is still this server's.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None
