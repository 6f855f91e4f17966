"""Settings of a training run, in one place: :class:`LinkPredConfig` and
:class:`NodeClfConfig`, the choices each setting takes, the model presets
(:data:`MODEL_FAMILIES`) and the checks every path shares.

Each field carries its help text, its choices and its valid range, so the
command-line flags of ``damgraph embed`` and of the benchmarks are derived
from the fields (:func:`add_config_arguments`) rather than written again; how a setting is
declared and checked is :mod:`damgraph.settings`.
This module imports nothing heavy: the command line's ``--help`` reads it.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Dict, Optional, Sequence

from damgraph.settings import check_settings, setting, setting_type

#: ``rewind_epochs``: how long the rewound weights train.
REWIND_EPOCHS = ("rest", "all")
#: ``rewind_gains``: what the open units of a rewound DAM gate pass.
REWIND_GAINS = ("gate", "one")
#: Size gates: DAM, and the baselines L1 (a penalised scale) and L0 (hard
#: concrete); :func:`damgraph.gates.register_gate` adds a kind here.
GATES = ["dam", "l1", "l0"]
#: Message-passing layers: GCN (Kipf and Welling, 2017), GraphSAGE with mean
#: aggregation (Hamilton et al., 2017), single-head GAT (Velickovic et al., 2018);
#: :func:`damgraph.layers.register_layer` adds a kind here.
CONVS = ["gcn", "sage", "gat"]
ACTIVATIONS = ("relu", "elu")
#: Edge decoders: the inner product, or an MLP on :math:`z_i \odot z_j`.
DECODERS = ("inner", "mlp")
#: Where the MLP decoder's dropout acts: on its input (MaskGAE's decoder),
#: or after its hidden layer (OGB's ``LinkPredictor``).
DROPOUT_PLACES = ("input", "hidden")
#: MaskGAE's edge masking: random edges, or the edges along random walks.
MASKINGS = ("edge", "path")
#: ``full``: full-batch training on the graph; ``precomputed``: features
#: propagated once (SIGN) and mini-batches of edges.
MODES = ("full", "precomputed")
#: Model-selection scores: validation AUC, or Hits@K against the split's
#: shared negatives (the metric of OGB's ddi, collab and ppa leaderboards).
VAL_METRICS = ("auc", "hits@20", "hits@50", "hits@100")
#: Node inputs of a graph without features: learned vectors from a random
#: start, or from the training graph's spectral embedding
#: (:func:`~damgraph.spectral.spectral_embedding`), so that they carry the
#: graph's structure from the first epoch; or that spectral embedding kept
#: fixed, as node features (only the GCN is trained); or learned vectors
#: started from a random projection of the training graph
#: (:func:`~damgraph.projection.random_projection`: a few sparse products,
#: so it scales to graphs whose eigendecomposition takes minutes).
INPUTS = ("learned", "spectral", "spectral-fixed", "projection")
#: The GAE's (and VGAE's) training positives: the training edges (Kipf and
#: Welling, 2016), or the node pairs within a few steps of each other on
#: random walks over them, drawn afresh at every epoch (DeepWalk's contexts,
#: Perozzi et al., 2014; GraphSAGE's unsupervised loss, Hamilton et al.,
#: 2017; :class:`~damgraph.walks.ContextSampler`). MaskGAE reconstructs its
#: masked edges either way.
POSITIVES = ("edges", "walks")


#: Training edges per step in OGB's link-prediction example code (``ddi``,
#: ``collab``, ``ppa`` and ``citation2`` all take batches of 64 x 1024).
OGB_POSITIVE_BATCH = 65536


#: OGB's GNN link predictor of ``ogbl-ddi`` (``examples/linkproppred/ddi/
#: gnn.py``, Hu et al., NeurIPS 2020): a Xavier-started node table, two
#: layers and an MLP predictor on :math:`z_i \odot z_j` (one hidden layer,
#: ReLU then dropout), all 256 wide; dropout 0.5 between layers; Adam at
#: 0.005 for 200 epochs of mini-batches of 65,536 training edges, each with
#: as many uniform negatives; every gradient norm (table, encoder,
#: predictor) clipped to 1.0 on its own; validation Hits@20 every 5 epochs
#: selects the epoch (no early stop). OGB's leaderboard: GraphSAGE 53.90 +-
#: 4.74 test Hits@20 with 1,421,057 parameters, GCN 37.07 +- 5.07 with
#: 1,289,985. With a DAM gate, the node table and the hidden layer are
#: gated too.
OGB_DDI_RECIPE: Dict[str, Any] = dict(
    conv="sage", dim=256, tie_widths=True, num_layers=2, dropout=0.5, dropout_input=False, inputs="learned",
    decoder="mlp", decoder_dropout=0.5, decoder_dropout_at="hidden", lr=0.005, epochs=200, patience=200,
    pos_batch_size=OGB_POSITIVE_BATCH, grad_clip=1.0, clip_per_part=True, val_metric="hits@20", val_every=5,
    gate_inputs=True, gate_hidden=True)


@dataclass(frozen=True)
class ModelFamily:
    """A model name's entry in :data:`MODEL_FAMILIES`: the autoencoder class
    that builds it (``"module:Class"``, imported by
    :func:`damgraph.models.autoencoder_class` so that this module stays
    light), its preset (the settings where it differs from
    :class:`LinkPredConfig`'s defaults) and whether it reconstructs edges
    hidden from its encoder (MaskGAE: the masking settings and the degree
    head apply to it; walk positives and mini-batched positives do not)."""

    autoencoder: str
    preset: Dict[str, Any] = field(default_factory=dict)
    masks_edges: bool = False


#: The model families by name, one entry each (:func:`register_model` adds
#: one): ``gae`` (Kipf and Welling, 2016), ``vgae`` (its variational form),
#: ``maskgae`` (the GAE trained on a masked-edge pretext task, Li et al., KDD
#: 2023), and ``sage-mlp`` / ``gcn-mlp``: the link predictors of OGB's
#: ``ogbl-ddi`` examples (Hu et al., NeurIPS 2020), GAEs with
#: :data:`OGB_DDI_RECIPE`. ``maskgae``'s preset follows MaskGAE (path
#: masking, MLP decoder, degree head, batch norm, ELU, gradient clipping),
#: chosen on validation AUC only, on Cora seed 0 at 128 dimensions
#: (docs/results/maskgae-selection). ``lam`` is one default for every model.
MODEL_FAMILIES: Dict[str, ModelFamily] = {
    "gae": ModelFamily("damgraph.models:DAMGAE"),
    "vgae": ModelFamily("damgraph.models:DAMVGAE"),
    "maskgae": ModelFamily(
        "damgraph.models:MaskGAE", masks_edges=True,
        preset=dict(decoder="mlp", decoder_hidden=32, decoder_dropout=0.3, masking="path", mask_ratio=0.7,
                    degree_weight=2e-3, dropout=0.5, hidden=128, batch_norm=True, activation="elu",
                    weight_decay=5e-5, grad_clip=1.0, epochs=800, patience=300)),
    "sage-mlp": ModelFamily("damgraph.models:DAMGAE", OGB_DDI_RECIPE),
    "gcn-mlp": ModelFamily("damgraph.models:DAMGAE", {**OGB_DDI_RECIPE, "conv": "gcn"}),
}


def register_model(name: str, family: ModelFamily) -> None:
    """Add a model family under :obj:`name` (``--model name`` everywhere)."""
    if name in MODEL_FAMILIES:
        raise ValueError(f"model {name!r} is registered already")
    _check_setting_names(family.preset, f" in the preset of {name!r}")
    MODEL_FAMILIES[name] = family


def _check_setting_names(names: Any, where: str = "") -> None:
    """Refuse any of :obj:`names` that is no :class:`LinkPredConfig` field."""
    unknown = sorted(set(names) - {f.name for f in fields(LinkPredConfig)})
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(unknown)}{where}; see damgraph.LinkPredConfig")


#: Where the user's path (:class:`~damgraph.DAMEmbedding`, ``damgraph embed``)
#: departs from the model presets, which the benchmark harness keeps: the
#: inner-product decoder, so that the written embeddings carry the model's
#: score; learned inputs started from a random projection of the graph, and
#: the narrowest epoch within 0.01 validation AUC of the best, and a run
#: that stops once 100 epochs have not raised it by more than 0.01
#: (measured on graphs without features in docs/own-graphs.md).
USER_DEFAULTS = {"decoder": "inner", "inputs": "projection", "val_tolerance": 0.01, "val_min_delta": 0.01}
#: The user's positives for the models that take them (``gae`` and
#: ``vgae``): random-walk contexts, which rank held-out edges of graphs
#: without features better than the edges alone (docs/results.md, "Graphs
#: without features"); ``maskgae`` keeps its masked edges.
USER_POSITIVES = "walks"

#: The settings :class:`~damgraph.DAMEmbedding` and ``damgraph embed`` take
#: (``None``: the model's preset); the others keep the preset.
ESTIMATOR_SETTINGS = ("dim", "model", "decoder", "lam", "penalty_edges", "epochs", "patience", "min_epochs",
                      "val_window", "val_tolerance", "val_min_delta", "val_metric", "lr",
                      "beta_lr", "inputs", "positives", "window", "seed", "device")


#: What a device setting may say (whether it is there is checked when a run starts).
DEVICE_PATTERN = r"cpu|cuda(:\d+)?"


@dataclass
class LinkPredConfig:
    """Settings of one link-prediction run (defaults: the GAE's; other models'
    presets in :data:`MODEL_FAMILIES`, applied by :func:`model_config`).
    Values are checked when the config is made: a bad one raises a
    :class:`ValueError` (or :class:`TypeError`) that names the setting."""

    model: str = setting("gae", "the autoencoder", choices=MODEL_FAMILIES)
    dim: int = setting(128, "embedding width; the starting width when gated", low=1)
    hidden: Optional[int] = setting(None, "hidden width of the encoder (unset: 2 x dim)", low=1, optional=True)
    num_layers: int = setting(2, "message-passing layers of the encoder", low=1)
    dropout: float = setting(0.0, "dropout on the input of every encoder layer", low=0, high=1, high_open=True)
    dropout_input: bool = setting(True, "apply the encoder's dropout to its input too (off: between layers only, "
                                        "as OGB's examples)")
    gate: Optional[str] = setting("dam", "size gate on the embedding (None: a plain fixed-width model)",
                                  choices=GATES, optional=True)
    gate_hidden: bool = setting(False, "gate the hidden layers too")
    gate_inputs: bool = setting(False, "graphs without features: gate the columns of the learned node table too")
    matryoshka: bool = setting(False, "sum the loss over the nested prefixes 2, 4, 8, ... of the embedding "
                                               "(with a DAM gate: its top blocks, the highest gates)")
    lam: float = setting(0.1, "weight of the gate penalty (for DAM: lam * mean(beta)) on graphs of up to "
                              "penalty_edges training edges", low=0)
    penalty_edges: int = setting(4096, "the number of training edges up to which lam is the penalty's weight: on "
                                       "a graph of N more training edges it is lam * sqrt(penalty_edges / N), as "
                                       "the gap between training and held-out loss shrinks (0: lam on every graph)",
                                 low=0)
    gate_alpha: float = setting(2.0, "steepness alpha of DAM gates (the paper's 1: kept units ramp up over a fifth "
                                     "of the width; 2: over a twentieth, the kept block passing near gain 1)",
                                low=0, low_open=True)
    gate_delay: int = setting(40, "epochs during which the gates are held still at the start, so that the weights "
                                  "train at full width first (DAM's reference code: a tenth of its epochs)", low=0)
    settle: int = setting(50, "train the gates until the width has fallen by at most 10 percent over this many "
                             "epochs (at most half the epochs), then hold them and select among the later "
                             "epochs only (0: gates and selection run together)", low=0)
    rewind: bool = setting(True, "with settle: once the width has settled, train the weights again from their "
                                  "start at that width (the gates kept as they are)")
    rewind_epochs: str = setting("rest", "with rewind: the rewound weights train for the run's remaining epochs "
                                         "(rest) or for all the epochs again, a fixed model's budget, the sizing "
                                         "epochs on top (all)", choices=REWIND_EPOCHS)
    rewind_gains: str = setting("gate", "with rewind: the open units keep the gate's gains (gate), or pass at gain "
                                        "1 (one: the learned width trained as a fixed model of that width)",
                                choices=REWIND_GAINS)
    lr: float = setting(0.01, "Adam learning rate of the weights", low=0)
    beta_lr: float = setting(0.2, "learning rate of the gates' parameters (DAM's beta)", low=0)
    weight_decay: float = setting(0.0, "Adam weight decay of the weights (never of the gates)", low=0)
    epochs: int = setting(2000, "most training epochs (a cap: the patience ends a run that has converged)", low=1)
    patience: int = setting(100, "stop after this many epochs without a better validation score", low=1)
    min_epochs: int = setting(1, "model selection keeps no epoch before this one", low=1)
    val_window: int = setting(1, "rank epochs by the mean validation score of their last this-many epochs", low=1)
    val_tolerance: float = setting(0.0, "keep the narrowest epoch whose validation score is within this of the "
                                        "best (0: the best epoch)", low=0)
    val_min_delta: float = setting(0.0, "a newly kept epoch restarts the patience only if its validation score "
                                         "beats the last restart's by more than this (0: every one does)", low=0)
    val_metric: str = setting("auc", "validation score that selects the epoch", choices=VAL_METRICS)
    val_every: int = setting(1, "score validation every this many epochs (and at the last); only those epochs "
                                "are candidates", low=1)
    inputs: str = setting("learned", "graphs without features: learned node inputs, started at random or "
                                     "from the training graph's spectral embedding, or that spectral embedding "
                                     "as fixed features, or started from a random projection of the graph",
                      choices=INPUTS)
    input_dim: int = setting(64, "graphs without features: width of the learned node inputs", low=1)
    tie_widths: bool = setting(False, "the node table, hidden layers and MLP decoder all as wide as dim (OGB's "
                                      "hidden_channels); hidden, input_dim and decoder_hidden are then unused")
    positives: str = setting("edges", "gae and vgae: training positives, the training edges or the pairs within "
                                      "'window' steps on random walks over them (drawn at every epoch)",
                             choices=POSITIVES)
    window: int = setting(5, "positives 'walks': most steps between the two nodes of a pair (one walk of "
                             "2 x window steps from every node per epoch)", low=1)
    seed: int = setting(0, "seed of the split, the initialisation and every random draw", low=0, high=2 ** 32 - 1)
    device: str = setting("cpu", "cpu, cuda or cuda:N", pattern=DEVICE_PATTERN)
    mask_ratio: float = setting(0.7, "maskgae: share of the edges hidden (edge masking) or of the nodes "
                                     "starting a walk (path masking)", low=0, high=1, low_open=True, high_open=True)
    decoder: str = setting("inner", "edge decoder: inner product, or an MLP on z_i * z_j", choices=DECODERS)
    conv: str = setting("gcn", "encoder layers", choices=CONVS)
    batch_norm: bool = setting(False, "batch norm after every encoder layer")
    activation: str = setting("relu", "activation of the hidden layers", choices=ACTIVATIONS)
    masking: str = setting("edge", "maskgae: hide random edges, or the edges of random walks", choices=MASKINGS)
    walk_length: int = setting(3, "maskgae: steps of each masking walk", low=1)
    degree_weight: float = setting(0.0, "maskgae: weight of the degree-regression head (0: none)", low=0)
    decoder_hidden: int = setting(64, "hidden units of the MLP decoder", low=1)
    decoder_dropout: float = setting(0.0, "dropout in the MLP decoder", low=0, high=1, high_open=True)
    decoder_dropout_at: str = setting("input", "where the MLP decoder's dropout acts: on its input (MaskGAE) or "
                                               "after its hidden layer (OGB)", choices=DROPOUT_PLACES)
    grad_clip: float = setting(0.0, "clip the weights' gradient norm to this (0: no clipping)", low=0)
    clip_per_part: bool = setting(False, "clip the node table's, the encoder's and the decoder's gradient norms "
                                         "each on its own (OGB's examples), not all together")
    mode: str = setting("full", "full-batch training, or features propagated once and mini-batches of edges",
                        choices=MODES)
    hops: int = setting(2, "precomputed mode: propagation steps of the features", low=1)
    batch_size: int = setting(65536, "precomputed mode: training edges per mini-batch", low=1)
    pos_batch_size: Optional[int] = setting(
        None, "full mode: training edges per step, an epoch taking each once in shuffled mini-batches, the "
              "whole graph encoded at every step (unset: all in one step)", low=1, optional=True)

    def __post_init__(self) -> None:
        check_settings(self)
        masks_edges = MODEL_FAMILIES[self.model].masks_edges
        if self.degree_weight > 0 and not masks_edges:
            raise ValueError(f"degree_weight needs a model that masks edges, such as 'maskgae' (it regresses the "
                             f"masked degrees), not {self.model!r}; set it to 0 or use model 'maskgae'")
        if self.positives == "walks" and (masks_edges or self.mode != "full" or self.pos_batch_size is not None):
            raise ValueError("positives 'walks' trains a model on its given positives (not one that masks edges, "
                             "such as 'maskgae') in mode 'full' with all positives in one step; use positives "
                             "'edges'")
        if self.pos_batch_size is not None and (self.mode != "full" or masks_edges):
            raise ValueError("pos_batch_size mini-batches the training edges of a model trained on them (not one "
                             "that masks edges, such as 'maskgae') in mode 'full'; unset it (mode 'precomputed' "
                             "takes batch_size)")
        if self.clip_per_part and self.grad_clip == 0:
            raise ValueError("clip_per_part clips each part's gradient norm to grad_clip, and grad_clip 0 clips "
                             "nothing; set grad_clip > 0 or clip_per_part False")
        if self.tie_widths:
            defaults = {f.name: f.default for f in fields(self)}
            for name in ("hidden", "input_dim", "decoder_hidden"):
                if getattr(self, name) != defaults[name]:
                    raise ValueError(f"tie_widths makes every width dim ({self.dim}), got {name}="
                                     f"{getattr(self, name)}; unset {name} or set tie_widths False")
        if self.mode == "precomputed":
            unsupported = {"model": (self.model, "gae"), "conv": (self.conv, "gcn"),
                           "num_layers": (self.num_layers, 2), "gate_hidden": (self.gate_hidden, False),
                           "batch_norm": (self.batch_norm, False), "dropout": (self.dropout, 0.0),
                           "activation": (self.activation, "relu")}
            for name, (value, only) in unsupported.items():
                if value != only:
                    raise ValueError(f"mode 'precomputed' trains a GAE on a SIGN encoder and supports "
                                     f"{name}={only!r} only, got {value!r}; use mode 'full'")

    @property
    def hidden_width(self) -> int:
        """Width of the encoder's hidden layers."""
        return self.dim if self.tie_widths else self.hidden or 2 * self.dim

    @property
    def input_width(self) -> int:
        """Width of the learned node inputs of a graph without features."""
        return self.dim if self.tie_widths else self.input_dim

    @property
    def decoder_width(self) -> int:
        """Hidden units of the MLP decoder (and MaskGAE's degree head)."""
        return self.dim if self.tie_widths else self.decoder_hidden


def penalty_weight(config: LinkPredConfig, num_edges: int) -> float:
    r"""The gate penalty's weight on a graph of :obj:`num_edges` training
    edges: ``lam`` up to ``penalty_edges`` edges, and
    :math:`\lambda \sqrt{\mathrm{penalty\_edges} / N}` on larger graphs (``lam``
    everywhere when ``penalty_edges`` is 0). A unit stays open while it
    lowers the mean training loss by more than the penalty it costs; the
    more edges, the less of that gain is fitted noise (the gap between
    training and held-out loss shrinks as :math:`1/\sqrt{N}`, e.g. Bartlett
    and Mendelson, JMLR 2002), so one weight for every graph closes large
    graphs further than small ones at the same need for units. The weight is
    never raised above ``lam``: on graphs of a few hundred edges the
    root's growth closes all but one or two units."""
    if not config.penalty_edges:
        return config.lam
    return config.lam * math.sqrt(config.penalty_edges / max(num_edges, config.penalty_edges))


def model_config(model: str = "gae", **settings: Any) -> LinkPredConfig:
    """A :class:`LinkPredConfig` with :obj:`model`'s preset
    (:data:`MODEL_FAMILIES`), :obj:`settings` taking precedence."""
    if model not in MODEL_FAMILIES:
        raise ValueError(f"unknown model {model!r}: use one of {', '.join(MODEL_FAMILIES)}")
    _check_setting_names(settings)
    return LinkPredConfig(**{**MODEL_FAMILIES[model].preset, **settings, "model": model})


@dataclass
class NodeClfConfig:
    """Settings of one supervised node-classification run; defaults follow
    Kipf and Welling (2017) except the hidden width, DAM's starting width."""

    hidden: int = setting(64, "hidden width of the GCN; the starting width when gated", low=1)
    num_layers: int = setting(2, "GCN layers", low=1)
    dropout: float = setting(0.5, "dropout on the input of every layer", low=0, high=1, high_open=True)
    dam: bool = setting(True, "gate the hidden layer with DAM")
    lam: float = setting(0.05, "weight of the DAM penalty", low=0)
    lr: float = setting(0.01, "Adam learning rate of the weights", low=0)
    beta_lr: float = setting(0.2, "learning rate of DAM's beta", low=0)
    weight_decay: float = setting(5e-4, "Adam weight decay of the weights (never of beta)", low=0)
    epochs: int = setting(400, "most training epochs", low=1)
    patience: int = setting(100, "stop after this many epochs without a better validation score", low=1)
    seed: int = setting(0, "seed of the initialisation and every random draw", low=0, high=2 ** 32 - 1)
    device: str = setting("cpu", "cpu, cuda or cuda:N", pattern=DEVICE_PATTERN)

    def __post_init__(self) -> None:
        check_settings(self)


#: The settings that act on the size gates alone: a run without a gate
#: (a fixed-width model) is the same whatever they are, so its config id
#: takes them at their neutral values (:func:`gateless`).
GATE_SETTINGS = ("gate_alpha", "gate_delay", "settle", "rewind", "rewind_epochs", "rewind_gains", "penalty_edges")

#: Settings added after result files were stored, with the value that
#: reproduces the earlier behaviour: :func:`config_id` leaves them out at
#: that value, so that the stored runs keep their ids.
LATER_SETTINGS = {"min_epochs": 1, "val_window": 1, "val_tolerance": 0.0, "val_min_delta": 0.0, "val_metric": "auc", "pos_batch_size": None,
                  "inputs": "learned", "positives": "edges", "window": 5,
                  "gate_alpha": 1.0, "gate_delay": 0, "settle": 0, "rewind": False,
                  "dropout_input": True, "gate_inputs": False, "val_every": 1, "input_dim": 64, "tie_widths": False,
                  "decoder_dropout_at": "input", "clip_per_part": False, "rewind_epochs": "rest",
                  "rewind_gains": "gate", "penalty_edges": 0}


def gateless(config: Any) -> Any:
    """:obj:`config` with the :data:`GATE_SETTINGS` at their neutral values:
    what identifies a run whose model has no gate."""
    return replace(config, **{k: LATER_SETTINGS[k] for k in GATE_SETTINGS})


def config_id(config: Any, per_run: Sequence[str]) -> str:
    """Every setting of :obj:`config` except the per-run ones (and the
    :data:`LATER_SETTINGS` at their neutral value), as one string: a stored
    run is reused only when it matches."""
    return "|".join(f"{k}={v}" for k, v in sorted(asdict(config).items())
                    if k not in per_run and not (k in LATER_SETTINGS and v == LATER_SETTINGS[k]))


def _preset_text(name: str) -> str:
    default = next(f.default for f in fields(LinkPredConfig) if f.name == name)
    values = {m: family.preset.get(name, default) for m, family in MODEL_FAMILIES.items()}
    if len(set(map(str, values.values()))) == 1:
        return f"default: {default}"
    return "default: " + ", ".join(f"{m} {v}" for m, v in values.items())


def add_config_arguments(parser: argparse.ArgumentParser, names: Sequence[str], config: type = LinkPredConfig,
                         defaults: Optional[Dict[str, Any]] = None, default_texts: Optional[Dict[str, str]] = None,
                         **help_overrides: str) -> None:
    """Add a ``--flag`` per setting in :obj:`names` of :obj:`config`, with
    the field's type, choices and help; every flag defaults to ``None``,
    which leaves the setting at the model's preset (the help lists it), or
    to its value in :obj:`defaults` where a command has its own;
    :obj:`default_texts` words the default of a flag whose ``None`` the
    command resolves itself."""
    by_name = {f.name: f for f in fields(config)}
    defaults, default_texts = defaults or {}, default_texts or {}
    for name in names:
        f = by_name[name]
        meta, flag = f.metadata, "--" + name.replace("_", "-")
        help_text = help_overrides.get(name, meta["help"])
        if name in default_texts:
            help_text += f" (default: {default_texts[name]})"
        elif name in defaults:
            help_text += f" (default: {defaults[name]})"
        elif config is LinkPredConfig:
            help_text += f" ({_preset_text(name)})"
        elif f.default is not MISSING:
            help_text += f" (default: {f.default})"
        default = defaults.get(name)
        if setting_type(f) is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        parser.add_argument(flag, type=setting_type(f), default=default, choices=meta.get("choices"), help=help_text)
