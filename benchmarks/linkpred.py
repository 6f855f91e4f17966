"""Link prediction against embedding size: ``python -m benchmarks.linkpred``.

Every method trains on the same split per (dataset, seed). One row per run
goes to ``OUT/linkpred.csv`` as the run finishes (an interrupted sweep keeps
its finished runs, and a re-run with the same settings skips them); the
configuration and library versions go to ``OUT/linkpred.json``; a mean ± std
table per dataset/model/method/dim to the terminal and ``OUT/linkpred.md``.

Methods (how the embedding size is chosen) live in :mod:`benchmarks.sizing`,
one module each.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple


from benchmarks.common import (add_sweep_arguments, check_sweep_arguments, config_id, finish_sweep,
                               run_sweep, start_sweep)
from damgraph.datasets import load_dataset
from benchmarks.curves import format_summary, plot_curves, summary
from benchmarks.sizing import LAMBDA_GRIDS, METHODS, Job, Split
from damgraph.encoders import ACTIVATIONS, CONVS
from damgraph.masking import MASKINGS
from damgraph.models import DECODERS, MODELS
from damgraph.linkpred import LinkPredConfig, model_config, split_edges

# What identifies a run in the CSV; config_id holds every other setting.
KEYS = ("dataset", "model", "method", "dim", "seed", "lam", "config_id")
GROUP = ("dataset", "model", "decoder", "method", "dim", "lam")
METRICS = ("active_dim", "test_auc", "test_ap", "test_hits@20", "test_mrr", "val_auc", "probe_acc", "epochs",
           "train_s")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = LinkPredConfig()
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.linkpred",
        description="Link prediction (AUC/AP) of DAM against fixed-size GAE/VGAE on the standard "
                    "85/5/10 edge split.",
        epilog="example: python -m benchmarks.linkpred --datasets cora --seeds 0 1 --out results/lp",
    )
    p.add_argument("--model", choices=list(MODELS), default=defaults.model)
    add_method_arguments(p)
    p.add_argument("--mask-hidden", action="store_true", help="gate the hidden layer with DAM too")
    p.add_argument("--out", default="results/linkpred", help="output folder (default: results/linkpred)")
    add_sweep_arguments(p, defaults)
    add_training_arguments(p)
    p.set_defaults(lam=None, seeds=list(DEFAULT_SEEDS))
    args = p.parse_args(argv)
    if args.quick:
        apply_quick(args)
    apply_model_grids(args)
    check_sweep_arguments(p, args, "dims")
    check_training_arguments(p, args)
    return args


def check_training_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Out-of-range training options get argparse's usage error (exit 2)."""
    for name in ("dropout", "decoder_dropout"):
        value = getattr(args, name)
        if value is not None and not 0.0 <= value < 1.0:
            p.error(f"--{name.replace('_', '-')} must be in [0, 1)")
    if args.mask_ratio is not None and not 0.0 < args.mask_ratio < 1.0:
        p.error("--mask-ratio must be in (0, 1)")
    for name in ("hidden", "decoder_hidden"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("degree_weight", "weight_decay", "grad_clip"):
        value = getattr(args, name)
        if value is not None and value < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")


#: The flags that override a model's settings (``None``: the model's setting).
TRAINING_FLAGS = ("patience", "decoder", "decoder_hidden", "decoder_dropout", "conv", "masking", "mask_ratio", "degree_weight",
                  "dropout", "hidden", "batch_norm", "activation", "lr", "weight_decay", "grad_clip", "epochs")


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """Encoder, decoder, masking and optimiser options; unset, each takes the
    model's setting (:data:`~damgraph.linkpred.MODEL_SETTINGS`, else
    :class:`LinkPredConfig`'s)."""
    p.set_defaults(epochs=None, patience=None)
    p.add_argument("--decoder", choices=list(DECODERS), default=None,
                   help="edge decoder: inner product, or an MLP on z_i * z_j (gae/vgae: inner; maskgae: mlp)")
    p.add_argument("--decoder-hidden", type=int, default=None, help="hidden units of the MLP decoder")
    p.add_argument("--decoder-dropout", type=float, default=None, help="dropout on the MLP decoder's input")
    p.add_argument("--conv", choices=list(CONVS), default=None, help="encoder layers (default: gcn)")
    p.add_argument("--masking", choices=list(MASKINGS), default=None,
                   help="maskgae: hide random edges, or the edges of random walks (default: path)")
    p.add_argument("--mask-ratio", type=float, default=None,
                   help="maskgae: fraction of edges hidden (edge) or of nodes starting a walk (path); default 0.7")
    p.add_argument("--degree-weight", type=float, default=None,
                   help="maskgae: weight of the degree-regression head (0: none; default 0.002)")
    p.add_argument("--dropout", type=float, default=None, help="encoder dropout (gae: 0; maskgae: 0.5)")
    p.add_argument("--hidden", type=int, default=None, help="encoder hidden width (gae: 2 x dim; maskgae: 128)")
    p.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="batch norm in the encoder (maskgae: on)")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default=None, help="relu (gae) or elu (maskgae)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.01)")
    p.add_argument("--weight-decay", type=float, default=None, help="Adam weight decay (gae: 0; maskgae: 5e-5)")
    p.add_argument("--grad-clip", type=float, default=None, help="gradient-norm clipping (gae: none; maskgae: 1)")


#: DAM penalty grids per model where they differ from :data:`LAMBDA_GRIDS`:
#: maskgae's one value from a Cora seed-0 scan from 128 dimensions (0.01/0.03/
#: 0.1/0.3 -> widths 98/53/28/15, validation AUC 0.959/0.952/0.951/0.949;
#: docs/results/maskgae-selection): the largest lam that kept validation AUC
#: within 0.01 of the widest model's.
MODEL_DAM_GRIDS: Dict[str, Sequence[float]] = {"maskgae": (0.1,)}


