"""``dam-prefix``: one DAM run, every size. DAM closes units from the lowest
index up and its open gates rise with the index (Bu et al., NeurIPS 2021),
so the open units carry an order; the k-dimensional embedding is the top
block of the k highest gates, scored without retraining (with an MLP
decoder, the decoder cut to those k inputs). One model per seed is trained
from the largest size at one penalty weight (``--prefix-lams``); sizes above
its learned width report the whole learned embedding.

``dam-nested`` is the same with the Matryoshka loss (Kusupati et al.,
NeurIPS 2022) over the nested top blocks 2, 4, 8, ... while DAM trains, so
that every block is trained to score on its own."""
import copy

import torch

from benchmarks.sizing.job import curve_model, embedding_columns
from benchmarks.sizing.method import Penalty, SizingMethod, register


def run(job, nested: bool = False) -> dict:
    name = "dam-nested" if nested else "dam-prefix"
    base = curve_model(job, f"{name} lam={job.config.lam:g}", gate="dam", matryoshka=nested)
    gate = base.result.model.encoder.out_gate
    width = gate.num_open
    k = min(job.config.dim, width)
    top = torch.arange(gate.width - k, gate.width)  # the k highest gates
    decoder = base.result.model.decoder
    if hasattr(decoder, "keep_inputs"):
        decoder = copy.deepcopy(decoder).cpu()
        decoder.keep_inputs(top)
    row = base.result.row()
    row.update(embedding_columns(base.z_train[:, top], base.z_test[:, top], job, decoder=decoder))
    row.update(width=k, shared_train=True, base_dim=gate.width, learned_width=width)
    return row


def run_nested(job) -> dict:
    return run(job, nested=True)


#: The one penalty weight of dam-prefix's and dam-nested's models (``--prefix-lams``).
PREFIX_LAM = Penalty("prefix_lams", "penalty weight of the dam-prefix and dam-nested models (default: the smallest "
                                   "of --lams)")
register(SizingMethod("dam-prefix", run, "one DAM model per seed (--prefix-lams), its top-k gates at each size",
                      gated=True, curve=True, penalty=PREFIX_LAM))
register(SizingMethod("dam-nested", run_nested, "the same trained with a Matryoshka loss on the nested top "
                                                "blocks", gated=True, curve=True, penalty=PREFIX_LAM))
