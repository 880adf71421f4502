"""Benchmarks for secretsd: `python bench/run.py` (see docs/benchmarks.md)."""
