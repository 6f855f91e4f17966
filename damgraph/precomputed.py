"""Link prediction on graphs too large for full-batch training: propagate
the features once with sparse products (SIGN, Frasca et al., 2020; SGC, Wu
et al., ICML 2019), then train an MLP encoder on mini-batches of edges.
Memory is the propagated features plus one mini-batch, whatever the number
of steps, and no neighbour sampler (pyg-lib, torch-sparse) is needed."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from damgraph.encoders import _gate
from damgraph.linkpred import LinkPredConfig, NegativeSampler, same_graph, resolve_device
from damgraph.mask import SizeGate, gate_penalty
from damgraph.metrics import roc_auc
from damgraph.models import make_optimizer
from damgraph.propagation import gcn_adjacency
from damgraph.training import TrainingRecord, deterministic, seed_everything, snapshot


@torch.no_grad()
def propagate_features(data: Data, hops: int = 2) -> Tensor:
    """``[X, ÂX, ..., Â^K X]`` side by side (``[N, (K+1) F]``), with
    :math:`\\hat{\\mathbf{A}}` the GCN-normalised adjacency of
    ``data.edge_index``: K sparse products, once."""
    adj = gcn_adjacency(data.edge_index, data.num_nodes, getattr(data, "edge_weight", None))
    blocks = [data.x]
    for _ in range(hops):
        blocks.append(adj @ blocks[-1])
    return torch.cat(blocks, dim=1)


class SIGNEncoder(nn.Module):
    r"""The SIGN encoder on precomputed features: one linear map per hop,
    concatenated, ReLU, then a linear map to the embedding, behind a size
    gate (DAM by default):

    .. math::
        \mathbf{Z} = g \odot \Big(\mathrm{ReLU}\big(\big\Vert_{k=0}^{K}
        \hat{\mathbf{A}}^k \mathbf{X} \mathbf{W}_k\big)\,\mathbf{W}_{\mathrm{out}}\Big).

    Args:
        in_channels (int): Feature size :math:`F` of :math:`\mathbf{X}`.
        out_channels (int): Embedding size (the starting width when gated).
        hops (int): :math:`K`. (default: :obj:`2`)
        hidden_channels (int, optional): Width of each hop's map; defaults to
            :obj:`2 * out_channels`.
        gate (str, optional): ``"dam"``, ``"l1"``, ``"l0"`` or ``None``.
    """

    def __init__(self, in_channels: int, out_channels: int, hops: int = 2,
                 hidden_channels: Optional[int] = None, gate: Optional[str] = "dam"):
        super().__init__()
        hidden_channels = hidden_channels or 2 * out_channels
        self.in_channels, self.hops = in_channels, hops
        self.hop_lins = nn.ModuleList(nn.Linear(in_channels, hidden_channels) for _ in range(hops + 1))
        self.lin_out = nn.Linear((hops + 1) * hidden_channels, out_channels)
        self.out_mask = _gate(out_channels, gate is not None, gate or "dam", 1.0)

    def forward(self, features: Tensor) -> Tensor:
        """Embeddings of the rows of :func:`propagate_features`."""
        blocks = features.split(self.in_channels, dim=1)
        h = torch.cat([lin(b) for lin, b in zip(self.hop_lins, blocks)], dim=1)
        return self.out_mask(self.lin_out(F.relu(h)))


@dataclass
class PrecomputedResult:
    config: LinkPredConfig
    test_auc: float
    val_auc: float
    active_dim: int
    record: TrainingRecord
    precompute_s: float
    model: SIGNEncoder


@torch.no_grad()
def embed(model: SIGNEncoder, features: Tensor, chunk: int = 262144) -> Tensor:
    """Embeddings of every node, in chunks of rows."""
    model.eval()
    return torch.cat([model(features[i:i + chunk]) for i in range(0, features.size(0), chunk)])


def _auc(z: Tensor, data: Data) -> float:
    pos, neg = data.pos_edge_label_index, data.neg_edge_label_index
    return roc_auc((z[pos[0]] * z[pos[1]]).sum(-1), (z[neg[0]] * z[neg[1]]).sum(-1))


@deterministic()
def train_link_prediction_precomputed(
    split: Tuple[Data, Data, Data], config: LinkPredConfig, hops: int = 2, batch_size: int = 65536,
    features: Optional[Tensor] = None, rank: int = 0, world_size: int = 1,
    wrap: Optional[Callable[[nn.Module], nn.Module]] = None,
    sync_score: Optional[Callable[[float], float]] = None,
) -> PrecomputedResult:
    """Train a :class:`SIGNEncoder` on mini-batches of training edges, each
    against as many uniform negatives (:class:`NegativeSampler`), with the
    inner-product decoder's binary cross-entropy (as GAE). One epoch is one
    pass over the training edges; validation AUC after each, the best epoch
    kept, patience as :func:`~damgraph.linkpred.train_link_prediction`.

    Features are propagated over the training split's message-passing edges
    (pass :obj:`features` to reuse them). Test AUC is scored with
    embeddings propagated over the test split's message-passing edges.
    With ``world_size > 1`` this rank trains on every ``world_size``-th
    batch only (the batch order is the same on every rank), :obj:`wrap`
    (e.g. ``DistributedDataParallel``) wraps the encoder for the gradient
    all-reduce, and :obj:`sync_score` makes every rank take rank 0's
    validation score.
    """
    train_data, val_data, test_data = split
    device = resolve_device(config.device)
    start = time.perf_counter()
    feats = propagate_features(train_data, hops) if features is None else features
    feats = feats.to(device)
    precompute_s = time.perf_counter() - start

    seed_everything(config.seed)
    model = SIGNEncoder(train_data.num_features, config.dim, hops, config.hidden, config.gate).to(device)
    optimizer = make_optimizer(model, config.lr, config.weight_decay, config.beta_lr)
    forward = wrap(model) if wrap is not None else model
    torch.manual_seed(config.seed * 1000 + rank)  # each rank its own negatives and batch order
    pos_all = train_data.pos_edge_label_index.to(device)
    negatives = NegativeSampler(train_data.edge_index.to(device), train_data.num_nodes)
    gates = {name: m for name, m in model.named_modules() if isinstance(m, SizeGate)}
    val_data = copy.copy(val_data).to(device)  # the caller's split stays where it is

    best, best_epoch, best_state = -float("inf"), 0, None
    trajectory, losses = [], []
    t0 = time.perf_counter()
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order_gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)  # same on every rank
        order = torch.randperm(pos_all.size(1), generator=order_gen).to(device)
        batches = order.split(batch_size)
        # Every rank takes the same number of steps (DDP all-reduces at each).
        steps = len(batches) // world_size if world_size > 1 else len(batches)
        total = 0.0
        for step in range(max(steps, 1)):
            idx = batches[(step * world_size + rank) % len(batches)]
            pos = pos_all[:, idx]
            neg = negatives(idx.numel())
            nodes, inverse = torch.unique(torch.cat([pos, neg], dim=1), return_inverse=True)
            z = forward(feats[nodes])
            src, dst = inverse[0], inverse[1]
            logits = (z[src] * z[dst]).sum(-1)
            labels = torch.cat([torch.ones(idx.numel(), device=device), torch.zeros(idx.numel(), device=device)])
            loss = F.binary_cross_entropy_with_logits(logits, labels) * 2  # GAE's pos mean + neg mean
            if gates:
                loss = loss + config.lam * gate_penalty(list(gates.values()))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / max(steps, 1))
        trajectory.append({name: g.num_active for name, g in gates.items()})
        score = _auc(embed(model, feats), val_data)
        if sync_score is not None:
            score = sync_score(score)
        if score > best:
            best, best_epoch = score, epoch
            best_state = snapshot(model)
        elif epoch - best_epoch >= config.patience:
            break
    train_s = time.perf_counter() - t0
    model.load_state_dict(best_state)
    record = TrainingRecord(best, best_epoch, epoch, train_s, trajectory, losses)

    test_feats = feats if same_graph(train_data, test_data) else propagate_features(test_data, hops).to(device)
    test_auc = _auc(embed(model, test_feats), copy.copy(test_data).to(device))
    gate = model.out_mask
    width = gate.num_active if isinstance(gate, SizeGate) else config.dim
    return PrecomputedResult(config, test_auc, best, width, record, precompute_s, model)
