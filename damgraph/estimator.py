"""``DAMEmbedding``: compact node embeddings of any graph, scikit-learn style."""
from __future__ import annotations

import warnings
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Hashable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch_geometric.data import Data
from torch_geometric.nn import GAE

from damgraph.compaction import compact
from damgraph.config import (ESTIMATOR_SETTINGS, MODEL_FAMILIES, USER_DEFAULTS, USER_POSITIVES, LinkPredConfig,
                             model_config)
from damgraph.gates import DAMGate, gate_widths
from damgraph.graphs import GraphInputError, prepare_graph
from damgraph.inputs import LearnedInput, trained_modules
from damgraph.io import OutputSet, jsonable, load_checkpoint, save_checkpoint, versions
from damgraph.layers import LAYERS
from damgraph.linkpred import LinkPredTask
from damgraph.models import autoencoder_class, build_autoencoder
from damgraph.runtime import deterministic
from damgraph.splits import holdout_split

# The smallest graph the validation split can serve: it needs at least one
# held-out edge and enough training edges left to learn from.
MIN_EDGES_FOR_VALIDATION = 20



class DAMEmbedding(BaseEstimator):
    """Compact node embeddings of a graph with a DAM-gated GAE or VGAE.

    Follows scikit-learn's conventions: :meth:`__init__` only stores its
    arguments, :meth:`fit` validates its input and returns ``self``, and what
    was learned lives in attributes with a trailing underscore.

    It trains through the same :class:`~damgraph.linkpred.LinkPredTask` as
    the benchmark harness: with the same graph, split, settings and seed
    both give the same numbers. The settings left at ``None`` take the
    model's preset (:data:`damgraph.config.MODEL_FAMILIES`).

    Args:
        dim (int, optional): Starting embedding width (preset: 128); DAM
            learns how many to keep.
        model (str): ``"gae"``, ``"vgae"`` or ``"maskgae"`` (masked-edge
            pretext task with MaskGAE's settings; undirected graphs only).
        decoder (str, optional): ``"inner"`` (default): the model scores an
            edge by the inner product of its two embeddings, so the
            embeddings alone carry the score the model was selected on;
            ``"mlp"``: an MLP on their product (MaskGAE's decoder), whose
            scores come from :meth:`predict`; ``None``: the model's preset.
        lam (float, optional): DAM penalty weight :math:`\\lambda` on graphs
            of up to ``penalty_edges`` training edges (preset: 0.1 for every model).
        penalty_edges (int, optional): On a graph of :math:`N` training
            edges, more than this, the weight is :math:`\\lambda \\sqrt{\\mathrm{penalty\\_edges} / N}`,
            on smaller ones :math:`\\lambda` (:func:`~damgraph.config.penalty_weight`;
            preset: 4096; 0: the same weight on every graph).
        epochs (int, optional): Most training epochs (preset: 2000; maskgae 800).
        patience (int, optional): Epochs without a better validation AUC
            before stopping (preset: 100; maskgae 300).
        min_epochs (int, optional): No epoch before this one is kept
            (preset: 1).
        val_window (int, optional): Rank epochs by the mean validation AUC
            of their last ``val_window`` epochs (preset: 1, the AUC
            itself); a few epochs steady a small graph's noisy validation.
        val_tolerance (float, optional): Keep the narrowest epoch whose
            validation AUC is within this of the best (default 0.01;
            ``None``: the preset, 0, the best epoch; see
            :func:`damgraph.training.fit`).
        val_min_delta (float, optional): Stop once :obj:`patience` epochs
            have not raised the validation score of the last restart by more
            than this (default 0.01; ``None``: the preset, 0, any gain
            restarts the patience).
        val_metric (str, optional): The validation score that selects the
            epoch: ``"auc"`` (``None``: the preset) or ``"hits@K"`` (K = 20,
            50, 100: OGB's selection on ddi, collab and ppa).
        lr (float, optional): Adam learning rate of the weights (preset: 0.01).
        beta_lr (float, optional): Learning rate of the DAM betas (preset: 0.2).
        inputs (str, optional): Node inputs of a graph without features,
            learned vectors: ``"projection"`` (default) started from a
            random projection of the training graph
            (:func:`~damgraph.projection.random_projection`, a few sparse
            products on any size of graph), ``"learned"`` (``None``: the
            preset) from a random start, ``"spectral"`` from the training
            graph's spectral embedding
            (:func:`~damgraph.spectral.spectral_embedding`); or
            ``"spectral-fixed"``: that embedding as fixed node features
            (only the GCN is trained).
        positives (str, optional): Training positives of ``gae`` and
            ``vgae``: ``"walks"`` (``None``: the default for them), the pairs
            within :obj:`window` steps of each other on random walks over the
            training graph, drawn at every epoch
            (:class:`~damgraph.walks.ContextSampler`; DeepWalk's contexts), or
            ``"edges"`` (the preset), the training edges themselves.
            ``maskgae`` reconstructs its masked edges (``None`` leaves them).
        window (int, optional): Most steps between the two nodes of a
            random-walk pair (preset: 5).
        val_fraction (float): Share of edges held out to select the best
            epoch and report ``val_auc_``; 0 trains all epochs on every edge.
        input_dim (int): Width of the learned node inputs used when the graph
            has no features.
        directed (bool): Keep edge directions instead of symmetrising.
        seed (int): Seed of every random choice.
        device (str): ``"cpu"`` or ``"cuda"``.
        verbose (bool): Show a progress bar.

    Attributes:
        embedding_ (numpy.ndarray): ``n x k`` embeddings, ``k = width_``.
        node_ids_ (list): The node id of each row of ``embedding_``.
        node_index_ (dict): The row of each node id (and of its text).
        width_ (int): Learned width.
        gate_widths_ (dict): Open units of every gated layer, by name.
        penalty_weight_ (float): The DAM penalty's weight this graph gave
            (``lam`` scaled by its training edges).
        config_ (LinkPredConfig): The settings the model was trained with.
        val_auc_ (float or None): Validation AUC of the kept epoch.
        val_score_ (float or None): Its score of ``val_metric`` (the AUC
            by default).
        history_ (list of dict): Loss, learned width and validation score
            (``val_score``, ``None`` without validation) per epoch.
        model_ (torch_geometric.nn.GAE): The compacted model.
        graph_report_ (dict): Self-loops, duplicates and isolated nodes found.
    """

    def __init__(self, dim: Optional[int] = None, model: str = "gae",
                 decoder: Optional[str] = USER_DEFAULTS["decoder"], lam: Optional[float] = None,
                 penalty_edges: Optional[int] = None,
                 epochs: Optional[int] = None, patience: Optional[int] = None, min_epochs: Optional[int] = None,
                 val_window: Optional[int] = None, val_tolerance: Optional[float] = USER_DEFAULTS["val_tolerance"],
                 val_min_delta: Optional[float] = USER_DEFAULTS["val_min_delta"], val_metric: Optional[str] = None,
                 lr: Optional[float] = None, beta_lr: Optional[float] = None,
                 inputs: Optional[str] = USER_DEFAULTS["inputs"], positives: Optional[str] = None,
                 window: Optional[int] = None, val_fraction: float = 0.05,
                 input_dim: int = 64,
                 directed: bool = False, seed: int = 0, device: str = "cpu", verbose: bool = False):
        self.dim = dim
        self.model = model
        self.decoder = decoder
        self.lam = lam
        self.penalty_edges = penalty_edges
        self.epochs = epochs
        self.patience = patience
        self.min_epochs = min_epochs
        self.val_window = val_window
        self.val_tolerance = val_tolerance
        self.val_min_delta = val_min_delta
        self.val_metric = val_metric
        self.lr = lr
        self.beta_lr = beta_lr
        self.inputs = inputs
        self.positives = positives
        self.window = window
        self.val_fraction = val_fraction
        self.input_dim = input_dim
        self.directed = directed
        self.seed = seed
        self.device = device
        self.verbose = verbose

    def build_config(self) -> LinkPredConfig:
        """The run's settings: the model's preset with the parameters set
        here; a bad value raises an error that names the parameter (so a
        caller can check the parameters before reading a graph)."""
        if self.model not in MODEL_FAMILIES:
            raise ValueError(f"model must be one of {', '.join(MODEL_FAMILIES)}, got {self.model!r}")
        family = MODEL_FAMILIES[self.model]
        if family.masks_edges and self.directed:
            raise ValueError(f"model {self.model!r} masks undirected edges; use directed=False or model 'gae'")
        if isinstance(self.val_fraction, bool) or not isinstance(self.val_fraction, (int, float)) \
                or not 0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be a number in [0, 0.5), got {self.val_fraction!r}")
        if isinstance(self.input_dim, bool) or not isinstance(self.input_dim, int) or self.input_dim < 1:
            raise ValueError(f"input_dim must be a positive integer, got {self.input_dim!r}")
        # None leaves a setting at the model's preset, except seed and device, which have no preset: there it is
        # passed on and refused by the config.
        given = {k: getattr(self, k) for k in ESTIMATOR_SETTINGS
                 if k != "model" and not (getattr(self, k) is None and k not in ("seed", "device"))}
        # walks where the model takes them: not a masking model (it reconstructs its masked edges), nor a preset
        # that mini-batches its training edges
        if self.positives is None and not family.masks_edges and model_config(self.model).pos_batch_size is None:
            given["positives"] = USER_POSITIVES
        return model_config(self.model, **given, input_dim=self.input_dim)

    @deterministic()
    def fit(self, graph: Any, features: Any = None, header: Optional[bool] = None) -> "DAMEmbedding":
        """Learn embeddings of :obj:`graph` (a networkx graph, scipy sparse
        matrix, PyG ``Data``, ``edge_index`` tensor or edge-list path;
        :obj:`header` as in :func:`~damgraph.graphs.read_edge_list`)."""
        config = self.build_config()
        prepared = prepare_graph(graph, features, directed=self.directed, header=header)
        data = prepared.data
        if data.edge_index.size(1) == 0:
            raise GraphInputError("the graph has no edges (after removing self-loops); nothing to learn from")
        family_weights = autoencoder_class(self.model).takes_edge_weights
        if getattr(data, "edge_weight", None) is not None and not (family_weights and LAYERS[config.conv].edge_weights):
            what = f"model {self.model!r}" + ("" if not family_weights else f" (its {config.conv} layers)")
            raise GraphInputError(f"{what} does not use edge weights yet; give the graph without weights or use "
                                  "model 'gae'")
        n_pairs = prepared.num_edges
        need = max(MIN_EDGES_FOR_VALIDATION, int(np.ceil(1 / self.val_fraction))) if self.val_fraction > 0 else 0
        if n_pairs < need:
            raise GraphInputError(
                f"the graph has {n_pairs} edge(s), too few for a {self.val_fraction:.0%} validation split "
                f"(at least {need} needed); pass val_fraction=0 (--val-fraction 0) to train without validation")

        train, val = holdout_split(data, self.seed, self.val_fraction, self.directed)
        task = LinkPredTask((train, val, None), config)
        record = task.fit(progress=self.verbose)
        net, inputs = task.model, task.inputs  # the DAM gate keeps at least one unit open (DAMGate.min_open)

        self.config_ = config
        self.gated_model_ = net.eval()
        self.gate_widths_ = gate_widths(net)
        self.model_ = compact(net).eval()
        self.inputs_ = inputs
        self.embedding_ = self._encode(self.model_, data)
        self._set_node_ids(list(prepared.node_ids))
        self.width_ = int(self.embedding_.shape[1])
        self.val_score_ = record.val_score
        self.val_auc_ = record.val_score if val is None or config.val_metric == "auc" else task.validation_score("auc")
        val_scores = dict(zip(record.val_epochs, record.val_scores))
        self.history_ = [{"loss": loss, "width": _embedding_width(widths, config.dim), "val_score": val_scores.get(epoch)}
                         for epoch, (loss, widths) in enumerate(zip(record.losses, record.width_trajectory), 1)]
        self.best_epoch_ = record.best_epoch
        self.penalty_weight_ = task.penalty_weight
        self.graph_report_ = dict(prepared.report)
        self.edge_index_ = data.edge_index.cpu().clone()
        if val is not None and record.best_epoch == config.epochs:
            warnings.warn(f"the best epoch was the last allowed ({config.epochs}): the model may still be "
                          "improving; raise epochs (--epochs)", stacklevel=3)
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
        weight = getattr(data, "edge_weight", None)
        if net.encoder.conv != "gcn":
            return net.encode(x, data.edge_index, weight).cpu().numpy()
        # the prebuilt adjacency, as in training: no per-edge messages (memory) and CSR products (speed)
        return net.encode(x, net.encoder.prepare_graph(data.edge_index, data.num_nodes, weight)).cpu().numpy()

    def _set_node_ids(self, node_ids: List[Hashable]) -> None:
        """The fitted node ids and the row of each (by the id itself, or its
        text as read from a file), replaced at every fit or load."""
        self.node_ids_ = node_ids
        self.node_index_ = {node: i for i, node in enumerate(node_ids)}
        self.node_index_.update({str(node): i for i, node in enumerate(node_ids) if str(node) not in self.node_index_})

    # -- link prediction from the fitted model ---------------------------------
    def _rows(self, nodes: Sequence[Hashable]) -> torch.Tensor:
        """Row numbers of node ids (the ids themselves, or their text as read from a file)."""
        if getattr(self, "embedding_", None) is None:
            raise ValueError("this DAMEmbedding is not fitted yet; call fit() or load() first")
        rows = []
        for node in nodes:
            key = node if node in self.node_index_ else str(node)
            if key not in self.node_index_:
                raise ValueError(f"node {node!r} is not in the model's graph ({len(self.node_ids_)} nodes); "
                                 "give ids of the graph the model was fitted on")
            rows.append(self.node_index_[key])
        return torch.tensor(rows, dtype=torch.long)

    @torch.no_grad()
    def edge_scores(self, pairs: Sequence[Tuple[Hashable, Hashable]]) -> np.ndarray:
        """The probability of an edge for each ``(u, v)`` pair of node ids,
        by the model's own decoder (the one it was selected with)."""
        pairs = list(pairs)
        src = self._rows([u for u, _ in pairs])
        dst = self._rows([v for _, v in pairs])
        z = torch.as_tensor(self.embedding_)
        return self._decoder()(z, torch.stack([src, dst]), sigmoid=True).numpy()

    def _decoder(self) -> torch.nn.Module:
        """The decoder for ``embedding_`` (cut to the open units when the model was loaded gated)."""
        if getattr(self, "gated_model_", None) is self.model_:
            return compact(self.model_).decoder
        return self.model_.decoder

    @torch.no_grad()
    def likely_neighbours(self, nodes: Optional[Sequence[Hashable]] = None, k: int = 10,
                          batch_pairs: int = 1 << 20) -> List[Tuple[Hashable, int, Hashable, float]]:
        """The :obj:`k` most likely new neighbours of each of :obj:`nodes`
        (default: every node), by the model's decoder: ``(node, rank,
        candidate, probability)`` rows, rank 1 first. A node's present
        neighbours and the node itself are not candidates."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        rows = self._rows(self.node_ids_ if nodes is None else list(nodes))
        z = torch.as_tensor(self.embedding_)
        n = z.size(0)
        src, dst = self.edge_index_
        out: List[Tuple[Hashable, int, Hashable, float]] = []
        per_batch = max(1, batch_pairs // n)
        decoder = self._decoder()
        for start in range(0, len(rows), per_batch):
            chunk = rows[start:start + per_batch]
            pairs = torch.stack([chunk.repeat_interleave(n), torch.arange(n).repeat(len(chunk))])
            logits = decoder(z, pairs, sigmoid=False).view(len(chunk), n)
            logits[torch.arange(len(chunk)), chunk] = -float("inf")  # not itself
            position = torch.full((n,), -1, dtype=torch.long)
            position[chunk] = torch.arange(len(chunk))
            known = position[src] >= 0
            logits[position[src[known]], dst[known]] = -float("inf")  # nor a present neighbour
            top = logits.topk(min(k, n), dim=1)
            for i, row in enumerate(chunk.tolist()):
                for rank, (value, j) in enumerate(zip(top.values[i].tolist(), top.indices[i].tolist()), start=1):
                    if value != -float("inf"):
                        out.append((self.node_ids_[row], rank, self.node_ids_[j], float(torch.sigmoid(torch.tensor(value)))))
        return out

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

    def save(self, path: Union[str, Path], compacted: bool = True, outputs: Optional[OutputSet] = None
             ) -> List[Path]:
        """Save the compacted model (or, with ``compacted=False``, the gated
        one) as a weights file plus ``<path>.json`` (staged in
        :obj:`outputs` when given); see :meth:`load`."""
        if getattr(self, "model_", None) is None:
            raise ValueError("this DAMEmbedding is not fitted yet; nothing to save")
        net = self.model_ if compacted else self.gated_model_
        modules = trained_modules(net, self.inputs_)
        config = {"params": self.get_params(), "config": asdict(self.config_), "compacted": compacted,
                  "width": self.width_, "gate_widths": self.gate_widths_,
                  "in_channels": net.encoder.in_channels, "num_nodes": len(self.node_ids_),
                  "node_ids": [jsonable(i) for i in self.node_ids_], "val_auc": self.val_auc_,
                  "val_score": self.val_score_, "versions": versions()}
        state = {**modules.state_dict(), "result.embedding": torch.as_tensor(self.embedding_),
                 "result.edge_index": self.edge_index_}
        return save_checkpoint(path, state, config, outputs)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "DAMEmbedding":
        """A fitted estimator from :meth:`save`'s files (weights only); a
        damaged or edited pair of files raises :class:`ValueError`."""
        state, config = load_checkpoint(path)
        if "result.embedding" not in state or "result.edge_index" not in state:
            raise ValueError(f"{path} holds no embedding (saved by an earlier damgraph); fit and save again")
        try:
            est = cls(**config["params"])
            names = {f.name for f in fields(LinkPredConfig)}
            base = LinkPredConfig(**{k: v for k, v in config["config"].items() if k in names})
            net = build_autoencoder(base, config["in_channels"])
            widths = config.get("gate_widths", {"encoder.out_gate": config["width"]})  # earlier files: output only
            if config["compacted"]:  # the compacted model's layers: the gated model cut to the widths it kept
                for name, gate in dict(net.named_modules()).items():
                    if isinstance(gate, DAMGate):
                        gate.open_exactly_(widths.get(name, gate.width))
                net = compact(net)
            inputs = (LearnedInput.for_config(replace(base, input_dim=est.input_dim), config["num_nodes"])
                      if "inputs.x" in state else None)
            results = {k: state.pop(k) for k in [k for k in state if k.startswith("result.")]}
            trained_modules(net, inputs).load_state_dict(state)
            embedding, edge_index = results["result.embedding"].numpy(), results["result.edge_index"]
            node_ids, val_auc = config["node_ids"], config["val_auc"]
        except KeyError as err:
            raise ValueError(f"{path}.json lacks the entry {err}; save the model again") from None
        except (TypeError, ValueError, RuntimeError) as err:
            lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
            first = next((line for line in lines if not line.endswith(":")), err.__class__.__name__)[:160]
            raise ValueError(f"{path} and {path}.json do not match ({first}); save the model again") from None
        if len(node_ids) != config["num_nodes"]:
            raise ValueError(f"{path}.json lists {len(node_ids)} node ids for {config['num_nodes']} nodes; "
                             "save the model again")
        est.config_ = base
        est.model_ = net.eval()
        est.gated_model_ = None if config["compacted"] else est.model_
        est.gate_widths_ = widths
        est.inputs_ = inputs
        est._set_node_ids(node_ids)
        est.width_ = config["width"]
        est.val_auc_ = val_auc
        est.val_score_ = config.get("val_score", val_auc)  # files saved before val_metric: the AUC
        est.embedding_, est.edge_index_ = embedding, edge_index
        if embedding.shape != (len(node_ids), est.width_):
            raise ValueError(f"{path} holds an embedding of shape {embedding.shape} for {len(node_ids)} nodes; "
                             "save the model again")
        return est


def _embedding_width(widths: dict, dim: int) -> int:
    """The embedding's open units in one epoch's gate widths (the output
    gate's; the only gate of a model that gates nothing else)."""
    out = [w for name, w in widths.items() if name.endswith("encoder.out_gate")]
    return out[0] if out else next(iter(widths.values()), dim)
