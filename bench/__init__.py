"""Benchmarks: each module prints its figures and exposes `run(quick) -> list[dict]` rows of
{figure, value, baseline, ratio, target, unit}. They never run as timed tests."""
