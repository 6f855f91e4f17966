"""Shared pieces of the benchmark harness: result files written atomically,
the run environment, and the mean ± std summary table."""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from damgraph.datasets import DATA_ENV
from damgraph.io import atomic_write_text, versions


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    """All :obj:`rows` as CSV, columns in first-seen order, written atomically."""
    columns: List[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def environment() -> Dict[str, str]:
    """Library versions and machine, recorded beside every result."""
    import torch

    return {**versions(), "platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": str(os.cpu_count()), "torch_threads": str(torch.get_num_threads())}


def proc_status_mb(field: str) -> Optional[float]:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB;
    ``None`` where there is no such file (not Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


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
            values = np.array([float(m[metric]) for m in members if m.get(metric) not in (None, "")], dtype=float)
            if len(values) == 0:
                entry[metric] = (float("nan"), float("nan"))
            else:
                entry[metric] = (values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0)
        table.append(entry)
    return table


COUNT_METRICS = ("width", "width", "epochs", "best_epoch")


def format_table(table: Sequence[dict], keys: Sequence[str], metrics: Sequence[str]) -> str:
    """A Markdown table of :func:`summarise`'s output (mean ± std); counts
    and seconds with one decimal, scores with four."""
    header = list(keys) + ["runs"] + list(metrics)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        cells = [str(entry[k]) for k in keys] + [str(entry["runs"])]
        for metric in metrics:
            mean, std = entry[metric]
            digits = 1 if metric in COUNT_METRICS or metric.endswith("_s") else 4
            cells.append(f"{mean:.{digits}f} ± {std:.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_rows(path: Path) -> List[dict]:
    """The rows of a result CSV (empty when it does not exist yet)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def prepare_out(out: Path) -> None:
    """Create the output folder, or raise :class:`OSError` with the fix."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise OSError(f"cannot write to --out {out}: {err.strerror}; choose a writable folder") from err


def run_sweep(
    csv_path: Path,
    plan: Sequence[dict],
    run: Callable[[dict], dict],
    key_columns: Sequence[str],
    quiet: bool = False,
) -> List[dict]:
    """Run every entry of :obj:`plan` (a dict of settings per run) not yet
    in :obj:`csv_path`, appending ``{**entry, **run(entry)}`` and rewriting
    the CSV atomically after each run, so that an interrupted sweep keeps its
    finished runs and a re-run skips them. A run is identified by the values
    of :obj:`key_columns`. Returns the rows of the plan, stored and new."""
    from tqdm.auto import tqdm

    def key(row: dict) -> tuple:
        return tuple(str(row[k]) for k in key_columns)

    rows = read_rows(csv_path)
    stored = {key(r): r for r in rows}
    todo = [entry for entry in plan if key(entry) not in stored]
    if len(todo) < len(plan):
        print(f"reusing {len(plan) - len(todo)} finished run(s) from {csv_path}")
    bar = tqdm(todo, desc="runs", unit="run", disable=quiet)
    for entry in bar:
        bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in entry.items() if k in key_columns[:5]))
        start = time.perf_counter()
        row = {**entry, **run(entry), "wall_s": round(time.perf_counter() - start, 3)}
        rows.append(row)
        stored[key(row)] = row
        write_csv(csv_path, rows)
    bar.close()
    return [stored[key(entry)] for entry in plan]


def report(out: Path, task: str, rows: Sequence[dict], keys: Sequence[str], metrics: Sequence[str],
           sections: Sequence[str] = ()) -> str:
    """Write ``OUT/<task>.md``: the mean ± std table per group of keys, then
    any further :obj:`sections`; return the text."""
    text = "\n\n".join([format_table(summarise(rows, keys, metrics), keys, metrics), *sections])
    atomic_write_text(out / f"{task}.md", text + "\n")
    return text


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark sweep shares (the training settings come
    from :func:`damgraph.config.add_config_arguments`)."""
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"], help="cora, citeseer, pubmed")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-root", default=None, help=f"data root (default: ${DATA_ENV}, else data/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def refuse_repeats(parser: argparse.ArgumentParser, args: argparse.Namespace, names: Sequence[str]) -> None:
    """A value given twice in a list flag (``--seeds 0 0``) would train the
    same run twice and report it as two: argparse's usage error instead."""
    for name in names:
        values = getattr(args, name, None) or []
        repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
        if repeated:
            parser.error(f"--{name.replace('_', '-')} lists {', '.join(map(str, repeated))} more than once; "
                         "give each value once")


def settings_or_usage_error(parser: argparse.ArgumentParser, make: Callable[[], object]) -> object:
    """``make()`` (a config, or configs), or argparse's usage error (exit
    code 2) with the config's message when a setting is out of range."""
    try:
        return make()
    except (TypeError, ValueError) as err:
        parser.error(str(err))


def start_sweep(task: str, args: argparse.Namespace, config, argv: Sequence[str] | None,
                load: Callable[[str], object]) -> Dict[str, object]:
    """Check that ``--out`` is writable, load every dataset with :obj:`load`
    and record (:obj:`config` is a dataclass, or a dict of them by part) the command, settings and environment in ``OUT/<task>.json``.
    Bad input raises :class:`OSError` or :class:`ValueError` with the fix."""
    out = Path(args.out)
    prepare_out(out)
    data = {name: load(name) for name in args.datasets}
    write_json(out / f"{task}.json", {
        "command": f"python -m benchmarks.{task} " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args), "environment": environment(),
        "config": {k: asdict(v) for k, v in config.items()} if isinstance(config, dict) else asdict(config)})
    return data


def finish_sweep(task: str, out: Path, rows: Sequence[dict], keys: Sequence[str], metrics: Sequence[str],
                 sections: Sequence[str] = (), figures: Sequence[str] = ()) -> None:
    """Write and print the report; list every file written."""
    print(report(out, task, rows, keys, metrics, sections))
    files = [out / f"{task}.{ext}" for ext in ("csv", "md", "json")] + [out / f for f in figures]
    print("\nwrote " + ", ".join(map(str, files)))


def write_report(out: Path, task: str, text: str, figure: Callable[[Path], None]) -> None:
    """Write ``OUT/<task>.md`` and the figure ``OUT/<task>.png``, print the
    report and list the four files (for the benchmarks without a sweep table)."""
    atomic_write_text(out / f"{task}.md", text + "\n")
    figure(out / f"{task}.png")
    print("\n" + text)
    print("\nwrote " + ", ".join(str(out / f"{task}.{e}") for e in ("csv", "md", "json", "png")))


def save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    from damgraph.io import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120), binary=True)
    plt.close(fig)
