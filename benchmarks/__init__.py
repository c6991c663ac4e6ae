"""Benchmark harness of Tocsin: ``python -m benchmarks.pipeline --help``."""
