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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Hashable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

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


def has_value(row: dict, column: str) -> bool:
    """Whether a result row holds a value in :obj:`column` (a CSV cell may be empty)."""
    return row.get(column) not in (None, "")


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
    empty = [k for k in key_columns if not has_value(row, k)]
    if empty:
        return f"{empty[0]} is empty"
    for column in numeric:
        value = row.get(column)
        if has_value(row, column):
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


@dataclass
class Parallel:
    """How a sweep is spread over processes and machines: :obj:`jobs`
    worker processes at once on this machine (one torch thread each),
    only the :obj:`shard` ``(i, n)``-th of ``n`` disjoint parts of the plan
    (``i`` from 1), the rows of the result folders in :obj:`merge` added
    first."""

    jobs: int = 1
    shard: Optional[Tuple[int, int]] = None
    merge: Sequence[Path] = ()


Unit = Union[Sequence[str], Callable[[dict], Hashable]]


def unit_of(unit: Unit) -> Callable[[dict], Hashable]:
    """The function giving an entry's unit: the values of the :obj:`unit`
    columns, or :obj:`unit` itself where it is a function; without columns,
    every entry is its own unit."""
    if callable(unit):
        return unit
    columns = tuple(unit)
    return (lambda entry: tuple(entry[c] for c in columns)) if columns else (lambda entry: id(entry))


def units_of(plan: Sequence[dict], unit: Unit = ()) -> List[List[dict]]:
    """:obj:`plan`'s entries grouped by unit (:func:`unit_of`), units in the
    order of their first entry, entries in plan order."""
    groups: Dict[Hashable, List[dict]] = {}
    label = unit_of(unit)
    for entry in plan:
        groups.setdefault(label(entry), []).append(entry)
    return list(groups.values())


def shard_of(plan: Sequence[dict], shard: Tuple[int, int], unit: Unit = ()) -> List[dict]:
    """The ``(i, n)``-th of ``n`` disjoint parts of :obj:`plan` that cover
    it: the entries of units ``i - 1``, ``i - 1 + n``, ... (:func:`units_of`;
    without :obj:`unit`, each entry is a unit), so that runs that share a
    trained model stay together."""
    i, n = shard
    chosen = {id(entry) for group in units_of(plan, unit)[i - 1::n] for entry in group}
    return [entry for entry in plan if id(entry) in chosen]


def run_key(row: dict, key_columns: Sequence[str]) -> str:
    """The identity of a run: the values of :obj:`key_columns`, joined."""
    return "|".join(str(row[k]) for k in key_columns)


def _lock_path(csv_path: Path) -> Path:
    return csv_path.with_name(f".{csv_path.name}.lock")


def _claims_path(csv_path: Path) -> Path:
    return csv_path.with_name(f".{csv_path.name}.claims")


def live_claims(csv_path: Path) -> Dict[str, int]:
    """The runs of :obj:`csv_path` that live processes have claimed (key: process id)."""
    try:
        claims = json.loads(_claims_path(csv_path).read_text())
    except (OSError, ValueError):
        return {}
    return {k: pid for k, pid in claims.items() if _alive(pid)}


def stored_runs(csv_path: Path, key_columns: Sequence[str], numeric: Sequence[str] = (),
                warn: bool = False) -> Dict[str, dict]:
    """The complete rows of :obj:`csv_path` by :func:`run_key` (the first of
    a key); with :obj:`warn`, each row :func:`row_problem` rejects is named."""
    good: Dict[str, dict] = {}
    for number, row in enumerate(read_rows(csv_path), start=2):
        problem = row_problem(row, key_columns, numeric)
        if problem is None:
            good.setdefault(run_key(row, key_columns), row)
        elif warn:
            print(f"{csv_path}, line {number}: {problem}; that run is done again", file=sys.stderr)
    return good


