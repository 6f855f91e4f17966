"""``matryoshka``: one model at the largest size trained with the
reconstruction loss summed over the nested prefixes 2, 4, 8, ... (Kusupati et
al., NeurIPS 2022), evaluated at each prefix: the first k columns are the
k-dimensional embedding. The best epoch is chosen on the full width's
validation AUC."""
from dataclasses import replace

import torch

from benchmarks.sizing import embedding_columns
from damgraph.linkpred import train_link_prediction


def _base(job):
    key = ("matryoshka-base", job.dataset, job.config.seed, max(job.sizes))
    if key not in job.cache:
        config = replace(job.config, dam=False, matryoshka=True, dim=max(job.sizes))
        result = train_link_prediction(job.split, config)
        model = result.model.eval()
        with torch.no_grad():
            z_train = model.encode(job.split[0].x, job.split[0].edge_index)
            z_test = model.encode(job.split[2].x, job.split[2].edge_index)
        job.cache[key] = (result, z_train, z_test)
    return job.cache[key]


def run(job) -> dict:
    result, z_train, z_test = _base(job)
    k = min(job.config.dim, z_train.size(1))
    row = result.row()
    row.update(embedding_columns(z_train[:, :k], z_test[:, :k], job))
    row.update(active_dim=k, shared_train=True, base_dim=z_train.size(1))
    return row
