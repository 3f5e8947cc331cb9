"""Tools for people and tests: traffic simulation and sending, the oracle (the plain
in-memory join that tests compare against), the demo and the benchmarks. Only the
CLI and the tests import this package."""
