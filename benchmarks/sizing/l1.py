"""``l1``: a per-dimension scale with an L1 penalty (network-slimming style),
thresholded after training (:class:`damgraph.gates.L1Scale`), one run per
lambda. The scales learn at the weights' rate; at the gates' DAM rate they
swing too far to settle."""
from dataclasses import replace

from benchmarks.sizing.job import trained_row
from benchmarks.sizing.method import GRID_SETTINGS, Penalty, SizingMethod, register


def run(job) -> dict:
    config = replace(job.config, gate="l1", beta_lr=job.config.lr)
    return trained_row(job, config)


# Grid chosen on Cora seed 0 from 128 dimensions by the learned widths and validation AUC (never test):
# 0.003/0.01/0.03 -> 84/33/93 units (at 0.1 and up every scale shrinks alike and all 128 stay above the
# relative threshold).
register(SizingMethod("l1", run, "L1-scaled units from the largest size, one run per penalty weight", gated=True,
                      penalty=Penalty("l1_lams", "penalty weights of the l1 method", (0.003, 0.01, 0.03)),
                      settings=GRID_SETTINGS))
