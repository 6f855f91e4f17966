"""Link prediction with (DAM-)GAE/VGAE: the standard split, training with
model selection on validation AUC, and a record per run."""
from __future__ import annotations

import copy
import random
from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Tuple

import torch
from torch_geometric.data import Data
from torch_geometric.nn import GAE
from torch_geometric.transforms import RandomLinkSplit
from torch_geometric.utils import negative_sampling

from damgraph.compact import compacted_size
from damgraph.mask import SizeGate, active_widths
from damgraph.metrics import ranking_metrics
from damgraph.models import build_autoencoder, count_parameters, make_optimizer
from damgraph.training import deterministic, TrainingRecord, fit, run_columns, seed_everything


def split_edges(
    data: Data, seed: int, val_ratio: float = 0.05, test_ratio: float = 0.10, undirected: bool = True,
    mrr_negatives: int = 100,
) -> Tuple[Data, Data, Data]:
    """The standard GAE split (Kipf and Welling, 2016) with PyG's
    :class:`~torch_geometric.transforms.RandomLinkSplit`: undirected edges,
    5% validation and 10% test, each with as many fixed negatives. For MRR,
    the test split also gets :obj:`mrr_negatives` random tail corruptions
    per positive (``test.mrr_neg_dst``, shape ``[P, mrr_negatives]``,
    unfiltered, as OGB's ``ogbl-citation2``). The split depends on
    :obj:`seed` alone (the global RNG state is left untouched), so every
    method trained under a seed sees the same split."""
    transform = RandomLinkSplit(
        num_val=val_ratio, num_test=test_ratio, is_undirected=undirected,
        add_negative_train_samples=False, split_labels=True)
    # PyG's negative sampling draws from Python's `random` as well as torch.
    py_state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            train, val, test = transform(copy.copy(data))
            if test_ratio > 0:
                test.mrr_neg_dst = torch.randint(
                    data.num_nodes, (test.pos_edge_label_index.size(1), mrr_negatives))
            return train, val, test
    finally:
        random.setstate(py_state)


@dataclass
class LinkPredConfig:
    """Settings of one link-prediction run.

    ``gate`` is ``"dam"``, a baseline gate (``"l1"``, ``"l0"``) or ``None``
    for the plain model; ``dim`` is the embedding size, or the starting width
    when gated. ``lam`` weighs the gate penalty (for DAM
    :math:`\\lambda \\cdot \\mathrm{mean}(\\beta)`); ``beta_lr`` is the
    learning rate of the gates' own parameter group.
    """

    model: str = "gae"
    dim: int = 64
    hidden: Optional[int] = None
    num_layers: int = 2
    dropout: float = 0.0
    gate: Optional[str] = "dam"
    mask_hidden: bool = False
    matryoshka: bool = False
    lam: float = 0.03
    lr: float = 0.01
    beta_lr: float = 0.2
    weight_decay: float = 0.0
    epochs: int = 400
    patience: int = 100
    seed: int = 0


@dataclass
class LinkPredResult:
    """What one run produced; :meth:`row` flattens it for a results table."""

    config: LinkPredConfig
    test_auc: float
    test_ap: float
    test_ranking: Dict[str, float]
    record: TrainingRecord
    widths: Dict[str, int]
    num_params: int
    num_params_compact: Optional[int]
    model: GAE = field(repr=False)

    @property
    def active_dim(self) -> int:
        """Width of the embedding the selected model produces."""
        gate = self.model.encoder.out_mask
        return gate.num_active if isinstance(gate, SizeGate) else self.config.dim

    def row(self) -> dict:
        row = dict(asdict(self.config))
        row.update(
            active_dim=self.active_dim, test_auc=self.test_auc, test_ap=self.test_ap,
            **{f"test_{k}": v for k, v in self.test_ranking.items()},
            val_auc=self.record.val_score,
            **run_columns(self.record, self.widths, self.num_params, self.num_params_compact))
        return row


def matryoshka_prefixes(dim: int) -> list:
    """The nested sizes 2, 4, 8, ... below :obj:`dim`, then :obj:`dim`
    (Matryoshka representation learning, Kusupati et al., NeurIPS 2022)."""
    sizes = [2 ** i for i in range(1, dim.bit_length()) if 2 ** i < dim]
    return sizes + [dim]


