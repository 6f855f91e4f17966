"""``dam``: DAM from a starting width; each run learns its width (one point)."""
from dataclasses import replace

from benchmarks.sizing.job import trained_row
from benchmarks.sizing.method import Penalty, SizingMethod, register


#: The dam method's penalty flag (``--lams``); unset, the model preset's one weight.
LAM = Penalty("lams", "penalty weights of the dam method (default: the model preset's, 0.1; a grid such as "
                     "0.01 0.03 0.1 0.3 runs one model per weight)")


def run(job) -> dict:
    return trained_row(job, replace(job.config, gate="dam"))


register(SizingMethod("dam", run, "DAM gates from the largest size, one run per penalty weight", gated=True,
                      penalty=LAM))
