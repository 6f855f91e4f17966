"""``spectral``: a non-neural reference, the k-wide spectral embedding of the
message-passing graph (:func:`damgraph.spectral.spectral_embedding`)."""
import time

from benchmarks.sizing.job import embedding_columns
from benchmarks.sizing.method import SizingMethod, register
from damgraph.spectral import spectral_embedding


def run(job) -> dict:
    k, seed = job.config.dim, job.config.seed
    train, _, test = job.split
    start = time.perf_counter()
    z_val = spectral_embedding(train.edge_index, train.num_nodes, k, seed)
    z_test = spectral_embedding(test.edge_index, test.num_nodes, k, seed)
    row = embedding_columns(z_val, z_test, job)
    row.update(width=z_test.shape[1], epochs=0, train_s=round(time.perf_counter() - start, 3),
               num_params=0, shared_train=False)
    return row


register(SizingMethod("spectral", run, "normalised-adjacency eigenvectors"))
