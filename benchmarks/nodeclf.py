"""Supervised node classification against hidden width: ``python -m benchmarks.nodeclf``.

A GCN (Kipf and Welling, 2017) on Planetoid's public split, its hidden layer
either DAM-gated from a starting width (``dam``) or fixed at each width
(``fixed``); test accuracy at the best validation epoch. Outputs as in
:mod:`benchmarks.linkpred`: ``OUT/nodeclf.csv``, ``.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

from benchmarks.common import environment, prepare_out, report, run_sweep, write_json
from damgraph.datasets import DATA_ENV, load_dataset
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
    p.add_argument("--datasets", nargs="+", default=["cora", "citeseer"], help="cora, citeseer, pubmed")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--hidden", nargs="+", type=int, default=[16, 64],
                   help="fixed: each hidden width; dam: each starting width (default: 16 64)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--patience", type=int, default=defaults.patience)
    p.add_argument("--lam", type=float, default=defaults.lam, help="DAM penalty weight lambda")
    p.add_argument("--beta-lr", type=float, default=defaults.beta_lr, help="learning rate of the DAM betas")
    p.add_argument("--data-root", default=None, help=f"data root (default: ${DATA_ENV}, else data/)")
    p.add_argument("--out", default="results/nodeclf", help="output folder (default: results/nodeclf)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for name in ("epochs", "patience"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if min(args.hidden) < 1:
        p.error("--hidden must be positive")
    if args.lam < 0:
        p.error("--lam must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    base = NodeClfConfig(epochs=args.epochs, patience=args.patience, lam=args.lam, beta_lr=args.beta_lr)
    config_id = "|".join(f"{k}={v}" for k, v in sorted(asdict(base).items())
                         if k not in ("hidden", "seed", "dam", "lam"))
    try:
        prepare_out(out)
        data = {name: load_dataset(name, root=args.data_root, normalize_features=True)[0]
                for name in args.datasets}
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_json(out / "nodeclf.json", {
        "command": "python -m benchmarks.nodeclf " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args), "config": asdict(base), "environment": environment()})

    def run(entry: dict) -> dict:
        config = replace(base, hidden=entry["hidden"], seed=entry["seed"], dam=entry["method"] == "dam")
        row = train_node_classifier(data[entry["dataset"]], config).row()
        for k in ("lam", "hidden", "seed"):
            row.pop(k)
        return row

    plan = [{"dataset": d, "method": m, "hidden": h, "seed": s,
             "lam": args.lam if m == "dam" else 0.0, "config_id": config_id}
            for d in args.datasets for s in args.seeds for m in args.methods for h in args.hidden]
    rows = run_sweep(out / "nodeclf.csv", plan, run, KEYS, quiet=args.quiet)
    print(report(out, "nodeclf", rows, GROUP, METRICS))
    print(f"\nwrote {out / 'nodeclf.csv'}, {out / 'nodeclf.md'}, {out / 'nodeclf.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
