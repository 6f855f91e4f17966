"""``matryoshka``: one model at the largest size trained with the
reconstruction loss summed over the nested prefixes 2, 4, 8, ... (Kusupati et
al., NeurIPS 2022), evaluated at each prefix: the first k columns are the
k-dimensional embedding (with an MLP decoder, the decoder cut to its first k
inputs; in training the prefixes reach it zero-padded). The best epoch is
chosen on the full width's validation AUC."""
import copy

import torch

from benchmarks.sizing.job import curve_model, embedding_columns
from benchmarks.sizing.method import SizingMethod, register


def run(job) -> dict:
    base = curve_model(job, "matryoshka", gate=None, matryoshka=True)
    k = min(job.config.dim, base.z_train.size(1))
    row = base.result.row()
    decoder = base.result.model.decoder
    if hasattr(decoder, "keep_inputs"):
        decoder = copy.deepcopy(decoder).cpu()
        decoder.keep_inputs(torch.arange(k))
    row.update(embedding_columns(base.z_train[:, :k], base.z_test[:, :k], job, decoder=decoder))
    row.update(width=k, shared_train=True, base_dim=base.z_train.size(1))
    return row


register(SizingMethod("matryoshka", run, "one model trained on nested prefixes", curve=True))