def apply_model_grids(args: argparse.Namespace) -> None:
    """``--lam`` unset: the model's DAM grid."""
    if args.lam is None:
        args.lam = list(MODEL_DAM_GRIDS.get(args.model, LAMBDA_GRIDS["dam"]))


def model_settings(args: argparse.Namespace) -> Dict[str, object]:
    """The training settings :obj:`args` sets (the rest: the model's, :data:`MODEL_SETTINGS`)."""
    return {k: getattr(args, k) for k in TRAINING_FLAGS if getattr(args, k, None) is not None}


DEFAULT_DIMS = (2, 4, 8, 16, 32, 64, 128)
DEFAULT_SEEDS = (0, 1, 2)


def add_method_arguments(p: argparse.ArgumentParser) -> None:
    """The options that choose the methods, sizes and penalty grids (shared
    with :mod:`benchmarks.nodeclf`'s probe part)."""
    grid = lambda name: " ".join(f"{v:g}" for v in LAMBDA_GRIDS[name])  # noqa: E731
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                   help="fixed: a model per size; dam / l1 / l0: DAM / L1-scaled / hard-concrete L0 gates "
                        "from the largest size, one run per penalty weight; pca: one model at the largest "
                        "size, projected to each; matryoshka: one model trained on nested prefixes; "
                        "spectral: normalised-adjacency eigenvectors (default: all)")
    p.add_argument("--dims", nargs="+", type=int, default=list(DEFAULT_DIMS),
                   help="embedding sizes; the gated methods start from the largest "
                        f"(default: {' '.join(map(str, DEFAULT_DIMS))})")
    p.add_argument("--lam", nargs="+", type=float, default=None,
                   help="penalty weights of the dam method (default: gae/vgae "
                        f"{grid('dam')}; maskgae {' '.join(f'{v:g}' for v in MODEL_DAM_GRIDS['maskgae'])})")
    p.add_argument("--l1-lam", nargs="+", type=float, default=list(LAMBDA_GRIDS["l1"]),
                   help=f"penalty weights of the l1 method (default: {grid('l1')})")
    p.add_argument("--l0-lam", nargs="+", type=float, default=list(LAMBDA_GRIDS["l0"]),
                   help=f"penalty weights of the l0 method (default: {grid('l0')})")
    p.add_argument("--quick", action="store_true",
                   help="a small but meaningful sweep in about 2 minutes: Cora, seeds 0 1, dims 4 16 64, "
                        "every method, 200 epochs, patience 50")


def apply_quick(args: argparse.Namespace) -> None:
    args.datasets, args.seeds, args.dims = ["cora"], [0, 1], [4, 16, 64]
    args.methods, args.epochs, args.patience = list(METHODS), 200, 50


def sweep_plan(args: argparse.Namespace, cid: str) -> List[dict]:
    """One entry per run: ``fixed``, ``pca``, ``matryoshka`` and ``spectral``
    at every size; the gated methods (``dam``, ``l1``, ``l0``) from the
    largest size, once per penalty weight of their grid."""
    grids = {"dam": args.lam, "l1": args.l1_lam, "l0": args.l0_lam}
    largest = max(args.dims)
    return [{"dataset": d, "model": args.model, "method": m, "dim": dim, "seed": s, "lam": lam, "config_id": cid}
            for d in args.datasets for s in args.seeds for m in args.methods
            for dim in ([largest] if m in grids else args.dims) for lam in grids.get(m, [0.0])]


def base_config(args: argparse.Namespace) -> LinkPredConfig:
    return model_config(args.model, beta_lr=args.beta_lr, mask_hidden=args.mask_hidden,
                        device=args.device, **model_settings(args))


def sweep_runner(args: argparse.Namespace, base: LinkPredConfig, data: Dict[str, object]) -> Callable[[dict], dict]:
    """The function :func:`~benchmarks.common.run_sweep` calls per entry:
    the entry's method on the (dataset, seed) split, splits and shared
    models cached across entries."""
    splits: Dict[Tuple[str, int], Split] = {}
    cache: Dict = {}

    def run(entry: dict) -> dict:
        name, seed = entry["dataset"], entry["seed"]
        if (name, seed) not in splits:
            splits[(name, seed)] = split_edges(data[name], seed)
        config = replace(base, dim=entry["dim"], seed=seed, lam=entry["lam"])
        job = Job(splits[(name, seed)], config, args.dims, name, cache)
        return {k: v for k, v in METHODS[entry["method"]](job).items() if k not in entry}

    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = base_config(args)
    try:
        data = start_sweep("linkpred", args, base, argv, lambda name: load_dataset(name, root=args.data_root)[0])
    except (OSError, ValueError) as err:  # DatasetNotFoundError is an OSError
        print(f"error: {err}", file=sys.stderr)
        return 2

    cid = config_id(base, ("dim", "seed", "gate", "lam"))
    out = Path(args.out)
    rows = run_sweep(out / "linkpred.csv", sweep_plan(args, cid), sweep_runner(args, base, data), KEYS,
                     quiet=args.quiet)
    plot_curves(rows, "test_auc", out / "linkpred.png", f"link prediction, {args.model.upper()}")
    plot_curves(rows, "probe_acc", out / "probe.png",
                f"linear probe of the {args.model.upper()} embeddings (public split)")
    tables = [format_summary(summary(rows, "test_auc"), "test AUC"),
              format_summary(summary(rows, "probe_acc"), "node-classification probe accuracy")]
    finish_sweep("linkpred", out, rows, GROUP, METRICS, tables, ["linkpred.png", "probe.png"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
