"""Benchmarks of the studio against bare Starlette baselines; run `python bench/run.py`."""
