"""``l1``: a per-dimension scale with an L1 penalty (network-slimming style),
thresholded after training (:class:`damgraph.gates.L1Scale`), one run per
lambda. The scales learn at the weights' rate; at the gates' DAM rate they
swing too far to settle."""
from dataclasses import replace

from benchmarks.sizing.job import trained_row


def run(job) -> dict:
    config = replace(job.config, gate="l1", beta_lr=job.config.lr)
    return trained_row(job, config)
