"""``l0``: hard-concrete L0 gates per dimension (Louizos et al., ICLR 2018;
beta 2/3, gamma -0.1, zeta 1.1), deterministic at test time
(:class:`damgraph.gates.HardConcreteGate`), one run per lambda. The gate
logits learn at 0.1 per step: at the weights' 0.01 they need ~460
full-batch epochs to close a gate, longer than training lasts."""
from dataclasses import replace

from benchmarks.sizing.job import trained_row
from benchmarks.sizing.method import GRID_SETTINGS, Penalty, SizingMethod, register

GATE_LR = 0.1


def run(job) -> dict:
    config = replace(job.config, gate="l0", beta_lr=GATE_LR)
    return trained_row(job, config)


# Grid chosen on Cora seed 0 from 128 dimensions by the learned widths and validation AUC (never test):
# 0.003/0.01/0.03 -> 94/32/13 units (0.1 collapses: validation AUC 0.85).
register(SizingMethod("l0", run, "hard-concrete L0 gates from the largest size, one run per penalty weight",
                      gated=True, penalty=Penalty("l0_lams", "penalty weights of the l0 method", (0.003, 0.01, 0.03)),
                      settings=GRID_SETTINGS))
