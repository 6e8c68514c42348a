"""The service container: a graceful stop that does not end says, in the
log, where each greenthread is waiting."""

import logging
import os
import signal

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider

from harness.processes import wait_until
from order_pipeline.extensions import containers


def waiting_for_a_close_handshake(answer):
    answer.wait()


def test_a_stop_that_does_not_end_logs_where_it_waits(monkeypatch, caplog):
    monkeypatch.setattr(containers, "STOP_REPORT_SECONDS", 0.05)
    answer = Event()

    class NeverAnswered(DependencyProvider):
        def stop(self):
            waiting_for_a_close_handshake(answer)

    class Service:
        name = "stuck_service"
        connection = NeverAnswered()

    container = containers.StopOnceServiceContainer(
        Service, {"AMQP_URI": "amqp://guest:guest@localhost/"}
    )
    container.start()
    caplog.set_level(logging.WARNING, logger=containers.__name__)
    stopping = eventlet.spawn(container.stop)

    def reported():
        eventlet.sleep(0.01)
        return "still stopping" in caplog.text

    wait_until(reported, 10, interval=0, message="the slow stop's report")
    assert "stuck_service: still stopping after 0.05 s" in caplog.text
    assert "in waiting_for_a_close_handshake" in caplog.text
    answer.send(True)
    stopping.wait()
    assert caplog.text.count("still stopping") == 1


def test_sigusr1_logs_where_each_greenthread_waits(caplog):
    class Service:
        name = "quiet_service"

    containers.StopOnceServiceContainer(Service, {"AMQP_URI": "amqp://guest:guest@localhost/"})
    answer = Event()
    waiting = eventlet.spawn(waiting_for_a_close_handshake, answer)
    eventlet.sleep(0)  # it starts, and waits
    caplog.set_level(logging.WARNING, logger=containers.__name__)
    os.kill(os.getpid(), signal.SIGUSR1)
    wait_until(lambda: "SIGUSR1" in caplog.text, 10, message="the report")
    assert "in waiting_for_a_close_handshake" in caplog.text
    answer.send(True)
    waiting.wait()
