"""Link prediction with (DAM-)GAE/VGAE: the standard split, training with
model selection on validation AUC, and a record per run."""
from __future__ import annotations

import copy
import random
from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn import GAE
from torch_geometric.transforms import RandomLinkSplit

from damgraph.compact import compacted_size
from damgraph.encoders import Features, Graph
from damgraph.mask import SizeGate, active_widths
from damgraph.metrics import ranking_metrics, roc_auc
from damgraph.masking import make_masker
from damgraph.models import InnerProductDecoder, build_autoencoder, count_parameters, make_optimizer
from damgraph.propagation import feature_operator, gcn_adjacency
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
    unfiltered, as OGB's ``ogbl-citation2``; ``mrr_negatives=0`` for none,
    which large graphs need). The split depends on
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
            if test_ratio > 0 and mrr_negatives > 0:
                test.mrr_neg_dst = torch.randint(
                    data.num_nodes, (test.pos_edge_label_index.size(1), mrr_negatives))
            return train, val, test
    finally:
        random.setstate(py_state)


def resolve_device(device: str) -> torch.device:
    """:obj:`device` as a :class:`torch.device`, or a one-line
    :class:`ValueError` naming the fix when it is not available here."""
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda' (or 'cuda:N')") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but no GPU is available here; use device 'cpu'")
    return dev


class NegativeSampler:
    """Uniform random node pairs that are neither self-loops nor edges of
    :obj:`edge_index` (in either direction): the negatives of the GAE
    reconstruction loss. PyG's :func:`~torch_geometric.utils.negative_sampling`
    draws the same distribution; this one builds its edge lookup once (a
    bit table of all pairs for graphs up to :attr:`TABLE_NODES` nodes, else
    sorted pair keys), so a step costs one lookup per pair; rejected pairs
    (about 2|E|/N^2 of them) are drawn again."""

    TABLE_NODES = 4096

    def __init__(self, edge_index: Tensor, num_nodes: int, max_rounds: int = 20):
        self.num_nodes = int(num_nodes)
        self.max_rounds = max_rounds
        src, dst = edge_index
        keys = torch.cat([src * num_nodes + dst, dst * num_nodes + src])
        self.table: Optional[Tensor] = None
        if self.num_nodes <= self.TABLE_NODES:
            self.table = torch.zeros(self.num_nodes * self.num_nodes, dtype=torch.bool, device=edge_index.device)
            self.table[keys] = True
            self.table[torch.arange(self.num_nodes, device=edge_index.device) * (self.num_nodes + 1)] = True
        else:
            self.keys = torch.unique(keys)  # sorted

    def _rejected(self, pairs: Tensor) -> Tensor:
        keys = pairs[0] * self.num_nodes + pairs[1]
        if self.table is not None:
            return self.table[keys]
        if self.keys.numel() == 0:
            return pairs[0] == pairs[1]
        # Sorted queries walk the sorted keys in order: 3x faster than random probes.
        sorted_keys, order = keys.sort()
        at = torch.searchsorted(self.keys, sorted_keys).clamp(max=self.keys.numel() - 1)
        hit = torch.empty_like(keys, dtype=torch.bool)
        hit[order] = self.keys[at] == sorted_keys
        return hit | (pairs[0] == pairs[1])

    def __call__(self, num_samples: int) -> Tensor:
        device = self.table.device if self.table is not None else self.keys.device
        pairs = torch.randint(self.num_nodes, (2, num_samples), device=device)
        bad = self._rejected(pairs).nonzero().flatten()
        for _ in range(self.max_rounds):  # redraw the rejected pairs only, and check only those
            if bad.numel() == 0:
                break
            pairs[:, bad] = torch.randint(self.num_nodes, (2, bad.numel()), device=device)
            bad = bad[self._rejected(pairs[:, bad])]
        return pairs


