"""Runnable benchmark harness: ``python -m benchmarks.<task>``."""
