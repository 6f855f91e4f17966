"""Is the learned width the data's or the optimiser's? ``python -m benchmarks.stability``.

One DAM run per dataset and change: the model's preset, then the gates'
learning rate, the weights' learning rate, the epochs and the patience each
4x lower and 4x higher (:data:`CHANGES`). A width that belongs to the data
moves by at most 25% (or 2 units) under every change. ``--schedule joint``
trains the gates as earlier versions did (the paper's alpha 1, no delay, no
settling: gates and model selection together), for comparison. Rows, with
each run's width and beta per epoch, go to ``OUT/stability.csv``; the table
of every stored run of either schedule (as the presets give them today) to ``OUT/stability.md``; beta against epoch, one panel per dataset, to
``OUT/stability.png``.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Sequence

from benchmarks.plan import NORMALIZED_FEATURES, add_features_argument, load_for_sweep
from benchmarks.store import read_rows
from benchmarks.sweep import add_sweep_arguments, parallel_options, run_sweep, start_sweep
from benchmarks.tables import label_axes, panels, save_figure, write_report
from damgraph.config import add_config_arguments, config_id, model_config
from damgraph.linkpred import train_link_prediction
from damgraph.splits import link_split

#: Each change: the settings it multiplies, and by how much.
CHANGES: Dict[str, Dict[str, float]] = {
    "preset": {}, "beta_lr / 4": {"beta_lr": 0.25}, "beta_lr x 4": {"beta_lr": 4},
    "lr / 4": {"lr": 0.25}, "lr x 4": {"lr": 4}, "epochs x 4": {"epochs": 4, "patience": 4},
    "patience / 4": {"patience": 0.25}, "patience x 4": {"patience": 4},
}
#: ``--schedule``: the gate settings of each (``settled``: the presets'; ``joint``: the earlier schedule, with one
#: penalty weight for every graph).
SCHEDULES = {"settled": {}, "joint": {"gate_alpha": 1.0, "gate_delay": 0, "settle": 0, "penalty_edges": 0}}
KEYS = ("dataset", "model", "schedule", "change", "seed", "config_id")
#: A width counts as the data's if no change moves it by more than this share (or by :data:`STABLE_UNITS`).
STABLE_SHARE, STABLE_UNITS = 0.25, 2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stability", description=__doc__.split("\n\n")[0])
    add_config_arguments(p, ("model",), defaults={"model": "gae"})
    p.add_argument("--schedule", choices=list(SCHEDULES), default="settled",
                   help="settled: the presets' gate schedule; joint: gates and selection together, alpha 1")
    p.add_argument("--out", default="results/stability", help="output folder (default: results/stability)")
    add_features_argument(p)
    add_sweep_arguments(p)
    args = p.parse_args(argv)
    args.datasets = args.datasets or ["cora"]
    args.parallel = parallel_options(p, args, "stability")
    return args


def changed(base, change: str):
    """The preset with :obj:`change`'s settings multiplied."""
    return model_config(base.model, **{**{k: getattr(base, k) for k in SCHEDULES["joint"]},
                                       **{k: type(getattr(base, k))(getattr(base, k) * f)
                                          for k, f in CHANGES[change].items()}})


def table(rows: List[dict]) -> str:
    lines = ["| dataset | model | schedule | change | seed | learned width | moved | test AUC | settled epoch | "
             "kept epoch | epochs |", "|" + "---|" * 11]
    for row in rows:
        ref = next(r for r in rows if r["change"] == "preset" and all(
            r[k] == row[k] for k in ("dataset", "model", "schedule", "seed")))
        width, base = int(row["width"]), int(ref["width"])
        moved = abs(width - base) <= max(STABLE_UNITS, STABLE_SHARE * base)
        lines.append(f"| {row['dataset']} | {row['model']} | {row['schedule']} | {row['change']} | {row['seed']} | "
                     f"{width} | {width - base:+d} ({'within' if moved else 'beyond'}) | "
                     f"{float(row['test_auc']):.4f} | {row['settled_epoch'] or '-'} | {row['best_epoch']} | "
                     f"{row['epochs']} |")
    return "\n".join(lines)


def plot(rows: List[dict], path: Path) -> None:
    pairs = sorted({(r["dataset"], r["model"]) for r in rows})  # a panel per dataset and model
    fig, axes = panels(len(pairs), 5, 4.2)
    for ax, (dataset, model) in zip(axes, pairs):
        for row in (r for r in rows if (r["dataset"], r["model"]) == (dataset, model)):
            betas = [float(b) for b in str(row["beta_trajectory"]).split()]
            ax.plot(range(1, len(betas) + 1), betas, label=f"{row['schedule']}: {row['change']} ({row['width']})",
                    color=f"C{list(CHANGES).index(row['change'])}",
                    linestyle="-" if row["schedule"] == "settled" else "--")
        label_axes(ax, f"{dataset}, {model.upper()}", "epoch", "beta (learned width in the legend)", legend_size=6)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = model_config(args.model, **SCHEDULES[args.schedule])
    try:
        normalized: Dict[str, bool] = {}
        data = start_sweep("stability", args, base, argv,
                           lambda name: load_for_sweep(name, args.data_root, args.features, normalized))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    plan = [{"dataset": d, "model": args.model, "schedule": args.schedule, "change": c, "seed": s,
             "config_id": config_id(changed(base, c), ("seed",)) + (NORMALIZED_FEATURES if normalized[d] else "")}
            for d in args.datasets for s in args.seeds for c in CHANGES]

    def run(entry: dict) -> dict:
        config = changed(base, entry["change"])
        result = train_link_prediction(link_split(data[entry["dataset"]], entry["seed"]),
                                       replace(config, seed=entry["seed"]))
        return {k: v for k, v in result.row().items() if k not in entry}

    out = Path(args.out)
    run_sweep(out / "stability.csv", plan, run, KEYS, quiet=args.quiet, numeric=("width", "test_auc"),
              parallel=args.parallel)
    # the report covers the stored runs of both schedules as the presets give them today, and of a dataset loaded
    # here only those on the features it was given now (not runs on its other features beside them)
    stored = read_rows(out / "stability.csv")
    current = {config_id(changed(model_config(model, **SCHEDULES[name]), c), ("seed",))
               for model in {r["model"] for r in stored} for name in SCHEDULES for c in CHANGES}
    rows = [r for r in stored if r["config_id"].removesuffix(NORMALIZED_FEATURES) in current and (
        r["dataset"] not in normalized or r["config_id"].endswith(NORMALIZED_FEATURES) == normalized[r["dataset"]])]
    write_report(out, "stability", table(rows), lambda path: plot(rows, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