def encoder_inputs(data: Data, sparse_features: bool = True, encoder: Optional[torch.nn.Module] = None
                   ) -> Tuple[Features, Graph]:
    """``(x, graph)`` of a split for :meth:`GNNEncoder.forward` in their
    fastest form: the graph of the split's message-passing edges as
    :obj:`encoder`'s :meth:`~damgraph.GNNEncoder.prepare_graph` gives it
    (by default, and for GCN layers, :math:`\\hat{\\mathbf{A}}` built once by
    :func:`~damgraph.propagation.gcn_adjacency`) and, with
    :obj:`sparse_features`, sparse features as a CSR operator."""
    x = data.x
    if sparse_features and x is not None:
        x = feature_operator(x)
    weight = getattr(data, "edge_weight", None)
    if encoder is not None and hasattr(encoder, "prepare_graph"):
        return x, encoder.prepare_graph(data.edge_index, data.num_nodes, weight)
    return x, gcn_adjacency(data.edge_index, data.num_nodes, weight)


@dataclass
class LinkPredConfig:
    """Settings of one link-prediction run.

    ``gate`` is ``"dam"``, a baseline gate (``"l1"``, ``"l0"``) or ``None``
    for the plain model; ``dim`` is the embedding size, or the starting width
    when gated. ``lam`` weighs the gate penalty (for DAM
    :math:`\\lambda \\cdot \\mathrm{mean}(\\beta)`); ``beta_lr`` is the
    learning rate of the gates' own parameter group. ``device`` is where
    the model and the data live (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    ``model="maskgae"`` trains the GAE on a masked-edge pretext task (Li et
    al., KDD 2023): each step hides training edges, encodes on the rest and
    reconstructs the hidden ones: with ``masking="edge"`` a fraction
    ``mask_ratio`` of the edges, with ``masking="path"`` the edges of random
    walks of ``walk_length`` steps from ``mask_ratio`` of the nodes
    (:mod:`damgraph.masking`); ``degree_weight > 0`` adds MaskGAE's degree
    regression (:class:`~damgraph.models.DegreeDecoder`) with that weight.
    ``decoder`` is ``"inner"`` (inner product) or ``"mlp"``
    (:class:`~damgraph.models.MLPEdgeDecoder`, ``decoder_hidden`` units,
    ``decoder_dropout``). ``conv`` (``"gcn"``, ``"sage"``, ``"gat"``),
    ``batch_norm`` and ``activation`` shape the encoder
    (:class:`~damgraph.GNNEncoder`); ``grad_clip > 0`` clips the weights'
    gradient norm.
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
    device: str = "cpu"
    mask_ratio: float = 0.7
    decoder: str = "inner"
    conv: str = "gcn"
    batch_norm: bool = False
    activation: str = "relu"
    masking: str = "edge"
    walk_length: int = 3
    degree_weight: float = 0.0
    decoder_hidden: int = 64
    decoder_dropout: float = 0.0
    grad_clip: float = 0.0


#: Training settings per model where they differ from :class:`LinkPredConfig`'s
#: defaults (the GAE's). ``maskgae``'s follow MaskGAE (Li et al., KDD 2023:
#: path masking, MLP decoder, degree head, batch norm, ELU, gradient clipping)
#: and were chosen on validation AUC only, on Cora and CiteSeer seeds 0-1 at 128
#: dimensions; the candidates' scores are in docs/results/maskgae-selection.
MODEL_SETTINGS: Dict[str, Dict[str, object]] = {
    "maskgae": dict(decoder="mlp", decoder_hidden=32, decoder_dropout=0.3, masking="path", mask_ratio=0.7,
                    degree_weight=2e-3, dropout=0.5, hidden=128, batch_norm=True, activation="elu",
                    weight_decay=5e-5, grad_clip=1.0, epochs=800, patience=300),
}


def model_config(model: str = "gae", **settings) -> LinkPredConfig:
    """A :class:`LinkPredConfig` with :obj:`model`'s settings
    (:data:`MODEL_SETTINGS`), :obj:`settings` taking precedence."""
    return LinkPredConfig(model=model, **{**MODEL_SETTINGS.get(model, {}), **settings})


def autoencoder(config: LinkPredConfig, in_channels: int) -> GAE:
    """The (untrained) model :obj:`config` describes."""
    return build_autoencoder(
        config.model, in_channels, config.dim, hidden_channels=config.hidden, num_layers=config.num_layers,
        dropout=config.dropout, gate=config.gate, mask_hidden=config.mask_hidden, decoder=config.decoder,
        conv=config.conv, batch_norm=config.batch_norm, activation=config.activation,
        decoder_hidden=config.decoder_hidden, decoder_dropout=config.decoder_dropout,
        degree_decoder=config.degree_weight > 0)


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


def matryoshka_prefix(z: Tensor, size: int, decoder: str = "inner") -> Tensor:
    """The first :obj:`size` columns of :obj:`z`: sliced for the inner
    product, zero-padded to the full width for an MLP decoder (whose input
    size is fixed; zero columns add nothing to its first layer, so the
    decoder cut to its first :obj:`size` inputs scores the prefix alone)."""
    if size >= z.size(1):
        return z
    if decoder == "inner":
        return z[:, :size]
    return torch.cat([z[:, :size], z.new_zeros(z.size(0), z.size(1) - size)], dim=1)


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


NON_FINITE = "the embeddings became NaN or inf; lower the learning rate or lam, or scale the features"


@torch.no_grad()
def _encode_checked(model: GAE, data: Data, x: Optional[Features], graph: Optional[Graph]) -> Tensor:
    model.eval()
    if graph is None:
        z = model.encode(data.x if x is None else x, data.edge_index, getattr(data, "edge_weight", None))
    else:
        z = model.encode(data.x if x is None else x, graph)
    if not torch.isfinite(z).all():
        raise FloatingPointError(NON_FINITE)
    return z


@torch.no_grad()
def link_metrics(model: GAE, data: Data, x: Optional[Features] = None,
                 graph: Optional[Graph] = None) -> Dict[str, float]:
    """:func:`score_embeddings` of :obj:`model`'s embeddings of a split,
    encoding :obj:`x` (default ``data.x``) on :obj:`graph` (default the
    split's message-passing edges). Non-finite embeddings raise
    :class:`FloatingPointError` rather than a score."""
    return score_embeddings(_encode_checked(model, data, x, graph), data, model.decoder)


@torch.no_grad()
def validation_auc(model: GAE, data: Data, z: Tensor) -> float:
    """The AUC of :func:`link_metrics` alone, of embeddings :obj:`z`,
    computed in torch (:func:`~damgraph.metrics.roc_auc`): the per-epoch
    model-selection score. Non-finite embeddings raise
    :class:`FloatingPointError`."""
    if not torch.isfinite(z).all():
        raise FloatingPointError(NON_FINITE)
    pos = model.decoder(z, data.pos_edge_label_index, sigmoid=True)
    neg = model.decoder(z, data.neg_edge_label_index, sigmoid=True)
    return roc_auc(pos, neg)


def same_graph(a: Data, b: Data) -> bool:
    """Whether two splits pass messages over the same (weighted) edges."""
    wa, wb = getattr(a, "edge_weight", None), getattr(b, "edge_weight", None)
    return (a.edge_index.shape == b.edge_index.shape and torch.equal(a.edge_index, b.edge_index)
            and (wa is None) == (wb is None) and (wa is None or torch.equal(wa, wb)))


class LinkPredTraining:
    """The pieces of one link-prediction run, built once: the model and its
    optimiser, the training graph's :math:`\\hat{\\mathbf{A}}` and features
    (:func:`encoder_inputs`, shared with validation, whose message-passing
    edges are the training edges), the negative sampler, and the two
    closures :func:`~damgraph.training.fit` calls every epoch. The speed
    benchmark times :meth:`fit` in blocks of epochs."""

    def __init__(self, split: Tuple[Data, Data, Data], config: LinkPredConfig,
                 sparse_features: bool = True, prebuilt_graph: bool = True):
        device = resolve_device(config.device)
        split = tuple(copy.copy(d).to(device) for d in split)  # the caller's split stays where it is
        self.split, self.config = split, config
        train_data, val_data, _ = split
        if config.model == "maskgae":
            if not 0.0 < config.mask_ratio < 1.0:
                raise ValueError(f"mask_ratio must be in (0, 1), got {config.mask_ratio}")
            if getattr(train_data, "edge_weight", None) is not None:
                raise ValueError("model 'maskgae' does not use edge weights yet; drop them or use model 'gae'")
        elif config.degree_weight > 0:
            raise ValueError("degree_weight needs model 'maskgae' (it regresses the masked degrees)")
        seed_everything(config.seed)
        self.model = autoencoder(config, train_data.num_features).to(device)
        self.optimizer = make_optimizer(self.model, config.lr, config.weight_decay, config.beta_lr)
        self.prefixes = matryoshka_prefixes(config.dim) if config.matryoshka else [config.dim]
        # The encoder's arguments for the training and the validation split.
        # Validation passes messages over the training edges (RandomLinkSplit).
        encoder = self.model.encoder
        if prebuilt_graph:
            self.train_inputs = encoder_inputs(train_data, sparse_features, encoder)
            same = same_graph(train_data, val_data)
            self.val_inputs = self.train_inputs if same else encoder_inputs(val_data, sparse_features, encoder)
        else:  # every GCNConv normalises the edge index itself, at every call (a benchmarks.speed ablation)
            self.train_inputs, self.val_inputs = (
                (feature_operator(d.x) if sparse_features else d.x, d.edge_index, getattr(d, "edge_weight", None))
                for d in (train_data, val_data))
        self.negatives = NegativeSampler(train_data.edge_index, train_data.num_nodes)
        self.masker = (make_masker(train_data.pos_edge_label_index, train_data.num_nodes, config.masking,
                                   config.mask_ratio, config.walk_length) if config.model == "maskgae" else None)

    def task_loss(self) -> Tensor:
        """Reconstruction loss of the training positives (for ``maskgae`` the
        hidden ones, :meth:`_masked_step`) against as many fresh negatives
        (summed over the Matryoshka prefixes, one set of negatives for all),
        plus :math:`\\frac{1}{N}` KL for VGAE."""
        train_data = self.split[0]
        model = self.model
        pos = train_data.pos_edge_label_index
        if self.config.model == "maskgae":
            z, pos = self._masked_step()
        else:
            z = model.encode(*self.train_inputs)
        neg = self.negatives(pos.size(1))
        loss = sum(model.recon_loss(matryoshka_prefix(z, m, self.config.decoder), pos, neg) for m in self.prefixes)
        if self.config.model == "vgae":
            loss = loss + model.kl_loss() / train_data.num_nodes
        if self.config.degree_weight > 0:
            loss = loss + self.config.degree_weight * model.degree_loss(z, pos)
        return loss

    def _masked_step(self) -> Tuple[Tensor, Tensor]:
        """MaskGAE's step: hide training edges (:mod:`damgraph.masking`),
        encode on the visible ones (their graph rebuilt) and return the
        embeddings with the hidden edges, the positives to reconstruct."""
        visible, hidden = self.masker()
        graph = self.model.encoder.prepare_graph(visible, self.split[0].num_nodes)
        return self.model.encode(self.train_inputs[0], graph), hidden

    def val_score(self) -> float:
        """Validation AUC (:func:`validation_auc`)."""
        model, val_data = self.model, self.split[1]
        model.eval()
        with torch.no_grad():
            z = model.encode(*self.val_inputs)
        return validation_auc(model, val_data, z)

    def fit(self, epochs: Optional[int] = None, patience: Optional[int] = None, progress: bool = False) -> TrainingRecord:
        config = self.config
        return fit(self.model, self.optimizer, self.task_loss, self.val_score, config.lam,
                   epochs or config.epochs, patience or config.patience,
                   desc=f"{config.model} dim={config.dim} seed={config.seed}" if progress else None,
                   grad_clip=config.grad_clip)


@deterministic()
def train_link_prediction(
    split: Tuple[Data, Data, Data], config: LinkPredConfig, progress: bool = False
) -> LinkPredResult:
    """Train one (DAM-)GAE/VGAE full-batch on ``split = (train, val, test)``.

    Every epoch takes one Adam step on the reconstruction loss
    (:meth:`LinkPredTraining.task_loss`) plus :math:`\\lambda \\cdot
    \\mathrm{mean}(\\beta)` for DAM, then scores validation AUC. The model
    of the best validation epoch is kept, training stops after
    :obj:`config.patience` epochs without improvement, and the test split is
    scored once, at the end. Same seed, same numbers.
    """
    training = LinkPredTraining(split, config)
    record = training.fit(progress=progress)
    model = training.model
    test_data = training.split[2]
    scores = link_metrics(model, test_data, *encoder_inputs(test_data, encoder=model.encoder))
    return LinkPredResult(
        config=config, test_auc=scores.pop("auc"), test_ap=scores.pop("ap"), test_ranking=scores, record=record,
        widths=active_widths(model), num_params=count_parameters(model),
        num_params_compact=compacted_size(model), model=model)
