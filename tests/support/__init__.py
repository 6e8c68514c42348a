"""Test harness shared by the suites and the benchmark: throwaway databases
and vhosts, `nameko run` processes, and SQL read-backs for assertions."""
