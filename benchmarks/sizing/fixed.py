"""``fixed``: a plain model trained at each size (one run per size)."""
from dataclasses import replace

from benchmarks.sizing.job import trained_row
from benchmarks.sizing.method import SizingMethod, register


def run(job) -> dict:
    return trained_row(job, replace(job.config, gate=None))


register(SizingMethod("fixed", run, "a model per size"))
