"""Helpers of `benchmarks/flow_bench.py` (`make bench`): not a test, not part of `make test`."""
