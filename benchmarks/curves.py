"""Score against embedding size: the per-dataset summary and the figure.

Works on result rows (one per run, as in ``OUT/<task>.csv``): a point of a
method's curve is the mean over seeds of one (method, dim, lam) group, placed
at its mean *used* width (``width``), so DAM's points sit at the widths
it learned.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmarks.sizing import penalised
from benchmarks.store import has_value
from benchmarks.tables import mean_std, panels, save_figure, summarise


def curve_points(rows: Sequence[dict], score: str, size: str = "width") -> Dict[str, Dict[str, List[dict]]]:
    """``{dataset: {method: [point, ...]}}``, each point the mean and sample
    std of :obj:`score` and :obj:`size` over the seeds of one configuration,
    sorted by size."""
    groups: Dict[tuple, List[dict]] = {}
    for row in rows:
        if not has_value(row, score):  # e.g. rows written before the metric existed
            continue
        groups.setdefault((row["dataset"], row["method"], str(row["dim"]), str(row.get("lam", ""))), []).append(row)
    curves: Dict[str, Dict[str, List[dict]]] = {}
    for (dataset, method, dim, lam), members in groups.items():
        score_mean, score_std = mean_std([float(m[score]) for m in members])
        size_mean, size_std = mean_std([float(m[size]) for m in members])
        seconds = float(np.mean([float(m.get("train_s") or 0.0) for m in members]))  # per seed
        point = {"dim": int(dim), "lam": lam, "size": size_mean, "size_std": size_std,
                 "score": score_mean, "score_std": score_std, "runs": len(members),
                 "seconds": seconds, "shared": any(str(m.get("shared_train")) == "True" for m in members)}
        curves.setdefault(dataset, {}).setdefault(method, []).append(point)
    for methods in curves.values():
        for points in methods.values():
            points.sort(key=lambda p: p["size"])
    return curves


def summary(rows: Sequence[dict], score: str, reference_method: str = "fixed") -> List[dict]:
    """Per dataset and method: the smallest size whose mean score is within
    1% of the best plain (``fixed``) model's (the best size, which need not
    be the largest), the best mean score at 8
    dimensions or fewer, and the training seconds (per seed) the whole
    curve took (a model shared by the points counted once)."""
    table = []
    for dataset, methods in curve_points(rows, score).items():
        reference = methods.get(reference_method)
        target = max(p["score"] for p in reference) * 0.99 if reference else None
        for method, points in methods.items():
            within = [p["size"] for p in points if target is not None and p["score"] >= target]
            small = [p["score"] for p in points if p["size"] <= 8]
            shared = [p for p in points if p["shared"]]
            seconds = (max(p["seconds"] for p in shared) if shared else 0.0) + \
                sum(p["seconds"] for p in points if not p["shared"])
            table.append({"dataset": dataset, "method": method,
                          "smallest_within_1pct": min(within) if within else None,
                          "best_at_8_or_fewer": max(small) if small else None,
                          "curve_train_s": seconds, "points": len(points)})
    return table


def format_summary(table: Sequence[dict], score: str) -> str:
    lines = [f"| dataset | method | smallest size within 1% of the best fixed model ({score}) "
             f"| best {score} at <= 8 dims | training s per curve (per seed) | points |",
             "|---|---|---|---|---|---|"]
    for t in table:
        within = f"{t['smallest_within_1pct']:.1f}" if t["smallest_within_1pct"] is not None else "none"
        small = f"{t['best_at_8_or_fewer']:.4f}" if t["best_at_8_or_fewer"] is not None else "none"
        lines.append(f"| {t['dataset']} | {t['method']} | {within} | {small} | {t['curve_train_s']:.1f} "
                     f"| {t['points']} |")
    return "\n".join(lines)


def plot_curves(rows: Sequence[dict], score: str, path: Path, title: str) -> None:
    """One panel per dataset: mean score against mean used width (log-2
    axis), error bars of one sample std; a line per method over its sizes,
    and the penalised methods (:func:`~benchmarks.sizing.penalised`) as separate points, one per
    penalty weight (their widths are learned, so no order joins them)."""
    curves = curve_points(rows, score)
    fig, axes = panels(len(curves), 5.5, 4.2)
    for ax, (dataset, methods) in zip(axes, curves.items()):
        for method, points in sorted(methods.items()):
            ax.errorbar([p["size"] for p in points], [p["score"] for p in points],
                        xerr=[p["size_std"] for p in points], yerr=[p["score_std"] for p in points],
                        marker="D" if method in penalised() else "o", capsize=3, label=method,
                        linestyle="none" if method in penalised() else "-")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("embedding size used (mean over seeds)")
        ax.set_ylabel(score)
        ax.set_title(f"{dataset}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def validation_choice(rows: Sequence[dict], methods: Optional[Sequence[str]] = None) -> List[dict]:
    """Per dataset and penalised method (its runs from the largest size):
    on each seed, the penalty weight whose run scored best on validation
    (the run's own ``val_metric``; a tie goes to the smaller learned
    width), and over the seeds the mean and std of what that choice gives
    (:data:`CHOICE_COLUMNS`, NaN where no chosen run has a value). Test
    scores never enter the choice. Only seeds with a validation score for
    every weight of the grid (the weights any seed ran) take part;
    ``incomplete`` counts the others."""
    methods = penalised() if methods is None else methods
    groups: Dict[tuple, List[dict]] = {}
    for row in rows:
        if row["method"] in methods:
            groups.setdefault((row["dataset"], row["method"]), []).append(row)
    table = []
    for (dataset, method), members in groups.items():
        largest = max(int(m["dim"]) for m in members)  # the grid starts from the largest size
        runs: Dict[str, Dict[str, dict]] = {}
        for m in members:
            if int(m["dim"]) == largest:
                runs.setdefault(str(m["seed"]), {})[str(m["lam"])] = m
        grid = sorted({lam for by_lam in runs.values() for lam in by_lam}, key=float)
        complete = [by_lam for by_lam in runs.values()
                    if set(by_lam) == set(grid) and all(has_value(m, _selected_on(m)) for m in by_lam.values())]
        chosen = [max(by_lam.values(), key=lambda m: (float(m[_selected_on(m)]), -float(m["width"])))
                  for by_lam in complete]
        entry = {"dataset": dataset, "method": method, "seeds": len(chosen), "incomplete": len(runs) - len(chosen),
                 "lams": grid, "chosen": [str(m["lam"]) for m in chosen]}
        if chosen:
            entry.update({c: summarise(chosen, (), CHOICE_COLUMNS)[0][c] for c in CHOICE_COLUMNS})
        table.append(entry)
    return table


#: What :func:`validation_choice` reports of the chosen runs.
CHOICE_COLUMNS = ("width", "test_auc", "test_hits@20", "probe_acc")


def _selected_on(row: dict) -> str:
    """The column of the score the run was selected on (``val_<val_metric>``)."""
    return f"val_{row.get('val_metric') or 'auc'}"


def format_validation_choice(table: Sequence[dict]) -> str:
    lines = ["| dataset | method | seeds | grid (lam) | chosen on validation (seeds) | learned width | test AUC "
             "| test Hits@20 | probe acc |", "|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        counts = Counter(t["chosen"])
        chosen = ", ".join(f"{lam} ({counts[lam]})" for lam in t["lams"] if lam in counts)
        cells = [f"{t[c][0]:.{d}f} ± {t[c][1]:.{d}f}" if c in t and not np.isnan(t[c][0]) else "–"
                 for c, d in zip(CHOICE_COLUMNS, (1, 4, 4, 4))]
        seeds = f"{t['seeds']}" + (f" ({t['incomplete']} incomplete left out)" if t["incomplete"] else "")
        lines.append(f"| {t['dataset']} | {t['method']} | {seeds} | {' '.join(t['lams'])} | {chosen} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)
