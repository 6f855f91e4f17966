"""What a sizing method is given and the helpers every method shares: the
:class:`Job` (split, settings, size grid, shared cache), training a model
for it, and the result columns of an embedding."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Sequence, Tuple

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
