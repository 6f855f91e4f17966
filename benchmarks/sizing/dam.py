"""``dam``: DAM from a starting width; each run learns its width (one point)."""
from dataclasses import replace

from benchmarks.sizing.job import trained_row


def run(job) -> dict:
    return trained_row(job, replace(job.config, gate="dam"))
