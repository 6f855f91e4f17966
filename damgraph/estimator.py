"""``DAMEmbedding``: compact node embeddings of any graph, scikit-learn style."""
from __future__ import annotations

import copy
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, List, Union

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GAE

from damgraph.compact import compact
from damgraph.graphs import GraphInputError, prepare_graph
from damgraph.io import _jsonable, load_checkpoint, save_checkpoint, versions
from damgraph.encoders import Features
from damgraph.linkpred import NegativeSampler, autoencoder, encoder_inputs, model_config, split_edges, validation_auc
from damgraph.masking import make_masker
from damgraph.mask import SizeGate
from damgraph.models import MODELS, make_optimizer
from damgraph.training import deterministic, fit, seed_everything

# The smallest graph the validation split can serve: it needs at least one
# held-out edge and enough training edges left to learn from.
MIN_EDGES_FOR_VALIDATION = 20


class LearnedInput(nn.Module):
    """A trainable input vector per node, for graphs without features (the
    GCN's first layer then acts on learned node embeddings)."""

    def __init__(self, num_nodes: int, channels: int):
        super().__init__()
        self.x = nn.Parameter(torch.empty(num_nodes, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.x)

    def forward(self) -> Tensor:
        return self.x


def _bundle(net: GAE, inputs: "LearnedInput | None") -> nn.ModuleDict:
    """The trained modules as one (the learned inputs only when featureless)."""
    return nn.ModuleDict({"net": net, **({"inputs": inputs} if inputs is not None else {})})


class DAMEmbedding(BaseEstimator):
    """Compact node embeddings of a graph with a DAM-gated GAE or VGAE.

    Follows scikit-learn's conventions: :meth:`__init__` only stores its
    arguments, :meth:`fit` validates its input and returns ``self``, and what
    was learned lives in attributes with a trailing underscore.

    Args:
        dim (int): Starting embedding width; DAM learns how many to keep.
        model (str): ``"gae"``, ``"vgae"`` or ``"maskgae"`` (masked-edge
            pretext task with MaskGAE's settings,
            :data:`damgraph.linkpred.MODEL_SETTINGS`; undirected graphs only).
        lam (float): DAM penalty weight :math:`\\lambda`.
        epochs (int): Most training epochs.
        patience (int): Epochs without a better validation AUC before stopping.
        lr (float): Adam learning rate of the weights.
        beta_lr (float): Learning rate of the DAM betas.
        val_fraction (float): Share of edges held out to select the best
            epoch and report ``val_auc_``; 0 trains all epochs on every edge.
        input_dim (int): Width of the learned node inputs used when the graph
            has no features.
        directed (bool): Keep edge directions instead of symmetrising.
        seed (int): Seed of every random choice.
        device (str): ``"cpu"`` or ``"cuda"``.
        verbose (bool): Show a progress bar.

    Attributes:
        embedding_ (numpy.ndarray): ``n x k`` embeddings, ``k = n_active_``.
        node_ids_ (list): The node id of each row of ``embedding_``.
        n_active_ (int): Learned width.
        val_auc_ (float or None): Validation AUC of the kept epoch.
        history_ (list of dict): Loss and active width per epoch.
        model_ (torch_geometric.nn.GAE): The compacted model.
        graph_report_ (dict): Self-loops, duplicates and isolated nodes found.
    """

    def __init__(self, dim: int = 128, model: str = "gae", lam: float = 0.03, epochs: int = 400,
                 patience: int = 100, lr: float = 0.01, beta_lr: float = 0.2, val_fraction: float = 0.05,
                 input_dim: int = 64, directed: bool = False, seed: int = 0, device: str = "cpu",
                 verbose: bool = False):
        self.dim = dim
        self.model = model
        self.lam = lam
        self.epochs = epochs
        self.patience = patience
        self.lr = lr
        self.beta_lr = beta_lr
        self.val_fraction = val_fraction
        self.input_dim = input_dim
        self.directed = directed
        self.seed = seed
        self.device = device
        self.verbose = verbose

    def _validate(self) -> None:
        if int(self.dim) != self.dim or self.dim < 1:
            raise ValueError(f"dim must be a positive integer, got {self.dim!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.model == "maskgae" and self.directed:
            raise ValueError("model 'maskgae' masks undirected edges; use directed=False or model 'gae'")
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {self.lam}")
        if self.epochs < 1 or self.patience < 1:
            raise ValueError("epochs and patience must be >= 1")
        if not 0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no GPU is available; use device='cpu'")

    @deterministic()
    def fit(self, graph: Any, features: Any = None) -> "DAMEmbedding":
        """Learn embeddings of :obj:`graph` (a networkx graph, scipy sparse
        matrix, PyG ``Data``, ``edge_index`` tensor or edge-list path)."""
        self._validate()
        prepared = prepare_graph(graph, features, directed=self.directed)
        data = prepared.data
        if data.edge_index.size(1) == 0:
            raise GraphInputError("the graph has no edges (after removing self-loops); nothing to learn from")
        if self.model == "maskgae" and getattr(data, "edge_weight", None) is not None:
            raise GraphInputError("model 'maskgae' does not use edge weights yet; give the graph without "
                                  "weights or use model 'gae'")
        n_pairs = prepared.num_edges
        need = max(MIN_EDGES_FOR_VALIDATION, int(np.ceil(1 / self.val_fraction))) if self.val_fraction > 0 else 0
        if n_pairs < need:
            raise GraphInputError(
                f"the graph has {n_pairs} edge(s), too few for a {self.val_fraction:.0%} validation split "
                f"(at least {need} needed); pass val_fraction=0 to train without validation")

        seed_everything(self.seed)
        device = torch.device(self.device)
        featureless = getattr(data, "x", None) is None
        in_channels = self.input_dim if featureless else data.num_features
        config = model_config(self.model, dim=self.dim)
        net = autoencoder(config, in_channels)
        inputs = LearnedInput(prepared.num_nodes, self.input_dim) if featureless else None
        modules = _bundle(net, inputs).to(device)
        optimizer = make_optimizer(modules, self.lr, config.weight_decay, self.beta_lr)

        train, val = self._split(data)
        train, val = train.to(device), (val.to(device) if val is not None else None)
        # Built once: the normalised adjacency (validation passes messages over the
        # training edges), sparse features, the negative sampler's edge lookup.
        x_train, graph = encoder_inputs(train, encoder=net.encoder)
        negatives = NegativeSampler(train.edge_index, train.num_nodes)
        pos = train.pos_edge_label_index
        masker = (make_masker(pos, train.num_nodes, config.masking, config.mask_ratio, config.walk_length)
                  if config.model == "maskgae" else None)

        def x_in() -> Features:
            return inputs() if inputs is not None else x_train

        def task_loss() -> Tensor:
            if self.model == "maskgae":  # reconstruct hidden edges from the visible ones
                visible, hidden = masker()
                z = net.encode(x_in(), net.encoder.prepare_graph(visible, train.num_nodes))
                return (net.recon_loss(z, hidden, negatives(hidden.size(1)))
                        + config.degree_weight * net.degree_loss(z, hidden))
            z = net.encode(x_in(), graph)
            loss = net.recon_loss(z, pos, negatives(pos.size(1)))
            if self.model == "vgae":
                loss = loss + net.kl_loss() / prepared.num_nodes
            return loss

        def val_score() -> float:
            net.eval()
            with torch.no_grad():
                z = net.encode(x_in(), graph)
            return validation_auc(net, val, z)

        record = fit(modules, optimizer, task_loss, val_score if val is not None else None,
                     self.lam, self.epochs, self.patience,
                     desc="embedding" if self.verbose else None, grad_clip=config.grad_clip)
        gate = net.encoder.out_mask
        if isinstance(gate, SizeGate) and gate.num_active == 0:
            raise ValueError(f"lam={self.lam} closed every dimension; try a smaller lam (e.g. {self.lam / 10:g})")

        self.gated_model_ = net.eval()
        self.model_ = compact(net).eval()
        self.inputs_ = inputs
        self.embedding_ = self._encode(self.model_, data)
        self.node_ids_ = list(prepared.node_ids)
        self.n_active_ = int(self.embedding_.shape[1])
        self.val_auc_ = record.val_score
        self.history_ = [{"loss": loss, "active": widths["net.encoder.out_mask"]}
                         for loss, widths in zip(record.losses, record.width_trajectory)]
        self.best_epoch_ = record.best_epoch
        self.graph_report_ = dict(prepared.report)
        return self

    def fit_transform(self, graph: Any, features: Any = None) -> np.ndarray:
        return self.fit(graph, features).embedding_

    @deterministic()
    @torch.no_grad()
    def _encode(self, net: GAE, data: Data) -> np.ndarray:
        device = torch.device(self.device)
        net = net.to(device).eval()
        data = data.to(device)
        x = self.inputs_().to(device) if self.inputs_ is not None else data.x
        return net.encode(x, data.edge_index, getattr(data, "edge_weight", None)).cpu().numpy()

    def transform(self, graph: Any, features: Any = None) -> np.ndarray:
        """Embeddings of :obj:`graph` by the fitted (compacted) model. A
        model fitted without features embeds only the graph it learned its
        node inputs on (same nodes, same order)."""
        model = getattr(self, "model_", None)
        if model is None:
            raise ValueError("this DAMEmbedding is not fitted yet; call fit() or load() first")
        prepared = prepare_graph(graph, features, directed=self.directed)
        if self.inputs_ is not None and prepared.node_ids != self.node_ids_:
            raise GraphInputError("this model learned inputs for the nodes of its training graph; "
                                  "give that graph (same node ids), or fit with features")
        return self._encode(model, prepared.data)

    def save(self, path: Union[str, Path], compacted: bool = True) -> List[Path]:
        """Save the compacted model (or, with ``compacted=False``, the gated
        one) as a weights file plus ``<path>.json``; see :meth:`load`."""
        if getattr(self, "model_", None) is None:
            raise ValueError("this DAMEmbedding is not fitted yet; nothing to save")
        net = self.model_ if compacted else self.gated_model_
        modules = _bundle(net, self.inputs_)
        config = {"params": self.get_params(), "compacted": compacted, "n_active": self.n_active_,
                  "in_channels": net.encoder.in_channels, "num_nodes": len(self.node_ids_),
                  "node_ids": [_jsonable(i) for i in self.node_ids_], "val_auc": self.val_auc_,
                  "versions": versions()}
        return save_checkpoint(path, modules.state_dict(), config)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "DAMEmbedding":
        """A fitted estimator from :meth:`save`'s files (weights only)."""
        state, config = load_checkpoint(path)
        est = cls(**config["params"])
        width = config["n_active"] if config["compacted"] else est.dim
        base = model_config(est.model, dim=est.dim)
        net = autoencoder(replace(base, dim=width, hidden=base.hidden or 2 * est.dim,
                                  gate=None if config["compacted"] else "dam"), config["in_channels"])
        inputs = LearnedInput(config["num_nodes"], est.input_dim) if "inputs.x" in state else None
        _bundle(net, inputs).load_state_dict(state)
        est.model_ = net.eval()
        est.gated_model_ = None if config["compacted"] else est.model_
        est.inputs_ = inputs
        est.node_ids_ = config["node_ids"]
        est.n_active_ = config["n_active"]
        est.val_auc_ = config["val_auc"]
        return est

    def _split(self, data: Data):
        """(train, val) with fresh labels; val is None when val_fraction == 0."""
        if self.val_fraction == 0:
            train = copy.copy(data)
            train.pos_edge_label_index = data.edge_index if self.directed else \
                data.edge_index[:, data.edge_index[0] < data.edge_index[1]]
            return train, None
        with warnings.catch_warnings():  # RandomLinkSplit warns about an empty test split
            warnings.simplefilter("ignore")
            train, val, _ = split_edges(data, self.seed, self.val_fraction, 0.0, undirected=not self.directed)
        return train, val
