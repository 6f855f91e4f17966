"""The link-prediction task every path trains through: the harness, the
estimator and ``damgraph embed``, the precomputed mini-batch mode and DDP.

:class:`LinkPredTask` holds one run's pieces, built once (the model and its
optimiser, the encoder's inputs, the negative sampler, MaskGAE's masker) and
gives :func:`~damgraph.training.fit` its loss per step and its validation
score; :func:`train_link_prediction` trains one and scores the test split.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from damgraph.compaction import compacted_size
from damgraph.config import MODEL_FAMILIES, LinkPredConfig, penalty_weight
from damgraph.encoders import Features, Graph
from damgraph.evaluation import score_embeddings, validation_score
from damgraph.gates import SizeGate, gate_widths, size_gates
from damgraph.inputs import LearnedInput, trained_modules
from damgraph.masking import make_masker, split_masked
from damgraph.models import autoencoder_class, build_autoencoder, count_parameters, make_optimizer
from damgraph.projection import random_projection
from damgraph.propagation import SparseOperator, feature_operator, gcn_adjacency, propagate_features, remember_pairs
from damgraph.runtime import check_memory, deterministic, resolve_device, seed_everything
from damgraph.splits import NegativeSampler, same_graph
from damgraph.spectral import spectral_embedding
from damgraph.training import RunResult, TrainingRecord, fit
from damgraph.walks import ContextSampler


def matryoshka_prefix(z: Tensor, size: int, decoder: str = "inner", top: bool = False) -> Tensor:
    """The first :obj:`size` columns of :obj:`z` (the last ones with
    :obj:`top`: the highest DAM gates, DAM's own order): sliced for the
    inner product, zero-padded to the full width for an MLP decoder (whose
    input size is fixed; zero columns add nothing to its first layer, so the
    decoder cut to those :obj:`size` inputs scores the block alone)."""
    if size >= z.size(1):
        return z
    block = z[:, -size:] if top else z[:, :size]
    if decoder == "inner":
        return block
    padding = z.new_zeros(z.size(0), z.size(1) - size)
    return torch.cat([padding, block] if top else [block, padding], dim=1)


def matryoshka_prefixes(dim: int) -> List[int]:
    """The nested sizes 2, 4, 8, ... below :obj:`dim`, then :obj:`dim`
    (Matryoshka representation learning, Kusupati et al., NeurIPS 2022)."""
    sizes = [2 ** i for i in range(1, dim.bit_length()) if 2 ** i < dim]
    return sizes + [dim]


#: With ``positives="walks"``, a step takes a walk from every node unless
#: that gives more than :data:`MIN_CONTEXTS` pairs and more than
#: :data:`CONTEXTS_PER_EDGE` per training edge; then walks from a random share
#: of the nodes, so that a step on a large sparse graph costs about two edge
#: steps (the 1,000,000-edge graph of docs/own-graphs.md: 4 per edge took
#: 5 min 5 s at the same validation AUC). Below the floor a walk from every
#: node: on small graphs fewer pairs lose AUC (20 x 20 grid without features:
#: 0.01-0.02 at 4 per edge; Cora and CiteSeer: 0.009-0.013 at 2).
CONTEXTS_PER_EDGE = 2
MIN_CONTEXTS = 2 ** 20


def training_memory(config: LinkPredConfig, num_nodes: int, num_edges: int, num_positives: int,
                    in_channels: int) -> Tuple[int, str]:
    """A rough estimate of the bytes one full-batch training step
    holds, and its parts in words: parameters with their gradients and Adam
    state (counted exactly, on PyTorch's meta device, so nothing is
    allocated), node activations of every layer with their gradients, the
    normalised adjacency (CSR, and its transpose for the backward pass) and
    the decoder's pair embeddings. On the graphs of ``benchmarks.scale`` it
    came to 0.8-0.95 of the measured peak memory (12.5 GiB against 13.1 GB
    at 3 million nodes) before training kept freed memory for reuse
    (:func:`~damgraph.runtime.reuse_freed_memory`), which raised the peak at
    10^6 nodes by 30%: enough to stop a request that cannot fit, not a bound."""
    with torch.device("meta"):
        params = sum(p.numel() for p in build_autoencoder(config, in_channels).parameters())
    if config.mode == "precomputed":
        num_nodes, num_edges = min(num_nodes, 4 * config.batch_size), 0
    hidden = config.hidden_width
    heads = 2 if autoencoder_class(config.model).variational else 1
    widths = [hidden] * (config.num_layers - 1) + [config.dim * heads]
    activations = 4 * 4 * num_nodes * sum(widths)  # output, activation, dropout mask and gradient
    adjacency = 2 * 12 * (num_edges + num_nodes)  # CSR index and value per entry, self-loops included
    pair_width = config.decoder_width if config.decoder == "mlp" else config.dim
    pairs = 4 * 3 * 2 * num_positives * pair_width
    weights = 4 * 4 * params
    detail = (f"{weights / 2 ** 30:.1f} GiB for {params:,} parameters with gradients and Adam state, "
              f"{(activations + adjacency + pairs) / 2 ** 30:.1f} GiB of activations")
    return weights + activations + adjacency + pairs, detail


class LinkPredTask:
    """One link-prediction run: the model :obj:`config` describes and what
    training it needs, built once.

    * :meth:`loss` (step :obj:`step` of an epoch): the reconstruction loss
      of the training positives (the training edges, or with
      ``positives="walks"`` random-walk contexts drawn at every step,
      :class:`~damgraph.walks.ContextSampler`) against as many fresh uniform negatives
      (summed over the Matryoshka prefixes with ``matryoshka``), plus
      :math:`\\frac{1}{N}` KL for VGAE; for ``maskgae`` the positives are
      the edges hidden from the encoder (:mod:`damgraph.masking`), plus the
      degree loss. In ``mode="precomputed"`` a step encodes only the nodes of
      one mini-batch of ``batch_size`` training edges and its negatives, on
      features propagated once (:func:`~damgraph.propagation.propagate_features`).
      In mode ``full`` with ``pos_batch_size``, a step encodes the whole
      graph and takes one shuffled mini-batch of the training edges (OGB's
      GNN baselines on ``ogbl-ddi`` train this way).
    * :meth:`validation_score`: the model-selection score (``val_metric``:
      validation AUC by default, or Hits@K).
    * :meth:`test_metrics`: AUC, AP, Hits@K and MRR of the test split.

    ``split = (train, val, test)``; ``val`` and ``test`` may be ``None``.
    Without node features (``train.x`` is ``None``) the task learns an
    input vector of ``config.input_width`` per node (:class:`~damgraph.inputs.LearnedInput`,
    its columns gated with ``gate_inputs``).
    :obj:`rank` and :obj:`world_size` give a data-parallel process its share
    of the positives (every ``world_size``-th edge, or mini-batch); rank 0
    draws exactly what a single process draws, and :obj:`sync_mask`, if
    given, makes every rank hide the edges rank 0 hides. The speed
    benchmark's ablations switch off :obj:`sparse_features` and
    :obj:`prebuilt_graph`.

    Where the encoder computes the same embedding in training and in
    evaluation (full-batch, no dropout, batch norm, sampling or masking, DAM
    gates or none, validation over the training edges, one process),
    :meth:`validation_score` called by :meth:`fit` encodes with gradients and
    the next :meth:`loss` reuses that forward pass unless a parameter was
    modified in place in between (:obj:`reuse_forward`): one encoding an
    epoch instead of two, the same numbers.
    """

    def __init__(self, split: Sequence[Optional[Data]], config: LinkPredConfig,
                 rank: int = 0, world_size: int = 1, sync_mask: Optional[Callable[[Tensor], None]] = None,
                 sparse_features: bool = True, prebuilt_graph: bool = True, reuse_forward: bool = True):
        device = resolve_device(config.device)
        # The caller's split stays where it is.
        self.split = tuple(copy.copy(d).to(device) if d is not None else None for d in split)
        self.config, self.device = config, device
        self.rank, self.world_size, self.sync_mask = rank, world_size, sync_mask
        self.sparse_features, self.prebuilt_graph = sparse_features, prebuilt_graph
        train = self.split[0]
        self.num_nodes = train.num_nodes
        featureless = getattr(train, "x", None) is None
        if not autoencoder_class(config.model).takes_edge_weights and getattr(train, "edge_weight", None) is not None:
            raise ValueError(f"model {config.model!r} does not use edge weights yet; drop them or use model 'gae'")
        if featureless and config.mode == "precomputed":
            raise ValueError("mode 'precomputed' propagates node features and the graph has none; "
                             "give features or use mode 'full'")

        input_dim = config.input_width
        in_channels = input_dim if featureless else train.num_features
        positives = train.pos_edge_label_index.size(1)
        #: Random-walk context pairs, the positives with ``positives="walks"``.
        self.contexts = (ContextSampler(train.edge_index, self.num_nodes, config.window,
                                        max_pairs=max(CONTEXTS_PER_EDGE * positives, MIN_CONTEXTS))
                         if config.positives == "walks" else None)
        if self.contexts is not None:
            positives = self.contexts.pairs_per_call()
        check_memory(*training_memory(config, self.num_nodes, train.edge_index.size(1), positives, in_channels),
                     device, fix="lower dim (and hidden), or use a smaller graph or mode 'precomputed'")
        seed_everything(config.seed)
        self.model = build_autoencoder(config, in_channels).to(device)
        self._inputs: Dict[int, Tuple[Features, Graph]] = {}
        start = None
        if featureless and config.inputs in ("spectral", "spectral-fixed"):
            if self.num_nodes < 3:
                raise ValueError(f"inputs '{config.inputs}' needs a graph of at least 3 nodes, got {self.num_nodes}; "
                                 "use inputs 'learned'")
            start = spectral_embedding(train.edge_index, self.num_nodes, input_dim, config.seed)
        elif featureless and config.inputs == "projection":
            adjacency = self.encoder_inputs(train)[1]  # GCN layers' prebuilt graph, reused
            if config.conv != "gcn" or not isinstance(adjacency, SparseOperator):  # or the speed benchmark's ablation
                adjacency = gcn_adjacency(train.edge_index, self.num_nodes, getattr(train, "edge_weight", None))
            start = random_projection(adjacency, input_dim, config.seed)
        self.inputs = None
        if featureless:
            self.inputs = LearnedInput.for_config(config, self.num_nodes, start).to(device)
        #: What training updates: the model, and the learned inputs when featureless.
        self.module = trained_modules(self.model, self.inputs)
        self.optimizer = make_optimizer(self.module, config.lr, config.weight_decay, config.beta_lr)
        self.prefixes = matryoshka_prefixes(config.dim) if config.matryoshka else [config.dim]
        self.train_pos = train.pos_edge_label_index
        #: The gate penalty's weight on this graph (:func:`~damgraph.config.penalty_weight`).
        self.penalty_weight = penalty_weight(config, self.train_pos.size(1))
        remember_pairs(self.train_pos)  # pairs scored at every epoch: their sorted patterns are built once
        for part in filter(None, self.split[1:]):  # the validation (and test) pairs
            remember_pairs(part.pos_edge_label_index)
            remember_pairs(part.neg_edge_label_index)
        self.negatives = NegativeSampler(train.edge_index, self.num_nodes)
        self.masker = (make_masker(self.train_pos, self.num_nodes, config.masking, config.mask_ratio,
                                   config.walk_length) if MODEL_FAMILIES[config.model].masks_edges else None)
        self._batches: List[Tensor] = []
        self._epoch = 0
        self.reuse_forward = reuse_forward and self._forward_is_deterministic()
        self._shared: Optional[Tuple[Tensor, Tuple[int, ...]]] = None  # validation's forward, parameter versions
        self._fitting = False  # validation keeps its forward pass only inside fit
        #: Training edges per step (None: all of them, one step per epoch).
        self.batch_size = config.batch_size if config.mode == "precomputed" else config.pos_batch_size
        if self.batch_size is not None:
            self.steps_per_epoch = max(-(-self.train_pos.size(1) // self.batch_size) // world_size, 1)
        else:
            self.steps_per_epoch = 1
        if rank > 0:  # each further rank its own negatives (rank 0 keeps a single process's stream)
            torch.manual_seed(config.seed * 1000 + rank)

    def _forward_is_deterministic(self) -> bool:
        """Whether a training-mode encoding of the training graph equals the
        evaluation-mode encoding that validation scores."""
        config, (train, val) = self.config, self.split[:2]
        return (config.mode == "full" and self.masker is None and not self.model.variational and config.dropout == 0
                and not config.batch_norm and all(g.same_in_training for g in size_gates(self.model))
                and self.world_size == 1
                and val is not None and self.encoder_inputs(val) is self.encoder_inputs(train))  # same graph

    def _versions(self) -> Tuple[int, ...]:
        """The in-place version counters of the trained parameters (torch's
        optimisers and :meth:`SizeGate.project_` update them in place)."""
        return tuple(p._version for p in self.module.parameters())

    # -- the encoder's inputs -------------------------------------------------
    def features(self) -> Features:
        """The node inputs of the encoder: the learned inputs, or the
        training split's features (sparse ones as a CSR operator)."""
        if self.inputs is not None:
            return self.inputs()
        return self.encoder_inputs(self.split[0])[0]

    def encoder_inputs(self, data: Data) -> Tuple[Features, Graph]:
        """``(x, graph)`` of :obj:`data` in the encoder's fastest form:
        :math:`\\hat{\\mathbf{A}}` for GCN layers
        (:func:`~damgraph.propagation.gcn_adjacency`) and sparse features as a
        CSR operator; in ``precomputed`` mode the propagated features and no
        graph. Built once per split of the task (a split passing messages
        over the training edges shares the training split's); other graphs
        are built at every call."""
        key = next((i for i, part in enumerate(self.split) if part is data), None)
        if key in self._inputs:
            return self._inputs[key]
        train = self.split[0]
        if data is not train and same_graph(train, data):  # checked once per split, then cached
            inputs = self.encoder_inputs(train)
        elif self.config.mode == "precomputed":
            inputs = (propagate_features(data, self.config.hops), None)
        else:
            x = feature_operator(data.x) if self.sparse_features and data.x is not None else data.x
            # the speed benchmark's ablation: every GCNConv normalises the edge index at every call
            graph = (self.model.encoder.prepare_graph(data.edge_index, data.num_nodes, getattr(data, "edge_weight", None))
                     if self.prebuilt_graph else data.edge_index)
            inputs = (x, graph)
        if key is not None:
            self._inputs[key] = inputs
        return inputs

    def encode(self, data: Data, chunk: int = 262144) -> Tensor:
        """Embeddings of every node with messages passed over :obj:`data`'s
        edges (the current mode of the model: call ``model.eval()`` first
        for evaluation)."""
        x, graph = self.encoder_inputs(data)
        if self.inputs is not None:
            x = self.inputs()
        if self.config.mode == "precomputed":
            return torch.cat([self.model.encode(x[i:i + chunk]) for i in range(0, x.size(0), chunk)])
        if not self.prebuilt_graph:
            return self.model.encode(x, graph, getattr(data, "edge_weight", None))
        return self.model.encode(x, graph)

    # -- training -------------------------------------------------------------
    def _share(self, pos: Tensor) -> Tensor:
        """This rank's share of :obj:`pos` (all of it in a single process)."""
        return pos if self.world_size == 1 else pos[:, self.rank::self.world_size]

    def _batch(self, step: int) -> Tensor:
        """The training positives of mini-batch :obj:`step`: the edges are
        shuffled at every epoch's first step, the same way on every rank."""
        if step == 0:
            self._epoch += 1
            order_gen = torch.Generator().manual_seed(self.config.seed * 100_003 + self._epoch)
            order = torch.randperm(self.train_pos.size(1), generator=order_gen).to(self.device)
            self._batches = list(order.split(self.batch_size))
        return self.train_pos[:, self._batches[(step * self.world_size + self.rank) % len(self._batches)]]

    def loss(self, step: int = 0) -> Tensor:
        """The training loss of step :obj:`step` of an epoch (gate penalty
        not included: :func:`~damgraph.training.fit` adds it)."""
        config, model = self.config, self.model
        masked: Optional[Tensor] = None
        if self.masker is not None:  # MaskGAE: reconstruct the edges hidden from the encoder
            hidden = self.masker()
            if self.sync_mask is not None:
                self.sync_mask(hidden)
            visible, masked = split_masked(self.train_pos, hidden)
            z = model.encode(self.features(), model.encoder.prepare_graph(visible, self.num_nodes))
            pos = self._share(masked)
            neg = self.negatives(pos.size(1))
        elif config.mode == "precomputed":  # encode the batch's nodes only
            pos = self._batch(step)
            neg = self.negatives(pos.size(1))
            nodes, inverse = torch.unique(torch.cat([pos, neg], dim=1), return_inverse=True)
            z = model.encode(self.encoder_inputs(self.split[0])[0][nodes])
            pos, neg = inverse[:, :pos.size(1)], inverse[:, pos.size(1):]
        else:
            shared, self._shared = self._shared, None
            reuse = shared is not None and shared[1] == self._versions()  # kept with gradients (validation_score)
            z = shared[0] if reuse else self.encode(self.split[0])
            if self.contexts is not None:
                pos = self._share(self.contexts())
            else:
                pos = self._share(self.train_pos) if self.batch_size is None else self._batch(step)
            neg = self.negatives(pos.size(1))
        top = getattr(model.encoder.out_gate, "top_block", False)  # DAM's nested blocks are its top gates
        # the decoder on DAM's open block alone where it reads one (its closed units are zeros): sliced, not padded
        block = top and model.decoder.reads_top_block
        width = model.encoder.out_gate.num_open if block else config.dim
        layout = "inner" if block else config.decoder
        loss = sum(model.recon_loss(matryoshka_prefix(z, min(m, width), layout, top), pos, neg)
                   for m in self.prefixes)
        # the model's own terms (VGAE's KL, MaskGAE's degree loss), after the decoder: its dropout draws first
        return loss + model.regularization_loss(z, masked, self.num_nodes)

    def validation_score(self, metric: Optional[str] = None) -> float:
        """The validation score of :obj:`metric` (default
        ``config.val_metric``, AUC unless set otherwise;
        :func:`~damgraph.evaluation.validation_score`) of the model as it
        is now."""
        keep = self.reuse_forward and self._fitting and torch.is_grad_enabled()
        if keep:  # the next step's forward pass, kept for it
            self.module.train()
            self._shared = (self.encode(self.split[0]), self._versions())
        self.module.eval()
        with torch.no_grad():
            z = self._shared[0].detach() if keep else self.encode(self.split[1])
            return validation_score(z, self.split[1], self.model.decoder, metric or self.config.val_metric)

    def fit(self, epochs: Optional[int] = None, patience: Optional[int] = None, progress: bool = False,
            loss: Optional[Callable[[int], Tensor]] = None,
            validation_score: Optional[Callable[[], float]] = None) -> TrainingRecord:
        """Train with :func:`~damgraph.training.fit` (``epochs`` and
        ``patience`` default to the config's; without a validation split
        every epoch trains and the last is kept). :obj:`loss` and
        :obj:`validation_score` replace the task's own (DDP wraps them)."""
        config = self.config
        if validation_score is None and self.split[1] is not None:
            validation_score = self.validation_score
        self._fitting = True
        try:
            return fit(self.module, self.optimizer, loss or self.loss, validation_score, self.penalty_weight,
                       epochs or config.epochs, patience or config.patience, steps_per_epoch=self.steps_per_epoch,
                       desc=f"{config.model} dim={config.dim} seed={config.seed}" if progress else None,
                       grad_clip=config.grad_clip, min_epochs=config.min_epochs, val_window=config.val_window,
                       val_tolerance=config.val_tolerance, min_delta=config.val_min_delta,
                       gate_delay=config.gate_delay, settle=config.settle,
                       rewind=config.rewind, rewind_epochs=config.rewind_epochs, rewind_gains=config.rewind_gains,
                       val_every=config.val_every,
                       clip_parts=self.parts() if config.clip_per_part else None)
        finally:
            self._fitting, self._shared = False, None  # the last validation's forward pass is not needed

    def parts(self) -> List[nn.Module]:
        """The trained parts whose gradients ``clip_per_part`` clips apart:
        the learned node inputs, the encoder and the decoder (and any other
        head of the model)."""
        return [m for m in [self.inputs, *self.model.children()] if m is not None and next(m.parameters(), None) is not None]

    @torch.no_grad()
    def test_metrics(self) -> Dict[str, float]:
        """Test-split scores (:func:`~damgraph.evaluation.score_embeddings`)
        of the model as it is now."""
        self.module.eval()
        return score_embeddings(self.encode(self.split[2]), self.split[2], self.model.decoder)


@dataclass
class LinkPredResult(RunResult):
    """One link-prediction run: test AUC, AP and ranking metrics beside what
    every run records (:class:`~damgraph.training.RunResult`)."""

    test_auc: float = 0.0
    test_ap: float = 0.0
    test_ranking: Dict[str, float] = field(default_factory=dict)
    #: The learned node inputs of a graph without features (``None`` otherwise).
    inputs: Optional[Tensor] = field(default=None, repr=False)
    #: The gate penalty's weight this graph gave (``lam`` scaled by its training edges).
    penalty_weight: float = 0.0

    @property
    def width(self) -> int:
        """Width of the embedding the selected model produces."""
        gate = self.model.encoder.out_gate
        return gate.num_open if isinstance(gate, SizeGate) else self.config.dim

    def scores(self) -> Dict[str, object]:
        return {"test_auc": self.test_auc, "test_ap": self.test_ap, "penalty_weight": self.penalty_weight,
                **{f"test_{k}": v for k, v in self.test_ranking.items()},
                f"val_{self.config.val_metric}": self.record.val_score}


@deterministic()
def train_link_prediction(
    split: Tuple[Data, Data, Data], config: LinkPredConfig, progress: bool = False
) -> LinkPredResult:
    """Train one autoencoder on ``split = (train, val, test)``.

    Every epoch takes Adam steps on :meth:`LinkPredTask.loss` plus
    :math:`\\lambda \\cdot \\mathrm{mean}(\\beta)` for DAM (one full-batch
    step, or one per mini-batch in ``precomputed`` mode), then scores
    validation AUC. The model of the best validation epoch is kept,
    training stops after :obj:`config.patience` epochs without improvement,
    and the test split is scored once, at the end. Same seed, same numbers.
    """
    task = LinkPredTask(split, config)
    record = task.fit(progress=progress)
    scores = task.test_metrics()
    model = task.model
    # Learned node inputs count as parameters (as OGB's leaderboards count node embeddings), their kept columns
    # after compaction. Fixed inputs are a buffer, not a parameter.
    inputs = task.features().detach() if task.inputs is not None else None
    table_widths = {f"inputs.{k}": v for k, v in gate_widths(task.inputs).items()} if task.inputs is not None else {}
    return LinkPredResult(
        config=config, test_auc=scores.pop("auc"), test_ap=scores.pop("ap"), test_ranking=scores, record=record,
        widths={**table_widths, **gate_widths(model)}, num_params=count_parameters(task.module),
        num_params_compact=compacted_size(task.module), model=model, inputs=inputs,
        penalty_weight=task.penalty_weight)
