"""Supervised node classification against hidden width: ``python -m benchmarks.nodeclf``.

A GCN (Kipf and Welling, 2017) on Planetoid's public split, its hidden layer
either DAM-gated from a starting width (``dam``) or fixed at each width
(``fixed``); test accuracy at the best validation epoch. Outputs as in
:mod:`benchmarks.linkpred`: ``OUT/nodeclf.csv``, ``.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from benchmarks.common import (add_sweep_arguments, check_sweep_arguments, config_id, finish_sweep,
                               run_sweep, start_sweep)
from damgraph.datasets import load_dataset
from damgraph.nodeclf import NodeClfConfig, train_node_classifier

METHODS = ("fixed", "dam")
KEYS = ("dataset", "method", "hidden", "seed", "lam", "config_id")
GROUP = ("dataset", "method", "hidden", "lam")
METRICS = ("hidden_width", "test_acc", "val_acc", "epochs", "train_s")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = NodeClfConfig()
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.nodeclf",
        description="Node classification accuracy of a DAM-gated GCN against fixed-width GCNs.",
        epilog="example: python -m benchmarks.nodeclf --datasets cora --seeds 0 1 2 --out results/nc",
    )
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--hidden", nargs="+", type=int, default=[16, 64],
                   help="fixed: each hidden width; dam: each starting width (default: 16 64)")
    p.add_argument("--out", default="results/nodeclf", help="output folder (default: results/nodeclf)")
    add_sweep_arguments(p, defaults)
    args = p.parse_args(argv)
    check_sweep_arguments(p, args, "hidden")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = NodeClfConfig(epochs=args.epochs, patience=args.patience, beta_lr=args.beta_lr, device=args.device)
    try:
        data = start_sweep("nodeclf", args, base, argv, lambda name: load_dataset(
            name, root=args.data_root, normalize_features=True)[0])
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    def run(entry: dict) -> dict:
        config = replace(base, hidden=entry["hidden"], seed=entry["seed"], dam=entry["method"] == "dam",
                         lam=entry["lam"])
        return {k: v for k, v in train_node_classifier(data[entry["dataset"]], config).row().items()
                if k not in entry}

    cid = config_id(base, ("hidden", "seed", "dam", "lam"))
    plan = [{"dataset": d, "method": m, "hidden": h, "seed": s, "lam": lam, "config_id": cid}
            for d in args.datasets for s in args.seeds for m in args.methods for h in args.hidden
            for lam in (args.lam if m == "dam" else [0.0])]
    out = Path(args.out)
    rows = run_sweep(out / "nodeclf.csv", plan, run, KEYS, quiet=args.quiet)
    finish_sweep("nodeclf", out, rows, GROUP, METRICS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
