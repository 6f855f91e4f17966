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
from pathlib import Path
from typing import Dict, Sequence

from benchmarks.curves import format_summary, format_validation_choice, plot_curves, summary, validation_choice
from benchmarks.plan import (GROUP, KEYS, METRICS, NORMALIZED_FEATURES, TRAINING_FLAGS, add_features_argument,
                             add_method_arguments, base_config, dataset_configs, finish_arguments, load_for_sweep,
                             protocol_note, sweep_plan, sweep_runner)
from benchmarks.sizing import model_unit, penalised
from benchmarks.store import ResultFileError, has_value
from benchmarks.sweep import add_sweep_arguments, finish_sweep, parallel_options, run_sweep, start_sweep
from damgraph.config import add_config_arguments


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.linkpred",
        description="Link prediction (AUC/AP) of DAM against fixed-size GAE/VGAE on the standard "
                    "85/5/10 edge split.",
        epilog="example: python -m benchmarks.linkpred --datasets cora --seeds 0 1 --out results/lp",
    )
    add_config_arguments(p, ("model",), defaults={"model": "gae"})
    add_method_arguments(p)
    p.add_argument("--out", default="results/linkpred", help="output folder (default: results/linkpred)")
    add_features_argument(p)
    add_sweep_arguments(p)
    add_config_arguments(p, TRAINING_FLAGS)
    p.set_defaults(seeds=None)  # finish_arguments fills it in
    args = p.parse_args(argv)
    finish_arguments(p, args)
    args.parallel = parallel_options(p, args, "linkpred")
    return args


#: ``--features``: the value of ``load_dataset``'s ``normalize_features``.
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = base_config(args)
    try:
        normalized: Dict[str, bool] = {}
        data = start_sweep("linkpred", args, base, argv,
                           lambda name: load_for_sweep(name, args.data_root, args.features, normalized))
    except (OSError, ValueError) as err:  # DatasetNotFoundError is an OSError
        print(f"error: {err}", file=sys.stderr)
        return 2

    for name, (_, applied) in dataset_configs(args, base).items():
        if applied:
            print(protocol_note(name, applied), file=sys.stderr)
    plan = sweep_plan(args, base)
    for entry in plan:  # normalised features: runs of their own
        entry["config_id"] += NORMALIZED_FEATURES if normalized[entry["dataset"]] else ""
    out = Path(args.out)
    try:
        rows = run_sweep(out / "linkpred.csv", plan, sweep_runner(args, base, data), KEYS,
                         quiet=args.quiet, numeric=METRICS, parallel=args.parallel, unit=model_unit)
    except ResultFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    plot_curves(rows, "test_auc", out / "linkpred.png", f"link prediction, {args.model.upper()}")
    tables, figures = [format_summary(summary(rows, "test_auc"), "test AUC")], ["linkpred.png"]
    if any(has_value(row, "probe_acc") for row in rows):  # datasets with node labels
        plot_curves(rows, "probe_acc", out / "probe.png",
                    f"linear probe of the {args.model.upper()} embeddings (public split)")
        tables.append(format_summary(summary(rows, "probe_acc"), "node-classification probe accuracy"))
        figures.append("probe.png")
    if any(has_value(row, "test_hits@20") for row in rows):
        tables.append(format_summary(summary(rows, "test_hits@20"), "test Hits@20"))
    if any(row["method"] in penalised() for row in rows):
        tables.append("The penalty weight chosen on each seed by validation (never test), and what it gives:\n\n"
                      + format_validation_choice(validation_choice(rows)))
    finish_sweep("linkpred", out, rows, GROUP, METRICS, tables, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
