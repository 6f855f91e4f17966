"""``pca``: one plain model at the largest size, its embeddings projected onto
their top-k principal components (scikit-learn's PCA, fitted on the
embeddings of the training graph). Links are scored on the rank-k
reconstruction, i.e. the k-dimensional code of each node plus the shared
mean vector, so that the inner-product decoder stays meaningful; the probe
sees the k-dimensional codes."""
import torch
from sklearn.decomposition import PCA

from benchmarks.sizing.job import curve_model, embedding_columns
from benchmarks.sizing.method import SizingMethod, register


def run(job) -> dict:
    base = curve_model(job, "pca", gate=None)
    z_train, z_test = base.z_train.numpy(), base.z_test.numpy()
    k = min(job.config.dim, z_train.shape[1])
    pca = PCA(n_components=k, svd_solver="full").fit(z_train)

    def reconstruct(z):
        return torch.from_numpy(pca.inverse_transform(pca.transform(z))).float()

    row = base.result.row()
    codes = torch.from_numpy(pca.transform(z_test)).float()
    row.update(embedding_columns(reconstruct(z_train), reconstruct(z_test), job, probe_z=codes,
                                 decoder=base.result.model.decoder))
    row.update(width=k, shared_train=True, base_dim=z_train.shape[1],
               num_params=base.result.num_params + pca.components_.size + pca.mean_.size)
    return row


register(SizingMethod("pca", run, "one model at the largest size, projected to each", curve=True))
