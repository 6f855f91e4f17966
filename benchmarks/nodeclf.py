"""Node classification against embedding size: ``python -m benchmarks.nodeclf``.

Two parts, on Planetoid's public split (140/500/1000 nodes):

* ``probe``: frozen embeddings from every size-choosing method of
  :mod:`benchmarks.linkpred` (the same runs: GAE/VGAE trained on the
  link-prediction split), probed with scikit-learn logistic regression
  fitted on the train nodes, its ``C`` tuned on val, scored on test
  (:func:`damgraph.probe.linear_probe`);
* ``supervised``: a GCN (Kipf and Welling, 2017) whose hidden layer is fixed
  at each width (``gcn-fixed``) or DAM-gated from the largest width over a
  lambda grid (``gcn-dam``), test accuracy at the best validation epoch.

One row per run in ``OUT/nodeclf.csv`` (column ``acc``: probe or test
accuracy; ``width``: the width used), stored as each finishes and
skipped by a re-run; ``OUT/nodeclf.json`` (configuration, versions),
``OUT/nodeclf.md`` (mean ± std table and a summary per part) and
``OUT/nodeclf.png`` (accuracy against width, one line per method).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Sequence

from benchmarks import plan as linkpred_plan
from benchmarks.curves import format_summary, plot_curves, summary
from benchmarks.sizing import model_unit
from benchmarks.store import ResultFileError, has_value, read_rows
from benchmarks.sweep import (add_sweep_arguments, finish_sweep, parallel_options, refuse_repeats, run_sweep,
                              settings_or_usage_error, start_sweep)
from damgraph.config import NodeClfConfig, add_config_arguments, config_id
from damgraph.settings import with_settings
from damgraph.datasets import load_dataset
from damgraph.nodeclf import train_node_classifier

PARTS = ("probe", "supervised")
KEYS = ("dataset", "part", "model", "method", "dim", "seed", "lam", "config_id")
GROUP = ("dataset", "part", "model", "method", "dim", "lam")
METRICS = ("width", "acc", "val_acc", "epochs", "train_s")
GCN_LAMBDA_GRID = (0.02, 0.05, 0.1)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.nodeclf",
        description="Node classification against embedding size: a linear probe of every method's frozen "
                    "embeddings, and supervised GCNs with a fixed or DAM-gated hidden width.",
        epilog="example: python -m benchmarks.nodeclf --quick --out results/nc",
    )
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    add_config_arguments(p, ("model",), defaults={"model": "gae"},
                         model="the autoencoder whose embeddings the probe reads")
    linkpred_plan.add_method_arguments(p)
    p.add_argument("--gcn-lams", nargs="+", type=float, default=list(GCN_LAMBDA_GRID),
                   help="DAM penalty weights of the supervised GCN "
                        f"(default: {' '.join(f'{v:g}' for v in GCN_LAMBDA_GRID)})")
    p.add_argument("--reuse-linkpred", default=None, metavar="CSV",
                   help="a linkpred.csv whose runs (same settings) become the probe part's rows instead of "
                        "being trained again")
    p.add_argument("--out", default="results/nodeclf", help="output folder (default: results/nodeclf)")
    add_sweep_arguments(p)
    add_config_arguments(p, linkpred_plan.TRAINING_FLAGS, epochs="most epochs of both parts",
                         patience="stop after this many epochs without a better validation score (both parts)",
                         beta_lr="learning rate of DAM's beta (both parts)", device="cpu, cuda or cuda:N (both parts)")
    p.set_defaults(seeds=None)  # linkpred_plan.finish_arguments fills it in
    args = p.parse_args(argv)
    linkpred_plan.finish_arguments(p, args)
    refuse_repeats(p, args, ("parts", "gcn_lams"))
    gcn = settings_or_usage_error(p, lambda: gcn_config(args))
    settings_or_usage_error(p, lambda: [with_settings(gcn, lam=lam) for lam in args.gcn_lams], "--gcn-lams")
    settings_or_usage_error(p, lambda: [with_settings(gcn, hidden=h) for h in args.dims], "--dims")
    args.parallel = parallel_options(p, args, "nodeclf")
    return args


def gcn_config(args: argparse.Namespace) -> NodeClfConfig:
    """The supervised part's settings: Kipf and Welling's, with the flags
    both parts share on top."""
    return with_settings(NodeClfConfig(), epochs=args.epochs, patience=args.patience, beta_lr=args.beta_lr,
                         device=args.device)


def probe_row(row: dict) -> dict:
    """A link-prediction row as a probe row: accuracy and its validation."""
    return {**row, "part": "probe", "acc": row.get("probe_acc"), "val_acc": row.get("probe_val_acc")}


def import_probe_rows(source: Path, target: Path, plan: Sequence[dict]) -> int:
    """Copy the runs of :obj:`source` (a ``linkpred.csv``) that the plan's
    probe part asks for, with the same settings (``config_id``), into
    :obj:`target`, unless already there; returns how many."""
    from benchmarks.store import row_problem, write_csv

    if not source.is_file():
        raise FileNotFoundError(f"--reuse-linkpred {source}: no such file; give the linkpred.csv of a finished sweep")
    key = lambda r: tuple(str(r[k]) for k in KEYS)  # noqa: E731
    wanted = {key(e) for e in plan if e["part"] == "probe"}
    rows = read_rows(target)
    have = {key(r) for r in rows}
    new = [probe_row(r) for r in read_rows(source)
           if has_value(r, "probe_acc") and row_problem(r, linkpred_plan.KEYS, linkpred_plan.METRICS) is None]
    new = [r for r in new if key(r) in wanted and key(r) not in have]
    if new:
        write_csv(target, rows + new)
        print(f"imported {len(new)} probe run(s) from {source}")
    return len(new)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    lp_base = linkpred_plan.base_config(args)
    gcn_base = gcn_config(args)

    def load(name: str) -> Dict[str, object]:
        # The probe's autoencoders read the features as the files hold them (the GAE protocol);
        # the supervised GCN reads them row-normalised (Kipf and Welling).
        return {"raw": load_dataset(name, root=args.data_root, normalize_features=False)[0],
                "normalized": load_dataset(name, root=args.data_root, normalize_features=True)[0]}

    try:
        if args.reuse_linkpred:  # a file that cannot be read stops the sweep before anything is written
            read_rows(Path(args.reuse_linkpred))
        data = start_sweep("nodeclf", args, {"probe": lp_base, "supervised": gcn_base}, argv, load)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    plan: List[dict] = []
    if "probe" in args.parts:
        plan += [{**entry, "part": "probe"} for entry in linkpred_plan.sweep_plan(args, lp_base)]
    if "supervised" in args.parts:
        cid = config_id(gcn_base, ("hidden", "seed", "dam", "lam"))
        largest = max(args.dims)
        plan += [{"dataset": d, "part": "supervised", "model": "gcn", "method": m, "dim": h, "seed": s,
                  "lam": lam, "config_id": cid}
                 for d in args.datasets for s in args.seeds for m in ("gcn-fixed", "gcn-dam")
                 for h in ([largest] if m == "gcn-dam" else args.dims)
                 for lam in (args.gcn_lams if m == "gcn-dam" else [0.0])]
    probe_run = linkpred_plan.sweep_runner(args, lp_base, {name: d["raw"] for name, d in data.items()})

    def run(entry: dict) -> dict:
        if entry["part"] == "probe":
            row = probe_row(probe_run(entry))
            return {k: v for k, v in row.items() if k not in entry}
        config = replace(gcn_base, hidden=entry["dim"], seed=entry["seed"], dam=entry["method"] == "gcn-dam",
                         lam=entry["lam"])
        row = train_node_classifier(data[entry["dataset"]]["normalized"], config).row()
        row = {**row, "acc": row["test_acc"]}
        return {k: v for k, v in row.items() if k not in entry}

    out = Path(args.out)
    if args.reuse_linkpred:
        try:
            import_probe_rows(Path(args.reuse_linkpred), out / "nodeclf.csv", plan)
        except (OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    try:
        rows = run_sweep(out / "nodeclf.csv", plan, run, KEYS, quiet=args.quiet, numeric=METRICS,
                         parallel=args.parallel, unit=model_unit)
    except ResultFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    plot_curves(rows, "acc", out / "nodeclf.png", "node classification on the public split (probe and GCN)")
    tables = []
    for part, reference in (("probe", "fixed"), ("supervised", "gcn-fixed")):
        part_rows = [r for r in rows if r["part"] == part]
        if part_rows:
            tables.append(f"{part}:\n\n" + format_summary(summary(part_rows, "acc", reference), "accuracy"))
    finish_sweep("nodeclf", out, rows, GROUP, METRICS, tables, ["nodeclf.png"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