@torch.no_grad()
def score_embeddings(z: torch.Tensor, data: Data, decoder: Optional[torch.nn.Module] = None) -> Dict[str, float]:
    """Link-prediction scores of embeddings :obj:`z` on a split's labelled
    edges: AUC and AP of the sigmoid probabilities (Kipf's terms, computed as
    PyG's :meth:`GAE.test` does), and when the split has per-positive
    negatives (``mrr_neg_dst``, the test split), Hits@10/20/50/100 against
    the shared negatives and MRR (OGB's terms), ranking by the logits.
    :obj:`decoder` defaults to the inner product."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    from torch_geometric.nn.models import InnerProductDecoder

    decoder = decoder or InnerProductDecoder()
    pos_scores = decoder(z, data.pos_edge_label_index, sigmoid=False)
    neg_scores = decoder(z, data.neg_edge_label_index, sigmoid=False)
    y = torch.cat([torch.ones_like(pos_scores), torch.zeros_like(neg_scores)]).cpu().numpy()
    probs = torch.cat([pos_scores, neg_scores]).sigmoid().cpu().numpy()
    out = {"auc": float(roc_auc_score(y, probs)), "ap": float(average_precision_score(y, probs))}
    if hasattr(data, "mrr_neg_dst"):
        neg_dst = data.mrr_neg_dst
        src = data.pos_edge_label_index[0].view(-1, 1).expand_as(neg_dst)
        per_positive = decoder(z, torch.stack([src.reshape(-1), neg_dst.reshape(-1)]),
                               sigmoid=False).view_as(neg_dst)
        out.update(ranking_metrics(pos_scores, neg_scores, per_positive))
    return out


@torch.no_grad()
def link_metrics(model: GAE, data: Data, x: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """:func:`score_embeddings` of :obj:`model`'s embeddings of a split,
    encoding :obj:`x` (default ``data.x``) on the split's message-passing
    edges. Non-finite embeddings raise :class:`FloatingPointError` rather
    than a score."""
    model.eval()
    z = model.encode(data.x if x is None else x, data.edge_index, getattr(data, "edge_weight", None))
    if not torch.isfinite(z).all():
        raise FloatingPointError("the embeddings became NaN or inf; lower the learning rate or lam, "
                                 "or scale the features")
    return score_embeddings(z, data, model.decoder)


@deterministic()
def train_link_prediction(
    split: Tuple[Data, Data, Data], config: LinkPredConfig, progress: bool = False
) -> LinkPredResult:
    """Train one (DAM-)GAE/VGAE full-batch on ``split = (train, val, test)``.

    Every epoch takes one Adam step on the reconstruction loss (fresh
    negatives each step; with ``config.matryoshka`` summed over the nested
    prefixes of :func:`matryoshka_prefixes`, one set of negatives for all), plus :math:`\\frac{1}{N}` KL for VGAE, plus
    :math:`\\lambda \\cdot \\mathrm{mean}(\\beta)` for DAM; then scores
    validation AUC. The model of the best validation epoch is kept, training
    stops after :obj:`config.patience` epochs without improvement, and the
    test split is scored once, at the end. Same seed, same numbers.
    """
    train_data, val_data, test_data = split
    seed_everything(config.seed)
    model = build_autoencoder(
        config.model, train_data.num_features, config.dim, hidden_channels=config.hidden,
        num_layers=config.num_layers, dropout=config.dropout, gate=config.gate,
        mask_hidden=config.mask_hidden)
    optimizer = make_optimizer(model, config.lr, config.weight_decay, config.beta_lr)

    prefixes = matryoshka_prefixes(config.dim) if config.matryoshka else [config.dim]
    pos = train_data.pos_edge_label_index

    def task_loss() -> torch.Tensor:
        z = model.encode(train_data.x, train_data.edge_index, getattr(train_data, "edge_weight", None))
        if len(prefixes) == 1:
            loss = model.recon_loss(z, pos)
        else:  # one set of negatives for every prefix
            neg = negative_sampling(pos, z.size(0))
            loss = sum(model.recon_loss(z[:, :m], pos, neg) for m in prefixes)
        if config.model == "vgae":
            loss = loss + model.kl_loss() / train_data.num_nodes
        return loss

    record = fit(model, optimizer, task_loss, lambda: link_metrics(model, val_data)["auc"],
                 config.lam, config.epochs, config.patience,
                 desc=f"{config.model} dim={config.dim} seed={config.seed}" if progress else None)
    scores = link_metrics(model, test_data)
    return LinkPredResult(
        config=config, test_auc=scores.pop("auc"), test_ap=scores.pop("ap"), test_ranking=scores, record=record,
        widths=active_widths(model), num_params=count_parameters(model),
        num_params_compact=compacted_size(model), model=model)
