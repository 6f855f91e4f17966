"""How the embedding size is chosen: one module per method behind one interface.

A method is a function ``run(job) -> dict`` that returns the result columns of
one point of the size curve (``width``, test and validation scores,
seconds, parameters) for ``job.config.dim``. Methods that train once for the
whole curve (``pca``) keep what they trained in ``job.cache``, shared by
the points of one process, and report the shared training time on every point
with ``shared_train = True`` so that a curve's cost counts it once. Adding a
method is one module with a ``run`` function, registered in :data:`METHODS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch_geometric.data import Data

from damgraph.config import LinkPredConfig
from damgraph.evaluation import score_embeddings
from damgraph.linkpred import LinkPredResult, train_link_prediction
from damgraph.probe import linear_probe

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


def probe_columns(z: torch.Tensor, job: Job) -> Dict[str, float]:
    """The linear node-classification probe of embeddings :obj:`z` (all
    nodes) on the dataset's node split, when it has labels."""
    data = job.split[2]
    if getattr(data, "y", None) is None or getattr(data, "train_mask", None) is None:
        return {}
    return linear_probe(z, data, seed=job.config.seed)


def embedding_columns(z_val: torch.Tensor, z_test: torch.Tensor, job: Job,
                      probe_z: Optional[torch.Tensor] = None,
                      decoder: Optional[torch.nn.Module] = None) -> Dict[str, float]:
    """Validation AUC, every test metric (with :obj:`decoder`, default the
    inner product) and the linear probe (of :obj:`probe_z`, default the
    test-graph embeddings)."""
    if decoder is not None:
        decoder = decoder.cpu().eval()
    val = score_embeddings(z_val, job.split[1], decoder)
    test = score_embeddings(z_test, job.split[2], decoder)
    return {"test_auc": test.pop("auc"), "test_ap": test.pop("ap"),
            **{f"test_{k}": v for k, v in test.items()}, "val_auc": val["auc"],
            **probe_columns(z_test if probe_z is None else probe_z, job)}


@dataclass
class Trained:
    """A trained model's result and its embeddings of the training graph
    and of the test split's message-passing graph."""

    result: LinkPredResult
    z_train: torch.Tensor
    z_test: torch.Tensor


def train(job: Job, config: LinkPredConfig) -> Trained:
    result = train_link_prediction(job.split, config)
    model = result.model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():  # embeddings back on the CPU for scikit-learn
        z_train, z_test = (model.encode((d.x if d.x is not None else result.inputs).to(device),
                                        d.edge_index.to(device)).cpu() for d in (job.split[0], job.split[2]))
    return Trained(result, z_train, z_test)


def curve_model(job: Job, name: str, **settings) -> Trained:
    """The one model a method trains at the largest size for its whole
    curve (``settings`` override the job's), cached across the curve's points."""
    key = (name, job.dataset, job.config.seed, max(job.sizes))
    if key not in job.cache:
        job.cache[key] = train(job, replace(job.config, dim=max(job.sizes), **settings))
    return job.cache[key]


def trained_row(job: Job, config: LinkPredConfig) -> Dict:
    """Train one model for :obj:`job` and return its row, probe included."""
    trained = train(job, config)
    return {**trained.result.row(), **probe_columns(trained.z_test, job)}


from benchmarks.sizing import dam, dam_prefix, fixed, l0, l1, matryoshka, pca, spectral  # noqa: E402  (they use Job)

METHODS: Dict[str, Callable[[Job], Dict]] = {
    "fixed": fixed.run,
    "dam": dam.run,
    "dam-prefix": dam_prefix.run,
    "dam-nested": dam_prefix.run_nested,
    "pca": pca.run,
    "l1": l1.run,
    "l0": l0.run,
    "matryoshka": matryoshka.run,
    "spectral": spectral.run,
}
#: Methods whose models have no size gate: the gate settings do not enter their runs' ids.
GATELESS = ("fixed", "pca", "matryoshka", "spectral")
#: Methods whose points of the size curve share one trained model (per dataset, seed and penalty).
CURVE_METHODS = ("pca", "matryoshka", "dam-prefix", "dam-nested")


def model_unit(entry: Dict) -> Tuple:
    """The runs of a sweep that share a trained model: a curve method's
    points of one dataset, seed and penalty weight; any other run alone.
    Parallel sweeps hand a unit to one process so that it trains once."""
    if entry["method"] in CURVE_METHODS:
        return tuple(entry[c] for c in ("dataset", "seed", "method", "lam"))
    return tuple(sorted(entry.items()))


# Methods trained over a grid of penalty weights, and the default grid of each. Chosen on
# Cora seed 0 from 128 dimensions by the learned widths and validation AUC (never test):
# dam 0.01/0.03/0.1/0.3 -> widths 57/29/15/7; l1 0.003/0.01/0.03 -> 84/33/93 (at 0.1 and up
# every scale shrinks alike and all 128 stay above the relative threshold); l0
# 0.003/0.01/0.03 -> 94/32/13 (0.1 collapses: val AUC 0.85).
LAMBDA_GRIDS: Dict[str, Sequence[float]] = {"dam": (0.01, 0.03, 0.1, 0.3), "l1": (0.003, 0.01, 0.03),
                                            "l0": (0.003, 0.01, 0.03)}