def add_parallel_arguments(parser: argparse.ArgumentParser) -> None:
    """``--jobs``, ``--shard`` and ``--merge`` (see :class:`Parallel`)."""
    parser.add_argument("--jobs", type=int, default=1,
                        help="training processes at once, each with one torch thread, sharing --out (default: 1)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="run only the I-th of N disjoint parts of the sweep (a job array of N machines, "
                             "each with its own --out; then --merge their folders)")
    parser.add_argument("--merge", nargs="+", default=[], metavar="DIR",
                        help="first add the runs stored in these result folders (other shards) to --out")


def parallel_options(parser: argparse.ArgumentParser, args: argparse.Namespace, task: str) -> Parallel:
    """The :class:`Parallel` of parsed arguments, or argparse's usage error."""
    cores = os.cpu_count() or 1
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.jobs > 1 and str(getattr(args, "device", None) or "cpu").startswith("cuda"):
        parser.error(f"--jobs {args.jobs} forks CPU processes of one torch thread each, and CUDA cannot be used "
                     "across a fork; with --device cuda run --jobs 1")
    if args.jobs > cores:
        parser.error(f"--jobs {args.jobs} is more than the {cores} cores here: the processes would compete "
                     f"for cores and run far slower; give at most {cores}")
    shard = None
    if args.shard is not None:
        try:
            i, n = (int(part) for part in args.shard.split("/"))
        except ValueError:
            parser.error(f"--shard must be I/N with whole numbers, such as 1/4, got {args.shard!r}")
        if not 1 <= i <= n:
            parser.error(f"--shard {args.shard}: I must be between 1 and N")
        shard = (i, n)
    merge = [Path(d) for d in args.merge]
    for folder in merge:
        if not (folder / f"{task}.csv").is_file():
            parser.error(f"--merge {folder}: no {task}.csv there; give result folders of "
                         f"python -m benchmarks.{task}")
    return Parallel(args.jobs, shard, merge)


def start_workers(count: int, work: Callable[[], None]) -> List["multiprocessing.Process"]:
    """Start :obj:`count` worker processes, forked (multiprocessing's
    ``fork`` context), that each call :obj:`work` with one torch thread
    (two processes with two threads each on two cores run many times
    slower than one). A fork shares what this process has imported and
    loaded (about 4 s of imports, and the datasets) where a fresh
    interpreter would repeat it. The workers set one thread before any
    torch work, so they never enter the thread pool this process may have
    started; CUDA cannot cross a fork, so ``--jobs`` is CPU-only
    (:func:`parallel_options`)."""
    import multiprocessing

    workers = [multiprocessing.get_context("fork").Process(target=_with_one_thread, args=(work,))
               for _ in range(count)]
    for worker in workers:
        worker.start()
    return workers


def _with_one_thread(work: Callable[[], None]) -> None:
    import torch

    torch.set_num_threads(1)
    work()


def merge_rows(csv_path: Path, folders: Sequence[Path], key_columns: Sequence[str], numeric: Sequence[str]) -> int:
    """Add to :obj:`csv_path` the complete rows of the same-named files in
    :obj:`folders` whose run it lacks (a run stored twice keeps its first
    row); return how many were added."""
    with locked(_lock_path(csv_path)):
        runs = stored_runs(csv_path, key_columns, numeric)
        before = len(runs)
        for folder in folders:
            for run, row in stored_runs(folder / csv_path.name, key_columns, numeric).items():
                runs.setdefault(run, row)
        if len(runs) > before:
            write_csv(csv_path, list(runs.values()))
    return len(runs) - before


def run_sweep(
    csv_path: Path,
    plan: Sequence[dict],
    run: Callable[[dict], dict],
    key_columns: Sequence[str],
    quiet: bool = False,
    numeric: Sequence[str] = (),
    parallel: Optional[Parallel] = None,
    unit: Unit = (),
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
    unit of runs (:func:`units_of`: runs that share a trained model) before
    training it, skips units another live process has claimed a run of,
    and waits at the end for the runs it skipped. No row is lost or run
    twice, and a shared model is trained by one process. :obj:`parallel`
    (:class:`Parallel`) merges other folders' rows first, keeps one shard
    of the plan (:func:`shard_of`, by the same units), and starts worker
    processes beside this one.
    Returns the rows of the plan (of the shard), stored and new."""
    from tqdm.auto import tqdm

    parallel = parallel or Parallel()
    if parallel.merge:
        added = merge_rows(csv_path, parallel.merge, key_columns, numeric)
        print(f"merged {added} run(s) from {', '.join(map(str, parallel.merge))} into {csv_path}")
    if parallel.shard is not None:
        plan = shard_of(plan, parallel.shard, unit)
    lock, claims_path = _lock_path(csv_path), _claims_path(csv_path)

    def key(row: dict) -> str:
        return run_key(row, key_columns)

    def stored() -> Dict[str, dict]:
        return stored_runs(csv_path, key_columns, numeric)

    def claim(entries: Sequence[dict]) -> List[dict]:
        """Take the entries not yet stored, unless another live process has
        one of them; return those taken."""
        with locked(lock):
            live, runs = live_claims(csv_path), stored()
            taken = [e for e in entries if key(e) not in runs]
            if any(live.get(key(e), os.getpid()) != os.getpid() for e in taken):
                return []
            live.update({key(e): os.getpid() for e in taken})
            atomic_write_text(claims_path, json.dumps(live))
            return taken

    def release(entry_key: str) -> None:
        live = live_claims(csv_path)
        live.pop(entry_key, None)
        atomic_write_text(claims_path, json.dumps(live))

    def store(row: dict) -> Dict[str, dict]:
        """Add the row and give up its claim; return every stored run."""
        with locked(lock):
            runs = stored()
            runs.setdefault(key(row), row)
            write_csv(csv_path, list(runs.values()))
            release(key(row))
        return runs

    with locked(lock):
        done = stored_runs(csv_path, key_columns, numeric, warn=True)
    todo = [entry for entry in plan if key(entry) not in done]
    if len(todo) < len(plan):
        print(f"reusing {len(plan) - len(todo)} finished run(s) from {csv_path}")
    wanted = {key(entry) for entry in todo}
    groups = units_of(todo, unit)

    def sweep(bar) -> Dict[str, dict]:
        """Claim and run units until every wanted run is stored; return
        the stored runs."""

        def run_and_store(entry: dict) -> Dict[str, dict]:
            bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in entry.items() if k in key_columns[:5]))
            start = time.perf_counter()
            try:
                row = {**entry, **run(entry), "wall_s": round(time.perf_counter() - start, 3)}
            except BaseException:
                with locked(lock):  # give the run back
                    release(key(entry))
                raise
            return store(row)

        def run_unit(entries: Sequence[dict]) -> None:
            for number, entry in enumerate(entries):
                try:
                    done = run_and_store(entry)
                except BaseException:
                    with locked(lock):  # give back the unit's runs not yet done
                        for rest in entries[number + 1:]:
                            release(key(rest))
                    raise
                bar.update(len(wanted & done.keys()) - bar.n)  # the other processes' runs count too

        skipped = []
        for group in groups:
            taken = claim(group)
            if taken:
                run_unit(taken)
            else:
                skipped.append(group)
        while True:  # the units another process had claimed: wait for them, or run them if it died
            with locked(lock):
                done = stored()
            bar.update(len(wanted & done.keys()) - bar.n)
            missing = [g for g in skipped if any(key(e) not in done for e in g)]
            if not missing:
                return done
            taken = claim(missing[0])
            if taken:
                run_unit(taken)
            else:
                time.sleep(0.2)

    jobs = min(parallel.jobs, len(groups))  # a worker with no unit to claim would only wait
    workers = start_workers(jobs - 1, lambda: sweep(tqdm(disable=True))) if jobs > 1 else []
    threads = None
    if workers:  # this process is one of the jobs, with one torch thread like the others
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
    bar = tqdm(total=len(todo), desc=f"runs ({jobs} processes)" if workers else "runs", unit="run", disable=quiet)
    try:
        done = sweep(bar)
    finally:
        bar.close()
        for worker in workers:  # Ctrl-C reaches the workers too: they give back their runs and stop
            worker.join()
        failed = [worker.exitcode for worker in workers if worker.exitcode != 0]
        if threads is not None:
            torch.set_num_threads(threads)
    if failed:
        print(f"warning: {len(failed)} worker process(es) failed (exit {failed[0]}; see above); this process "
              "did their runs", file=sys.stderr)
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
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="dataset names (cora citeseer pubmed photo computers cs physics ogbl-ddi ogbl-collab "
                             "ogbl-ppa ogbl-citation2; default: cora citeseer, with --quick cora)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-root", default=None, help=f"data root (default: ${DATA_ENV}, else data/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_parallel_arguments(parser)


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
        "args": {k: v for k, v in vars(args).items() if k != "parallel"}, "environment": environment(),
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
