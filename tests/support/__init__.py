"""Helpers for the test suites only (the benchmark uses `harness`, never
this): the services as in-process nameko containers with a checking HTTP
client (`services`), the OpenAPI schema checker (`openapi`), reading
Prometheus expositions and running Prometheus (`prometheus`), headless
Chromium (`browser`), and reading the Docker and Kubernetes packaging
(`deployment`, `service_commands`)."""
