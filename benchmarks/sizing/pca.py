"""``pca``: one plain model at the largest size, its embeddings projected onto
their top-k principal components (scikit-learn's PCA, fitted on the
embeddings of the training graph). Links are scored on the rank-k
reconstruction, i.e. the k-dimensional code of each node plus the shared
mean vector, so that the inner-product decoder stays meaningful."""
from dataclasses import replace

import torch
from sklearn.decomposition import PCA

from benchmarks.sizing import embedding_columns
from damgraph.linkpred import train_link_prediction


def _base(job):
    key = ("pca-base", job.dataset, job.config.seed, max(job.sizes))
    if key not in job.cache:
        result = train_link_prediction(job.split, replace(job.config, dam=False, dim=max(job.sizes)))
        model = result.model.eval()
        with torch.no_grad():
            z_train = model.encode(job.split[0].x, job.split[0].edge_index)
            z_test = model.encode(job.split[2].x, job.split[2].edge_index)
        job.cache[key] = (result, z_train.numpy(), z_test.numpy())
    return job.cache[key]


def run(job) -> dict:
    result, z_train, z_test = _base(job)
    k = min(job.config.dim, z_train.shape[1])
    pca = PCA(n_components=k, svd_solver="full").fit(z_train)

    def reconstruct(z):
        return torch.from_numpy(pca.inverse_transform(pca.transform(z))).float()

    row = result.row()
    codes = torch.from_numpy(pca.transform(z_test)).float()  # the k numbers per node, for the probe
    row.update(embedding_columns(reconstruct(z_train), reconstruct(z_test), job, probe_z=codes))
    row.update(active_dim=k, shared_train=True, base_dim=z_train.shape[1],
               num_params=result.num_params + pca.components_.size + pca.mean_.size)
    return row
