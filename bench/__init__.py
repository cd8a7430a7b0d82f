"""robomail benchmarks (issue 6): ``python -m bench`` or ``bench/run``; see docs/benchmarks.md."""
