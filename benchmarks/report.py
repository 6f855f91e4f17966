"""The 1% table and one figure per dataset, from stored rows: ``python -m benchmarks.report``.

Reads the ``linkpred.csv`` of each folder given and keeps the runs of the
current defaults (the config ids the presets give today; normalised
features allowed), so that a table never mixes protocols. Per dataset and
model: the best fixed model, the 1% line (0.99 times its mean score), the
smallest fixed size that reaches it, DAM's default run (learned width and
score, mean ± std over the seeds) and whether DAM passes (its mean score on
or above the line, at a mean width no larger than that size), over the
seeds at which DAM and every fixed size ran (the others are named and left
out: a sweep still running does not tilt the curve). Runs that
reached their epoch cap are counted: the patience had not ended them, so
they may still have been improving. The figure adds the other methods'
current runs: a curve for those with a point per size (PCA, Matryoshka,
spectral), a separate point per penalty weight for the penalised ones (L1,
L0), never joined. Trains nothing; writes ``OUT/report.md`` and
``OUT/<dataset>-<model>.png``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from benchmarks.plan import NORMALIZED_FEATURES, dataset_config, run_id
from benchmarks.sizing import METHODS, penalised
from benchmarks.store import has_value, read_rows
from benchmarks.tables import label_axes, mean_std, save_figure
from damgraph.config import LinkPredConfig, model_config
from damgraph.settings import read_setting
from damgraph.datasets import DATASETS
from damgraph.io import atomic_write_text

def current_rows(rows: Sequence[dict], dam_settings: Optional[Dict[str, Any]] = None) -> List[dict]:
    """The rows whose config id is what the model's preset gives today on
    their dataset (:func:`~benchmarks.plan.dataset_config`); DAM's at the
    preset's penalty weight only (its default run), or at the preset with
    :obj:`dam_settings` (a setting under study, set for DAM's runs only)."""
    kept, configs = [], {}
    for row in rows:
        if row["method"] not in METHODS:
            continue
        key = (row["model"], row["dataset"])
        if key not in configs:  # one preset per model and dataset, not one per row
            configs[key] = dataset_config(model_config(row["model"]), row["dataset"])[0]
        preset = configs[key]
        if row["method"] == "dam" and dam_settings:
            preset = replace(preset, **dam_settings)
        wanted = run_id(preset, row["method"])
        if row["config_id"] in (wanted, wanted + NORMALIZED_FEATURES) and (
                row["method"] != "dam" or float(row["lam"]) == preset.lam):
            kept.append(row)
    return kept


def other_methods(rows: Sequence[dict], column: str) -> Dict[str, List[Tuple[float, float, float, float]]]:
    """The other methods' points, (mean width, its std, mean score, its std)
    each: per size for the methods with a model or a curve point per size,
    per penalty weight for the penalised ones (a point each, never joined)."""
    groups: Dict[Tuple[str, str], List[dict]] = {}
    for r in rows:
        if r["method"] in ("fixed", "dam") or not has_value(r, column):
            continue
        penalised_method = r["method"] in penalised()
        label = f"{r['method']} lam={float(r['lam']):g}" if penalised_method else r["method"]
        groups.setdefault((label, "" if penalised_method else r["dim"]), []).append(r)
    points: Dict[str, List[Tuple[float, float, float, float]]] = {}
    for (label, _), members in groups.items():
        width = mean_std([float(m["width"]) for m in members])
        score = mean_std([float(m[column]) for m in members])
        points.setdefault(label, []).append((*width, *score))
    return {label: sorted(p) for label, p in points.items()}


def dataset_score(dataset: str) -> str:
    """The column a dataset is compared on: its leaderboard's metric (AUC
    unless its entry says otherwise, or where it has no entry)."""
    entry = DATASETS.get(dataset.lower())
    return f"test_{entry.metric if entry else 'auc'}"


def paired_seeds(rows: Sequence[dict]) -> set:
    """The seeds at which DAM and every fixed size of :obj:`rows` ran."""
    runs: Dict[Tuple[str, str], set] = {}
    for r in rows:
        if r["method"] in ("fixed", "dam"):
            runs.setdefault((r["method"], r["dim"] if r["method"] == "fixed" else ""), set()).add(r["seed"])
    return set.intersection(*runs.values()) if runs else set()


def one_percent_table(rows: Sequence[dict], score: Optional[str] = None) -> List[dict]:
    """One entry per (dataset, model): the fixed curve of :obj:`score`
    (default: :func:`dataset_score`), DAM's runs and the verdict."""
    table = []
    for dataset, model in dict.fromkeys((r["dataset"], r["model"]) for r in rows):
        column = score or dataset_score(dataset)
        mine = [r for r in rows if r["dataset"] == dataset and r["model"] == model and r.get(column)]
        seeds = paired_seeds(mine)
        left_out = [r for r in mine if r["method"] in ("fixed", "dam") and r["seed"] not in seeds]
        if left_out:  # a sweep still running, or stopped: compare on the seeds every size and DAM ran
            print(f"{dataset} {model}: {len(left_out)} runs of seeds without every fixed size and DAM left out "
                  f"(seeds {', '.join(sorted(set(r['seed'] for r in left_out), key=int))})", file=sys.stderr)
            mine = [r for r in mine if r["method"] not in ("fixed", "dam") or r["seed"] in seeds]
        curve: Dict[int, List[float]] = {}
        for r in mine:
            if r["method"] == "fixed":
                curve.setdefault(int(r["dim"]), []).append(float(r[column]))
        dam = [r for r in mine if r["method"] == "dam"]
        others = other_methods(mine, column)
        if not curve or not dam:
            continue
        stats = {d: mean_std(v) for d, v in sorted(curve.items())}
        means = {d: mean for d, (mean, _) in stats.items()}
        best_dim = max(means, key=means.get)
        line = 0.99 * means[best_dim]
        smallest = min(d for d, m in means.items() if m >= line)
        widths = [float(r["width"]) for r in dam]
        scores = [float(r[column]) for r in dam]
        capped = sum(int(float(r["epochs"])) >= model_config(model).epochs for r in mine
                     if r["method"] in ("fixed", "dam"))
        (width, width_std), (dam_score, score_std) = mean_std(widths), mean_std(scores)
        table.append(dict(dataset=dataset, model=model, column=column, best_dim=best_dim, best=means[best_dim],
                          best_std=stats[best_dim][1], seeds=len(dam), line=line, smallest=smallest,
                          width=width, width_std=width_std, score=dam_score, score_std=score_std,
                          passed=dam_score >= line and width <= smallest, capped=capped,
                          runs=sum(r["method"] in ("fixed", "dam") for r in mine), curve=means, others=others,
                          curve_std={d: std for d, (_, std) in stats.items()}, points=list(zip(widths, scores))))
    return table


def format_table(table: Sequence[dict]) -> str:
    lines = ["| dataset | model | score | seeds | best fixed model | 1% line | smallest fixed size within 1% | "
             "DAM: learned width | DAM: score | pass | runs at their epoch cap |", "|" + "---|" * 11]
    for t in table:
        verdict = "yes" if t["passed"] else (
            "no: " + ("score below the line" if t["score"] < t["line"] else "wider than that size"))
        lines.append(f"| {t['dataset']} | {t['model']} | {t['column']} | {t['seeds']} | {t['best_dim']}: {t['best']:.4f} ± "
                     f"{t['best_std']:.4f} | {t['line']:.4f} | {t['smallest']} ({t['curve'][t['smallest']]:.4f}) | "
                     f"{t['width']:.1f} ± {t['width_std']:.1f} | {t['score']:.4f} ± {t['score_std']:.4f} | {verdict} | "
                     f"{t['capped']} of {t['runs']} |")
    return "\n".join(lines)


def plot(t: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.0 if t["others"] else 5.5, 4.2))
    dims = list(t["curve"])
    ax.errorbar(dims, [t["curve"][d] for d in dims], yerr=[t["curve_std"][d] for d in dims], marker="o",
                capsize=3, label="fixed size (mean ± std)")
    ax.scatter([w for w, _ in t["points"]], [s for _, s in t["points"]], marker=".", color="C3", alpha=0.5,
               label="DAM, one run per seed")
    ax.errorbar([t["width"]], [t["score"]], xerr=[t["width_std"]], yerr=[t["score_std"]], marker="D", color="C3",
                capsize=3, linestyle="none", label="DAM default run (mean ± std)")
    colours = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (0, 1, 6, 7)]  # not fixed's or DAM's
    for i, (label, pts) in enumerate(sorted(t["others"].items())):
        style = dict(marker="svo^<>Dp"[i % 8], capsize=2, color=colours[i % len(colours)], alpha=0.8, label=label)
        if label in METHODS and len(pts) > 1:  # a point per size: its curve
            style["linestyle"] = "--"
        else:  # a penalised run: one point, never joined to the others
            style["linestyle"] = "none"
        ax.errorbar([p[0] for p in pts], [p[2] for p in pts], xerr=[p[1] for p in pts], yerr=[p[3] for p in pts],
                    **style)
    ax.axhline(t["line"], color="grey", linestyle=":", label="1% below the best fixed model")
    label_axes(ax, f"{t['dataset']}, {t['model'].upper()} ({t['seeds']} seeds)", "embedding size", t["column"], log_base=2)
    if t["others"]:  # beside the panel, not over the points
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    save_figure(fig, path)


