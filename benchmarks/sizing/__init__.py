"""How the embedding size is chosen: one module per method behind one interface.

A method is a function ``run(job) -> dict`` that returns the result columns of
one point of the size curve (``active_dim``, test and validation scores,
seconds, parameters) for ``job.config.dim``. Methods that train once for the
whole curve (``pca``) keep what they trained in ``job.cache``, shared by
the points of one process, and report the shared training time on every point
with ``shared_train = True`` so that a curve's cost counts it once. Adding a
method is one module with a ``run`` function, registered in :data:`METHODS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Sequence, Tuple

import torch
from torch_geometric.data import Data

from damgraph.linkpred import LinkPredConfig, score_embeddings

Split = Tuple[Data, Data, Data]


@dataclass
class Job:
    """One point to compute: the split, the settings (``config.dim`` is the
    size asked for), the whole size grid, and a cache shared in the process."""

    split: Split
    config: LinkPredConfig
    sizes: Sequence[int]
    dataset: str
    cache: Dict = field(default_factory=dict)


def embedding_columns(z_val: torch.Tensor, z_test: torch.Tensor, job: Job) -> Dict[str, float]:
    """Validation AUC and every test metric of embeddings computed without a
    trained decoder (inner product)."""
    val = score_embeddings(z_val, job.split[1])
    test = score_embeddings(z_test, job.split[2])
    return {"test_auc": test.pop("auc"), "test_ap": test.pop("ap"),
            **{f"test_{k}": v for k, v in test.items()}, "val_auc": val["auc"]}


from benchmarks.sizing import dam, fixed, l0, l1, matryoshka, pca, spectral  # noqa: E402  (they use Job)

METHODS: Dict[str, Callable[[Job], Dict]] = {
    "fixed": fixed.run,
    "dam": dam.run,
    "pca": pca.run,
    "l1": l1.run,
    "l0": l0.run,
    "matryoshka": matryoshka.run,
    "spectral": spectral.run,
}
# Methods trained over a grid of penalty weights, and the default grid of each.
LAMBDA_GRIDS: Dict[str, Sequence[float]] = {"dam": (0.03,), "l1": (0.01,), "l0": (0.01,)}
