"""The link-prediction sweep's plan, shared by :mod:`benchmarks.linkpred` and
the probe part of :mod:`benchmarks.nodeclf`: what identifies a run, the
options that choose methods, sizes and penalty weights, the checks of a
sweep's settings, one entry per run, and the function that runs an entry."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Callable, Dict, List, Sequence, Tuple

from benchmarks.sizing import METHODS, Job, Split, penalties
from benchmarks.sweep import refuse_repeats, settings_or_usage_error
from damgraph.config import LinkPredConfig, config_id, gateless, model_config
from damgraph.settings import settings_from_args, with_settings
from damgraph.datasets import DATASETS, load_dataset
from damgraph.runtime import resolve_device
from damgraph.splits import link_split


# What identifies a run in the CSV; config_id holds every other setting.
KEYS = ("dataset", "model", "method", "dim", "seed", "lam", "config_id")


GROUP = ("dataset", "model", "decoder", "method", "dim", "lam")


METRICS = ("width", "test_auc", "test_ap", "test_hits@20", "test_mrr", "val_auc", "val_hits@20", "probe_acc", "epochs",
           "train_s")


#: The settings of a run that vary within a sweep (the rest: config_id).
PER_RUN = ("dim", "seed", "gate", "lam")


#: The training settings the harness takes as flags; unset, each is the model's preset.
TRAINING_FLAGS = ("epochs", "patience", "min_epochs", "val_window", "val_tolerance", "val_min_delta", "val_metric",
                  "pos_batch_size", "inputs", "lr", "beta_lr", "gate_alpha", "gate_delay", "settle", "rewind",
                  "weight_decay", "grad_clip", "hidden", "num_layers", "dropout", "conv", "batch_norm", "activation",
                  "gate_hidden", "decoder", "decoder_hidden", "decoder_dropout", "masking", "mask_ratio", "walk_length",
                  "degree_weight", "device", "dropout_input", "gate_inputs", "val_every", "input_dim", "tie_widths",
                  "decoder_dropout_at", "clip_per_part", "rewind_epochs", "rewind_gains", "penalty_edges")


def finish_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Apply ``--quick`` and the model's DAM grid, and check every run's
    settings up front (argparse's usage error, exit code 2)."""
    defaults = QUICK if args.quick else dict(datasets=["cora", "citeseer"], seeds=list(DEFAULT_SEEDS),
                                               dims=list(DEFAULT_DIMS), methods=list(METHODS))
    for name, value in defaults.items():  # flags given explicitly win
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.lams is None:
        args.lams = list(dam_grid(args.model))
    if args.prefix_lams is None:
        args.prefix_lams = [min(args.lams)]
    flags = [penalty.flag for penalty in penalties()]
    refuse_repeats(p, args, ("datasets", "seeds", "dims", "methods", *flags))
    base = settings_or_usage_error(p, lambda: base_config(args))
    settings_or_usage_error(p, lambda: resolve_device(base.device))  # asked for, but is it here?
    settings_or_usage_error(p, lambda: [with_settings(base, dim=d) for d in args.dims], "--dims")
    for penalty in penalties():
        settings_or_usage_error(p, lambda: [with_settings(base, lam=lam) for lam in getattr(args, penalty.flag)],
                                penalty.option)
    settings_or_usage_error(p, lambda: [with_settings(base, seed=s) for s in args.seeds], "--seeds")


def dam_grid(model: str) -> Sequence[float]:
    """The dam method's default penalty weight: the model preset's one
    ``lam`` (one default run per seed; ``--lams`` gives a grid)."""
    return (model_config(model).lam,)


DEFAULT_DIMS = (2, 4, 8, 16, 32, 64, 128)


DEFAULT_SEEDS = (0, 1, 2)


def add_method_arguments(p: argparse.ArgumentParser) -> None:
    """The options that choose the methods, sizes and penalty grids (shared
    with :mod:`benchmarks.nodeclf`'s probe part)."""
    p.add_argument("--methods", nargs="+", default=None, choices=list(METHODS),
                   help="; ".join(f"{m.name}: {m.help}" for m in METHODS.values()) + " (default: all)")
    p.add_argument("--dims", nargs="+", type=int, default=None,
                   help="embedding sizes; the gated methods start from the largest "
                        f"(default: {' '.join(map(str, DEFAULT_DIMS))})")
    for penalty in penalties():
        default = f" (default: {' '.join(f'{v:g}' for v in penalty.grid)})" if penalty.grid is not None else ""
        p.add_argument(penalty.option, nargs="+", type=float, default=list(penalty.grid or []) or None,
                       help=penalty.help + default)
    p.add_argument("--quick", action="store_true",
                   help="a small but meaningful sweep (about 3 minutes on 2 cores): Cora, seeds 0 1, dims 4 16 64, "
                        "every method, 200 epochs, patience 50; flags given beside it win")


#: ``--quick``'s settings, where the flags do not set them.
QUICK = dict(datasets=["cora"], seeds=[0, 1], dims=[4, 16, 64], methods=list(METHODS), epochs=200, patience=50)


#: What a run on row-normalised features adds to its config id.
NORMALIZED_FEATURES = "|features=normalized"
#: ``--features``: the dataset entry's decision (``auto``), the features as
#: they are (``raw``) or row-normalised (``normalized``).
FEATURE_CHOICES = {"auto": None, "raw": False, "normalized": True}


