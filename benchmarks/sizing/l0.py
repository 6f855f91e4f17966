"""``l0``: hard-concrete L0 gates per dimension (Louizos et al., ICLR 2018;
beta 2/3, gamma -0.1, zeta 1.1), deterministic at test time
(:class:`damgraph.gates.HardConcreteGate`), one run per lambda. The gate
logits learn at 0.1 per step: at the weights' 0.01 they need ~460
full-batch epochs to close a gate, longer than training lasts."""
from dataclasses import replace

from benchmarks.sizing.job import trained_row

GATE_LR = 0.1


def run(job) -> dict:
    config = replace(job.config, gate="l0", beta_lr=GATE_LR)
    return trained_row(job, config)
