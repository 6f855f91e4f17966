"""benchmarks.sweep, store and tables: resumable sweeps, shards, forked workers, claims and merges."""
import json
import time

import pytest

from benchmarks import linkpred
from benchmarks.store import read_rows
from benchmarks.tables import summarise


def test_summary_mean_and_sample_std():
    rows = [{"g": "a", "x": 1.0}, {"g": "a", "x": 3.0}, {"g": "b", "x": "2"}]
    (a, b) = summarise(rows, ["g"], ["x"])
    assert a["runs"] == 2 and a["x"] == (2.0, pytest.approx(2 ** 0.5))
    assert b["x"] == (2.0, 0.0)


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_loss(tmp_path, data_root):
    """Kill a sweep (SIGKILL) after its first finished run; the CSV stays
    whole and the re-run does only what is left."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "benchmarks.linkpred", "--datasets", "cora", "--methods", "fixed", "--dims", "4",
            "--seeds", "0", "1", "2", "3", "--epochs", "40", "--patience", "40", "--data-root", str(data_root),
            "--out", str(out), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not ((out / "linkpred.csv").exists() and len(read_rows(out / "linkpred.csv")) >= 1):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = read_rows(out / "linkpred.csv")
    assert 1 <= len(done) < 4  # killed mid-sweep, the file parses
    result = subprocess.run(argv[:-1], capture_output=True, text=True)
    assert result.returncode == 0
    assert f"reusing {len(done)} finished run(s)" in result.stdout
    rows = read_rows(out / "linkpred.csv")
    assert len(rows) == 4 and rows[:len(done)] == done


def _sweep_in_a_process(csv_path, seeds, log):
    """A sweep whose runs take 50 ms; every run is logged (O_APPEND) to count executions."""
    import os
    import time

    from benchmarks.sweep import run_sweep

    def run(entry):
        with open(log, "a") as f:
            f.write(f"{entry['seed']} {os.getpid()}\n")
        time.sleep(0.05)
        return {"score": entry["seed"] / 10}

    run_sweep(csv_path, [{"seed": s, "config_id": "c"} for s in seeds], run, ("seed", "config_id"), quiet=True,
              numeric=("score",))


@pytest.mark.parametrize("first, second", [(range(0, 12), range(12, 24)),   # two halves of a sweep
                                           (range(0, 12), range(0, 12))])   # the same sweep twice
def test_concurrent_sweeps_on_one_file_keep_every_row_and_run_each_once(tmp_path, first, second):
    import multiprocessing

    csv_path, log = tmp_path / "r.csv", tmp_path / "runs.log"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_sweep_in_a_process, args=(csv_path, list(seeds), log))
               for seeds in (first, second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    wanted = sorted(set(first) | set(second))
    assert sorted(int(r["seed"]) for r in read_rows(csv_path)) == wanted
    assert sorted(int(line.split()[0]) for line in log.read_text().splitlines()) == wanted  # each run once
    assert all(float(r["score"]) == int(r["seed"]) / 10 for r in read_rows(csv_path))


def test_jobs_2_forks_a_worker_that_shares_the_sweep(tmp_path):
    """``Parallel(jobs=2)``: a forked worker and this process split the runs,
    each run once, every row stored."""
    import os

    from benchmarks.sweep import Parallel, run_sweep

    csv_path, log = tmp_path / "r.csv", tmp_path / "runs.log"

    def run(entry):
        with open(log, "a") as f:
            f.write(f"{entry['seed']} {os.getpid()}\n")
        time.sleep(0.05)
        return {"score": entry["seed"] / 10}

    plan = [{"seed": s, "config_id": "c"} for s in range(12)]
    rows = run_sweep(csv_path, plan, run, ("seed", "config_id"), quiet=True, numeric=("score",),
                     parallel=Parallel(jobs=2))
    runs = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(seed) for seed, _ in runs) == list(range(12))  # each run once
    assert len({pid for _, pid in runs}) == 2 and str(os.getpid()) in {pid for _, pid in runs}
    assert [float(r["score"]) for r in rows] == [s / 10 for s in range(12)]
    assert sorted(int(r["seed"]) for r in read_rows(csv_path)) == list(range(12))


def test_jobs_above_1_refuse_a_gpu(capsys):
    """The workers are forked, and CUDA cannot cross a fork (checked where
    the arguments are read, so also on a machine without a GPU)."""
    import argparse

    from benchmarks.sweep import parallel_options

    parser = argparse.ArgumentParser(prog="python -m benchmarks.linkpred")
    args = argparse.Namespace(jobs=2, device="cuda:0", shard=None, merge=[])
    with pytest.raises(SystemExit):
        parallel_options(parser, args, "linkpred")
    assert "--jobs 2 forks CPU processes of one torch thread each, and CUDA cannot be used across a fork; with " \
           "--device cuda run --jobs 1" in capsys.readouterr().err
    assert parallel_options(parser, argparse.Namespace(jobs=1, device="cuda", shard=None, merge=[]), "linkpred").jobs == 1


def test_a_failed_worker_gives_its_runs_back_to_the_sweep(tmp_path, capsys):
    import os

    from benchmarks.sweep import Parallel, run_sweep

    parent = os.getpid()

    def run(entry):
        if os.getpid() != parent:
            raise RuntimeError("the worker fails")
        time.sleep(0.02)
        return {"score": entry["seed"] / 10}

    plan = [{"seed": s, "config_id": "c"} for s in range(6)]
    rows = run_sweep(tmp_path / "r.csv", plan, run, ("seed", "config_id"), quiet=True, numeric=("score",),
                     parallel=Parallel(jobs=2))
    assert [float(r["score"]) for r in rows] == [s / 10 for s in range(6)]
    assert "1 worker process(es) failed (exit 1; see above); this process did their runs" in capsys.readouterr().err


def test_a_cut_or_damaged_row_is_run_again(tmp_path, capsys):
    from benchmarks.sweep import run_sweep

    csv_path = tmp_path / "r.csv"
    plan = [{"seed": s, "config_id": "c"} for s in range(4)]
    calls = []

    def run(entry):
        calls.append(entry["seed"])
        return {"score": 0.5 + entry["seed"]}

    run_sweep(csv_path, plan, run, ("seed", "config_id"), quiet=True, numeric=("score",))
    lines = csv_path.read_text().splitlines()
    lines[2] = lines[2].replace("1.5", "1.x")  # seed 1: a score that is no number
    csv_path.write_text("\n".join(lines)[:-9])  # seed 3: the file cut mid-row
    calls.clear()
    rows = run_sweep(csv_path, plan, run, ("seed", "config_id"), quiet=True, numeric=("score",))
    assert sorted(calls) == [1, 3]
    err = capsys.readouterr().err
    assert "r.csv, line 3: score '1.x' is not a number; that run is done again" in err
    assert "r.csv, line 5: it is cut short or has extra fields; that run is done again" in err
    assert [float(r["score"]) for r in rows] == [0.5, 1.5, 2.5, 3.5]
    assert len(read_rows(csv_path)) == 4


@pytest.mark.slow
def test_two_benchmark_processes_on_one_out_keep_every_row(tmp_path, data_root):
    import os
    import subprocess
    import sys

    out = tmp_path / "shared"
    argv = [sys.executable, "-m", "benchmarks.linkpred", "--datasets", "cora", "--methods", "fixed", "--dims", "4",
            "--epochs", "5", "--data-root", str(data_root), "--out", str(out), "--quiet", "--seeds"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(argv + seeds, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for seeds in (["0", "1", "2"], ["3", "4", "5"])]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert sorted(r["seed"] for r in read_rows(out / "linkpred.csv")) == ["0", "1", "2", "3", "4", "5"]


@pytest.mark.parametrize("unit", [(), ("dataset", "seed")])
def test_shards_cover_every_run_exactly_once(unit):
    from benchmarks.sweep import shard_of

    plan = [{"dataset": d, "seed": s, "method": m} for d in ("a", "b") for s in range(5) for m in ("x", "y", "z")]
    for n in (1, 2, 3, 7, 40):
        parts = [shard_of(plan, (i, n), unit) for i in range(1, n + 1)]
        ids = sorted(id(e) for part in parts for e in part)
        assert ids == sorted(id(e) for e in plan)  # every run in exactly one shard
        if unit and n > 1:  # a unit's runs stay in one shard, and the shards share the units out evenly
            owner = {(e["dataset"], e["seed"]): i for i, part in enumerate(parts) for e in part}
            assert all(owner[(e["dataset"], e["seed"])] == i for i, part in enumerate(parts) for e in part)
            sizes = [len(part) for part in parts]
            assert max(sizes) - min(sizes) <= 3
        if not unit:
            sizes = [len(part) for part in parts]
            assert max(sizes) - min(sizes) <= 1


def test_a_curve_methods_points_are_one_unit_and_other_runs_their_own():
    from benchmarks.sweep import shard_of, units_of
    from benchmarks.sizing import model_unit

    args = linkpred.parse_args(["--datasets", "cora", "--methods", "fixed", "dam", "pca", "dam-nested", "--dims",
                                "4", "8", "16", "--lams", "0.01", "0.1", "--seeds", "0", "1"])
    plan = linkpred.sweep_plan(args, linkpred.base_config(args))
    units = units_of(plan, model_unit)
    # per seed: 3 fixed runs, 2 dam runs, one pca curve, one dam-nested curve
    assert len(plan) == 2 * (3 + 2 + 3 + 3) and len(units) == 2 * (3 + 2 + 1 + 1)
    curves = [u for u in units if len(u) > 1]
    assert sorted((u[0]["method"], u[0]["seed"], [e["dim"] for e in u]) for u in curves) == [
        ("dam-nested", 0, [4, 8, 16]), ("dam-nested", 1, [4, 8, 16]), ("pca", 0, [4, 8, 16]), ("pca", 1, [4, 8, 16])]
    for n in (2, 3, 5):  # shards keep each curve whole
        parts = [shard_of(plan, (i, n), model_unit) for i in range(1, n + 1)]
        assert sorted(id(e) for part in parts for e in part) == sorted(id(e) for e in plan)
        for curve in curves:
            assert sum(all(id(e) in {id(x) for x in part} for e in curve) for part in parts) == 1


def test_a_unit_with_a_run_claimed_elsewhere_is_left_whole_to_that_process(tmp_path):
    """Another live process holds one run of a unit: this one takes none of
    that unit's runs (the shared model is trained once), waits for them,
    and returns every row."""
    import os
    import threading

    from benchmarks.store import _claims_path, _lock_path, locked, write_csv

    from benchmarks.sweep import run_sweep

    csv_path = tmp_path / "r.csv"
    plan = [{"unit": u, "point": p, "config_id": "c"} for u in ("a", "b") for p in (1, 2, 3)]
    keys = ("unit", "point", "config_id")
    other = os.getppid()  # a live process that is not this one
    _claims_path(csv_path).write_text(json.dumps({"a|2|c": other}))

    def other_process_finishes():
        with locked(_lock_path(csv_path)):
            rows = [{**e, "score": 1.0} for e in plan if e["unit"] == "a"]
            write_csv(csv_path, rows + [dict(r) for r in read_rows(csv_path)] if csv_path.exists() else rows)
            _claims_path(csv_path).write_text("{}")

    calls = []

    def run(entry):
        calls.append((entry["unit"], entry["point"]))
        if len(calls) == 1:
            threading.Timer(0.3, other_process_finishes).start()
        return {"score": 2.0}

    rows = run_sweep(csv_path, plan, run, keys, quiet=True, numeric=("score",), unit=("unit",))
    assert calls == [("b", 1), ("b", 2), ("b", 3)]
    assert [(r["unit"], r["point"], float(r["score"])) for r in rows] == [
        (e["unit"], str(e["point"]), 1.0 if e["unit"] == "a" else 2.0) for e in plan]


def test_shards_in_three_folders_merge_into_the_whole_sweep(tmp_path, capsys):
    from benchmarks.sweep import Parallel, run_sweep

    plan = [{"seed": s, "config_id": "c"} for s in range(10)]
    calls = []

    def run(entry):
        calls.append(entry["seed"])
        return {"score": entry["seed"] / 4}

    keys = ("seed", "config_id")
    for name in ("part1", "part2", "part3", "all", "other"):
        (tmp_path / name).mkdir()
    for i in (1, 2, 3):
        rows = run_sweep(tmp_path / f"part{i}" / "r.csv", plan, run, keys, quiet=True, numeric=("score",),
                         parallel=Parallel(shard=(i, 3)))
        assert [int(r["seed"]) for r in rows] == list(range(i - 1, 10, 3))
    assert sorted(calls) == list(range(10))
    calls.clear()
    merged = Parallel(merge=[tmp_path / f"part{i}" for i in (1, 2, 3)])
    rows = run_sweep(tmp_path / "all" / "r.csv", plan, run, keys, quiet=True, numeric=("score",), parallel=merged)
    assert calls == [] and "merged 10 run(s)" in capsys.readouterr().out
    assert [(int(r["seed"]), float(r["score"])) for r in rows] == [(s, s / 4) for s in range(10)]
    # merging again adds nothing, and a run stored already keeps its row
    assert run_sweep(tmp_path / "all" / "r.csv", plan, run, keys, quiet=True, numeric=("score",),
                     parallel=merged) == rows and calls == []
    other = tmp_path / "other" / "r.csv"
    run_sweep(other, plan[:1], lambda e: {"score": 9.0}, keys, quiet=True, numeric=("score",))
    capsys.readouterr()
    again = run_sweep(tmp_path / "all" / "r.csv", plan, run, keys, quiet=True, numeric=("score",),
                      parallel=Parallel(merge=[other.parent]))
    assert again == rows and "merged 0 run(s)" in capsys.readouterr().out


@pytest.mark.slow
def test_jobs_2_gives_the_rows_of_jobs_1(tmp_path, data_root):
    """Two worker processes (one torch thread each) share the sweep: every
    run once, the same numbers as one process, one report."""
    import subprocess
    import sys

    timing = {"wall_s", "train_s", "seconds", "peak_rss_mb"}
    results = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        command = [sys.executable, "-m", "benchmarks.linkpred", "--datasets", "cora", "--methods", "fixed", "dam",
                   "--dims", "4", "8", "--lams", "0.03", "--seeds", "0", "1", "--epochs", "5", "--data-root",
                   str(data_root), "--out", str(out), "--quiet", "--jobs", jobs]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        rows = read_rows(out / "linkpred.csv")
        assert len(rows) == 6  # fixed 4 and 8, dam from 8, seeds 0 and 1
        results[jobs] = sorted(({k: v for k, v in r.items() if k not in timing} for r in rows),
                               key=lambda r: (r["method"], r["dim"], r["seed"]))
        assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {
            "linkpred.csv", "linkpred.md", "linkpred.json", "linkpred.png", "probe.png"}
        assert "--jobs " + jobs in json.loads((out / "linkpred.json").read_text())["command"]
    assert results["1"] == results["2"]
