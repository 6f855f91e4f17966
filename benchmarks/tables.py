"""Reports: mean ± std tables of the stored rows, and figures saved atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

import numpy as np

from benchmarks.store import has_value
from damgraph.io import atomic_write_text


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for a single value)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def summarise(rows: Iterable[dict], keys: Sequence[str], metrics: Sequence[str]) -> List[dict]:
    """Mean and sample std (ddof=1; 0 for a single run) of each metric per
    group of :obj:`keys`, groups in first-seen order; runs without a value
    for a metric are left out of it (NaN when none has one)."""
    groups: Dict[tuple, List[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(str(row.get(k, "")) for k in keys), []).append(row)
    table = []
    for group, members in groups.items():
        entry = dict(zip(keys, group), runs=len(members))
        for metric in metrics:
            values = [float(m[metric]) for m in members if has_value(m, metric)]
            entry[metric] = mean_std(values) if values else (float("nan"), float("nan"))
        table.append(entry)
    return table


COUNT_METRICS = ("width", "epochs", "best_epoch", "peak_rss_mb")


def format_table(table: Sequence[dict], keys: Sequence[str], metrics: Sequence[str]) -> str:
    """A Markdown table of :func:`summarise`'s output (mean ± std); counts
    with one decimal, seconds with two, scores with four; "–" where no run
    has the metric (a heuristic has no width)."""
    header = list(keys) + ["runs"] + list(metrics)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        cells = [str(entry[k]) for k in keys] + [str(entry["runs"])]
        for metric in metrics:
            mean, std = entry[metric]
            if np.isnan(mean):
                cells.append("–")
                continue
            digits = 1 if metric in COUNT_METRICS or metric.endswith("_s") else 2 if metric == "seconds" else 4
            cells.append(f"{mean:.{digits}f} ± {std:.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(out: Path, task: str, rows: Sequence[dict], keys: Sequence[str], metrics: Sequence[str],
           sections: Sequence[str] = ()) -> str:
    """Write ``OUT/<task>.md``: the mean ± std table per group of keys, then
    any further :obj:`sections`; return the text."""
    text = "\n\n".join([format_table(summarise(rows, keys, metrics), keys, metrics), *sections])
    atomic_write_text(out / f"{task}.md", text + "\n")
    return text


def write_report(out: Path, task: str, text: str, figure: Callable[[Path], None]) -> None:
    """Write ``OUT/<task>.md`` and the figure ``OUT/<task>.png``, print the
    report and list the four files (for the benchmarks without a sweep table)."""
    atomic_write_text(out / f"{task}.md", text + "\n")
    figure(out / f"{task}.png")
    print("\n" + text)
    print("\nwrote " + ", ".join(str(out / f"{task}.{e}") for e in ("csv", "md", "json", "png")))


def panels(count: int, width: float, height: float):
    """A figure of :obj:`count` panels side by side, each :obj:`width` by
    :obj:`height` inches, drawn without a display: ``(figure, axes)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    return fig, list(axes[0])


def save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    from damgraph.io import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120), binary=True)
    plt.close(fig)


def label_axes(ax, title: str, xlabel: str, ylabel: str, log_base: float = 10, legend_size: int = 7) -> None:
    """A panel's log x axis, labels, title, light grid and legend."""
    ax.set_xscale("log", base=log_base)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
