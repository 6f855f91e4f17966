"""Shared pieces of the benchmark harness: result files written atomically,
the run environment, and the mean ± std summary table."""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

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


class ResultFileError(ValueError):
    """A result file that cannot be read, with the fix in its message."""


def read_rows(path: Path) -> List[dict]:
    """The rows of a result CSV (empty when it does not exist yet); a row
    cut short (fewer or more fields than the header) has ``None`` values
    (see :func:`row_problem`)."""
    from damgraph.io import text_lines

    path = Path(path)
    if not path.is_file():
        return []
    try:
        lines = [line for _, line in text_lines(path)]
        rows = list(csv.DictReader(lines))
    except (ValueError, csv.Error) as err:
        raise ResultFileError(f"{path} is not a result CSV ({err}); move it away or choose another folder") from None
    if lines and not lines[-1].endswith("\n") and rows:  # the file was cut mid-row
        rows[-1][None] = ["(cut short)"]
    return rows


def row_problem(row: dict, key_columns: Sequence[str], numeric: Sequence[str]) -> Optional[str]:
    """Why a stored row cannot be reused, or ``None``: a missing or extra
    field, an empty key, or a value that should be a number and is not.
    (A row is reused only for a plan entry with the same key, whose
    ``config_id`` holds every setting of the sweep; the row's own setting
    columns record the run's actual settings, which some methods change.)"""
    if None in row or None in row.values():
        return "it is cut short or has extra fields"
    empty = [k for k in key_columns if row.get(k) in (None, "")]
    if empty:
        return f"{empty[0]} is empty"
    for column in numeric:
        value = row.get(column)
        if value not in (None, ""):
            try:
                float(value)
            except ValueError:
                return f"{column} {value!r} is not a number"
    return None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file :obj:`path` (created if needed)
    for the block: processes sharing one results folder take turns."""
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_out(out: Path) -> None:
    """Create the output folder, or raise :class:`OSError` with the fix."""
    check_out(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot write to --out {out}: {err.strerror}; choose a writable folder") from None


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that could not be created or written, creating nothing."""
    if out.exists() and not out.is_dir():
        raise OSError(f"--out {out} is a file; give a folder")
    existing = next(p for p in [out, *out.absolute().parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OSError(f"cannot write to --out {out}: {existing} is not a writable folder; choose another --out")


def run_sweep(
    csv_path: Path,
    plan: Sequence[dict],
    run: Callable[[dict], dict],
    key_columns: Sequence[str],
    quiet: bool = False,
    numeric: Sequence[str] = (),
) -> List[dict]:
    """Run every entry of :obj:`plan` (a dict of settings per run) not yet
    in :obj:`csv_path`, adding ``{**entry, **run(entry)}`` and rewriting the
    CSV atomically after each run, so that an interrupted sweep keeps its
    finished runs and a re-run skips them. A run is identified by the values
    of :obj:`key_columns`. Stored rows that :func:`row_problem` rejects
    (cut short, unparseable :obj:`numeric` columns) are dropped and run
    again, with a warning.

    Several processes may share one CSV (sweeps of other seeds, or the same
    sweep started twice): each takes a lock to read and write it, claims a
    run before training it, skips runs another live process has claimed,
    and waits at the end for the runs it skipped. No row is lost or run
    twice. Returns the rows of the plan, stored and new."""
    from tqdm.auto import tqdm

    def key(row: dict) -> str:
        return "|".join(str(row[k]) for k in key_columns)

    lock = csv_path.with_name(f".{csv_path.name}.lock")
    claims_path = csv_path.with_name(f".{csv_path.name}.claims")

    def stored(warn: bool = False) -> Dict[str, dict]:
        good: Dict[str, dict] = {}
        for number, row in enumerate(read_rows(csv_path), start=2):
            problem = row_problem(row, key_columns, numeric)
            if problem is None:
                good.setdefault(key(row), row)
            elif warn:
                print(f"{csv_path}, line {number}: {problem}; that run is done again", file=sys.stderr)
        return good

    def claims() -> Dict[str, int]:
        try:
            live = json.loads(claims_path.read_text())
        except (OSError, ValueError):
            return {}
        return {k: pid for k, pid in live.items() if _alive(pid)}

    def claim(entry_key: str) -> bool:
        """Take the run unless it is stored or another live process has it."""
        with locked(lock):
            live = claims()
            if entry_key in stored() or live.get(entry_key, os.getpid()) != os.getpid():
                return False
            live[entry_key] = os.getpid()
            atomic_write_text(claims_path, json.dumps(live))
            return True

    def store(row: dict) -> None:
        with locked(lock):
            rows = list(stored().values())
            if key(row) not in {key(r) for r in rows}:
                rows.append(row)
            write_csv(csv_path, rows)
            live = claims()
            live.pop(key(row), None)
            atomic_write_text(claims_path, json.dumps(live))

    with locked(lock):
        done = stored(warn=True)
    todo = [entry for entry in plan if key(entry) not in done]
    if len(todo) < len(plan):
        print(f"reusing {len(plan) - len(todo)} finished run(s) from {csv_path}")
    bar = tqdm(todo, desc="runs", unit="run", disable=quiet)
    skipped = []
    for entry in bar:
        if not claim(key(entry)):
            skipped.append(entry)
            continue
        bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in entry.items() if k in key_columns[:5]))
        start = time.perf_counter()
        try:
            row = {**entry, **run(entry), "wall_s": round(time.perf_counter() - start, 3)}
        except BaseException:
            with locked(lock):  # give the run back
                live = claims()
                live.pop(key(entry), None)
                atomic_write_text(claims_path, json.dumps(live))
            raise
        store(row)
    bar.close()
    while True:  # the runs another process had claimed: wait for them, or run them if it died
        with locked(lock):
            done = stored()
        missing = [e for e in skipped if key(e) not in done]
        if not missing:
            break
        if claim(key(missing[0])):
            entry = missing[0]
            start = time.perf_counter()
            store({**entry, **run(entry), "wall_s": round(time.perf_counter() - start, 3)})
        else:
            time.sleep(1.0)
    return [done[key(entry)] for entry in plan]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def settings_or_usage_error(parser: argparse.ArgumentParser, make: Callable[[], object],
                            flag: Optional[str] = None) -> object:
    """``make()`` (a config, or configs), or argparse's usage error (exit
    code 2) with the config's message, after the :obj:`flag` that gave the
    values when it is not the setting's own, when a setting is out of range."""
    try:
        return make()
    except (TypeError, ValueError) as err:
        parser.error(f"{flag}: {err}" if flag else str(err))


def start_sweep(task: str, args: argparse.Namespace, config, argv: Sequence[str] | None,
                load: Callable[[str], object]) -> Dict[str, object]:
    """Check that ``--out`` can be written, load every dataset with
    :obj:`load`, then create ``--out`` and record the command, settings
    (:obj:`config` is a dataclass, or a dict of them by part) and
    environment in ``OUT/<task>.json``. Bad input raises :class:`OSError`
    or :class:`ValueError` with the fix, before anything is created."""
    out = Path(args.out)
    check_out(out)
    read_rows(out / f"{task}.csv")  # stored results that cannot be read stop the sweep here
    data = {name: load(name) for name in args.datasets}
    prepare_out(out)
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
