"""Small helpers over tests.support.processes.Pipeline for the scenarios."""
import signal

from tests.support.processes import wait_until


def outputs(pipeline, module):
    """The logs of every process of `module` the pipeline has run."""
    return [process.output() for process in pipeline.processes
            if process.modules == [module]]


def processor_outputs(pipeline):
    return outputs(pipeline, "processor_service")


def terminate_all(processes, timeout=30):
    """SIGTERM every process at once; return their exit codes once all have
    exited (nameko stops gracefully on SIGTERM)."""
    for process in processes:
        process.signal(signal.SIGTERM)
    return wait_exited(processes, timeout)


def wait_exited(processes, timeout=30):
    """The exit codes of `processes`, once all have exited."""
    wait_until(lambda: not any(process.running for process in processes), timeout,
               message="every service exited")
    return [process.process.returncode for process in processes]


def stop_pipeline(pipeline, timeout=30):
    """One SIGTERM to each process still running, then SIGKILL whatever has
    not exited in time (and say so). Unlike Pipeline.stop, never signals a
    process twice: nameko runs a second, concurrent graceful stop for a
    second SIGTERM, which can hang."""
    running = [process for process in pipeline.processes if process.running]
    try:
        terminate_all(running, timeout)
    finally:
        stuck = [process.modules for process in running if process.running]
        for process in running:
            process.kill()
    assert not stuck, "{} did not stop on SIGTERM".format(stuck)


def metrics(pipeline):
    response = pipeline.get("/metrics")
    response.raise_for_status()
    return response.json()
