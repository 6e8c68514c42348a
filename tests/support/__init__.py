"""Test harness shared by the suites and the benchmark: throwaway databases
and vhosts, services as `nameko run` processes or in-process containers, SQL
read-backs for assertions, the OpenAPI schema checker, and reading the Docker
packaging files."""