def parse_settings(items: Sequence[str]) -> Dict[str, Any]:
    """``NAME=VALUE`` items as settings of :class:`~damgraph.LinkPredConfig`,
    each value read with its field's type (checked by the config)."""
    settings: Dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--dam-setting {item!r} is not NAME=VALUE (for example penalty_edges=4096)")
        settings[name] = read_setting(LinkPredConfig, name, text)
    LinkPredConfig(**settings)  # a bad value names its setting
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--folders", nargs="+", required=True, help="result folders holding a linkpred.csv")
    p.add_argument("--score", default=None,
                   help="the score compared (default: each dataset's leaderboard metric: test_auc, test_hits@20 "
                        "on ogbl-ddi)")
    p.add_argument("--dam-setting", nargs="+", default=[], metavar="NAME=VALUE",
                   help="compare DAM's runs at the preset with these settings instead (for example penalty_edges=4096)")
    p.add_argument("--out", default="results/report", help="output folder (default: results/report)")
    args = p.parse_args(argv)
    try:
        dam_settings = parse_settings(args.dam_setting)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = []
    for folder in args.folders:
        path = Path(folder) / "linkpred.csv"
        if not path.is_file():
            print(f"error: {path} does not exist; give folders written by python -m benchmarks.linkpred",
                  file=sys.stderr)
            return 2
        rows += current_rows(read_rows(path), dam_settings)
    table = one_percent_table(rows, args.score)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = format_table(table)
    atomic_write_text(out / "report.md", text + "\n")
    for t in table:
        plot(t, out / f"{t['dataset']}-{t['model']}.png")
    print(text)
    print("\nwrote " + ", ".join([str(out / "report.md")] + [str(out / f"{t['dataset']}-{t['model']}.png")
                                                            for t in table]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
