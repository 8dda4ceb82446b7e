"""Benchmarks: each module measures one figure; `python -m bench` runs them all."""
