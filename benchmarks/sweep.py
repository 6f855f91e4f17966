"""Sweeps: every run of a plan not yet stored, resumable, in shards or
forked worker processes, with the options every benchmark sweep shares."""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple, Union

from benchmarks.store import (check_out, _claims_path, environment, live_claims, _lock_path, locked, merge_rows,
                              prepare_out, read_rows, run_key, stored_runs, write_csv, write_json)
from benchmarks.tables import report
from damgraph.datasets import DATA_ENV, DATASET_NAMES
from damgraph.io import atomic_write_text


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


def start_workers(count: int, work: Callable[[], None]) -> List[multiprocessing.Process]:
    """Start :obj:`count` worker processes, forked (multiprocessing's
    ``fork`` context), that each call :obj:`work` with one torch thread
    (two processes with two threads each on two cores run many times
    slower than one). A fork shares what this process has imported and
    loaded (about 4 s of imports, and the datasets) where a fresh
    interpreter would repeat it. The workers set one thread before any
    torch work, so they never enter the thread pool this process may have
    started; CUDA cannot cross a fork, so ``--jobs`` is CPU-only
    (:func:`parallel_options`)."""
    workers = [multiprocessing.get_context("fork").Process(target=_with_one_thread, args=(work,))
               for _ in range(count)]
    for worker in workers:
        worker.start()
    return workers


def _with_one_thread(work: Callable[[], None]) -> None:
    import torch

    torch.set_num_threads(1)
    work()


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


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark sweep shares (the training settings come
    from :func:`damgraph.config.add_config_arguments`)."""
    parser.add_argument("--datasets", nargs="+", default=None,
                        help=f"dataset names ({' '.join(DATASET_NAMES)}; default: cora citeseer, with --quick cora)")
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
