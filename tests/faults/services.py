"""Small helpers over harness.processes.Pipeline for the scenarios."""

from harness.processes import wait_until


def outputs(pipeline, module):
    """The logs of every process of `module` the pipeline has run."""
    return [process.output() for process in pipeline.processes if process.modules == [module]]


def processor_outputs(pipeline):
    return outputs(pipeline, "processor_service")


def wait_exited(processes, timeout=30):
    """The exit codes of `processes`, once all have exited."""
    wait_until(
        lambda: not any(process.running for process in processes),
        timeout,
        message="every service exited",
    )
    return [process.process.returncode for process in processes]


def metrics(pipeline):
    response = pipeline.get("/metrics")
    response.raise_for_status()
    return response.json()