def add_features_argument(p: argparse.ArgumentParser) -> None:
    """``--features``, read by :func:`load_for_sweep`."""
    p.add_argument("--features", choices=list(FEATURE_CHOICES), default="auto",
                   help="node features: row-normalised where their rows' mean mass exceeds 50 (auto: Photo and CS, "
                        "whose dense rows saturate the GAE's first steps; not Cora or CiteSeer, whose binary features "
                        "the GAE paper uses as they are), or as they are (raw), or row-normalised (normalized); "
                        "normalised runs get their own config id (default: auto)")


def load_for_sweep(name: str, root, features: str, normalized: Dict[str, bool]):
    """Dataset :obj:`name`'s graph with ``--features`` :obj:`features` (a
    :data:`FEATURE_CHOICES` key) applied: the decision printed where the
    data made it, and kept in :obj:`normalized` (a run on normalised
    features adds :data:`NORMALIZED_FEATURES` to its config id)."""
    dataset = load_dataset(name, root=root, normalize_features=FEATURE_CHOICES[features])
    note = getattr(dataset, "feature_note", None)
    if note:
        print(f"{note}; --features raw keeps them as they are", file=sys.stderr)
    normalized[name] = features == "normalized" or note is not None
    return dataset[0]


def run_id(config: LinkPredConfig, method: str) -> str:
    """The config id of a run of :obj:`method` with :obj:`config`: every
    setting but the per-run ones (:data:`PER_RUN`), the gate settings left
    at their neutral values for the methods without a gate
    (not :attr:`~benchmarks.sizing.SizingMethod.gated`), whose models they do not change, and with
    the settings the method fixes (:attr:`~benchmarks.sizing.SizingMethod.settings`)."""
    config = replace(config, **METHODS[method].settings)
    return config_id(config if METHODS[method].gated else gateless(config), PER_RUN)


def dataset_config(base: LinkPredConfig, dataset: str, given: Sequence[str] = ()) -> Tuple[LinkPredConfig, Dict]:
    """:obj:`base` with the settings that :obj:`dataset`'s protocol fixes
    (:attr:`~damgraph.datasets.DatasetEntry.protocol`), each where no flag
    in :obj:`given` sets it and the model takes it (MaskGAE trains on its
    masked edges, not on mini-batches of them); and those it changed. A
    name that is not registered (a graph file) has no protocol."""
    config, applied = base, {}
    entry = DATASETS.get(dataset.lower())
    for name, value in (entry.protocol if entry else {}).items():
        if name in given or getattr(config, name) == value:
            continue
        try:
            config = with_settings(config, **{name: value})
        except ValueError:  # a setting this model refuses
            continue
        applied[name] = value
    return config, applied


def dataset_configs(args: argparse.Namespace, base: LinkPredConfig) -> Dict[str, Tuple[LinkPredConfig, Dict]]:
    """Each of ``--datasets``' :func:`dataset_config` under the flags given."""
    given = list(settings_from_args(args, TRAINING_FLAGS))
    return {d: dataset_config(base, d, given) for d in args.datasets}


def protocol_note(dataset: str, applied: Dict) -> str:
    """One line naming the settings :obj:`dataset`'s protocol set (``applied``) and the flags that override them."""
    flags = ", ".join("--" + name.replace("_", "-") for name in applied)
    return (f"{dataset}: " + ", ".join(f"{k} {v}" for k, v in applied.items())
            + f" (the dataset's protocol); {flags} override")


def sweep_plan(args: argparse.Namespace, base: LinkPredConfig) -> List[dict]:
    """One entry per run: a method trained once per penalty weight starts
    from the largest size (``dam``, ``l1``, ``l0``); the others give every
    size (``dam-prefix`` and ``dam-nested`` once per ``--prefix-lams``); each
    with its :func:`run_id` on :obj:`base` with its dataset's protocol
    (:func:`dataset_config`)."""
    largest = max(args.dims)
    methods = [METHODS[m] for m in args.methods]
    configs = dataset_configs(args, base)
    return [{"dataset": d, "model": args.model, "method": m.name, "dim": dim, "seed": s, "lam": lam,
             "config_id": run_id(configs[d][0], m.name)}
            for d in args.datasets for s in args.seeds for m in methods
            for dim in ([largest] if m.from_largest else args.dims)
            for lam in (getattr(args, m.penalty.flag) if m.penalty else [0.0])]


def base_config(args: argparse.Namespace) -> LinkPredConfig:
    """The model's preset with the flags set on top (the per-run settings are the entries')."""
    return model_config(args.model, **settings_from_args(args, TRAINING_FLAGS))


def sweep_runner(args: argparse.Namespace, base: LinkPredConfig, data: Dict[str, object]) -> Callable[[dict], dict]:
    """The function :func:`~benchmarks.sweep.run_sweep` calls per entry:
    the entry's method on the (dataset, seed) split, splits and shared
    models cached across entries."""
    splits: Dict[Tuple[str, int], Split] = {}
    cache: Dict = {}
    configs = dataset_configs(args, base)

    def run(entry: dict) -> dict:
        name, seed = entry["dataset"], entry["seed"]
        if (name, seed) not in splits:
            splits[(name, seed)] = link_split(data[name], seed)
        config = replace(configs[name][0], **METHODS[entry["method"]].settings, dim=entry["dim"], seed=seed,
                         lam=entry["lam"])
        job = Job(splits[(name, seed)], config, args.dims, name, cache)
        return {k: v for k, v in METHODS[entry["method"]].run(job).items() if k not in entry}

    return run
