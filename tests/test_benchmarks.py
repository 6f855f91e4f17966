import csv
import json
import time

import pytest

from benchmarks import linkpred, nodeclf
from benchmarks.tables import summarise


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_linkpred_writes_one_row_per_run_and_resumes(tmp_path, data_root, capsys):
    out = tmp_path / "lp"
    common = ["--datasets", "cora", "--dims", "8", "--methods", "fixed", "dam", "--lam", "0.03",
              "--data-root", str(data_root), "--out", str(out), "--quiet"]
    assert linkpred.main(common + ["--seeds", "0", "1", "--epochs", "5"]) == 0
    rows = _rows(out / "linkpred.csv")
    assert len(rows) == 4  # 2 methods x 1 dim x 2 seeds
    required = "dataset,model,method,dim,width,seed,lam,test_auc,test_ap,val_auc,epochs,train_s".split(",")
    assert all(column in rows[0] for column in required)
    assert {(r["method"], r["seed"]) for r in rows} == {("fixed", "0"), ("fixed", "1"), ("dam", "0"), ("dam", "1")}
    assert all(r["width"] == "8" for r in rows if r["method"] == "fixed")
    assert all(0.5 < float(r["test_auc"]) <= 1 for r in rows)
    meta = json.loads((out / "linkpred.json").read_text())
    assert meta["config"]["epochs"] == 5 and "torch" in meta["environment"]
    table = (out / "linkpred.md").read_text()
    assert "| cora | gae | inner | dam | 8 | 0.03 | 2 |" in table

    # A second run with one more seed reuses the four stored runs.
    capsys.readouterr()
    assert linkpred.main(common + ["--seeds", "0", "1", "2", "--epochs", "5"]) == 0
    assert "reusing 4 finished run(s)" in capsys.readouterr().out
    again = _rows(out / "linkpred.csv")
    assert len(again) == 6 and again[:4] == rows
    # Other settings (here the epochs) are other runs, not reused.
    assert linkpred.main(common + ["--seeds", "0", "1", "--epochs", "6"]) == 0
    assert len(_rows(out / "linkpred.csv")) == 10


def test_missing_dataset_exits_2_with_one_line(tmp_path, capsys):
    code = linkpred.main(["--datasets", "pubmed", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("error: dataset PubMed not found") and "ind.pubmed.x" in err


def test_unwritable_output_exits_2(tmp_path, capsys, data_root):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = linkpred.main(["--datasets", "cora", "--data-root", str(data_root), "--out", str(blocker / "sub")])
    assert code == 2 and "cannot write to --out" in capsys.readouterr().err


@pytest.mark.parametrize("module, bad, message", [
    (linkpred, ["--epochs", "0"], "epochs must be >= 1, got 0"),
    (linkpred, ["--dims", "0"], "dim must be >= 1, got 0"),
    (linkpred, ["--lam", "-1"], "lam must be >= 0, got -1.0"),
    (linkpred, ["--dropout", "1"], "dropout must be in [0, 1), got 1.0"),
    (linkpred, ["--model", "gat"], "invalid choice: 'gat'"),
    (nodeclf, ["--parts", "probe", "probe"], "--parts lists probe more than once"),
    (linkpred, ["--jobs", "0"], "--jobs must be >= 1, got 0"),
    (linkpred, ["--jobs", "100000"], "--jobs 100000 is more than the"),
    (linkpred, ["--shard", "3/2"], "--shard 3/2: I must be between 1 and N"),
    (nodeclf, ["--shard", "one/2"], "--shard must be I/N with whole numbers, such as 1/4, got 'one/2'"),
    (linkpred, ["--merge", "no-such-folder"], "--merge no-such-folder: no linkpred.csv there"),
])
def test_bad_arguments_exit_2_with_one_line(module, bad, message, capsys):
    with pytest.raises(SystemExit) as info:
        module.parse_args(bad)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err and err.startswith("usage: ") is False


def test_nodeclf_runs_the_probe_and_the_supervised_part(tmp_path, data_root):
    out = tmp_path / "nc"
    assert nodeclf.main(["--datasets", "cora", "--dims", "4", "8", "--methods", "fixed", "dam", "pca",
                         "--lam", "0.03", "--gcn-lam", "0.05", "0.1", "--seeds", "0", "--epochs", "5",
                         "--data-root", str(data_root), "--out", str(out), "--quiet"]) == 0
    rows = _rows(out / "nodeclf.csv")
    assert [(r["part"], r["method"], r["dim"], r["lam"]) for r in rows] == [
        ("probe", "fixed", "4", "0.0"), ("probe", "fixed", "8", "0.0"), ("probe", "dam", "8", "0.03"),
        ("probe", "pca", "4", "0.0"), ("probe", "pca", "8", "0.0"),
        ("supervised", "gcn-fixed", "4", "0.0"), ("supervised", "gcn-fixed", "8", "0.0"),
        ("supervised", "gcn-dam", "8", "0.05"), ("supervised", "gcn-dam", "8", "0.1")]
    # a supervised row is the run train_node_classifier gives with the same settings
    from damgraph import NodeClfConfig, load_dataset
    from damgraph.nodeclf import train_node_classifier

    data = load_dataset("cora", root=data_root, normalize_features=True)[0]
    direct = train_node_classifier(data, NodeClfConfig(hidden=8, lam=0.1, epochs=5, patience=5, seed=0))
    row = rows[-1]
    assert float(row["acc"]) == direct.test_acc and int(row["width"]) == direct.width
    # the probe's accuracy is the linear probe's; pca at 4 really gives 4 columns
    assert all(r["acc"] == r["probe_acc"] for r in rows if r["part"] == "probe")
    assert [r["width"] for r in rows if r["method"] == "pca"] == ["4", "8"]
    report = (out / "nodeclf.md").read_text()
    assert "probe:" in report and "supervised:" in report and (out / "nodeclf.png").stat().st_size > 0
    assert set(json.loads((out / "nodeclf.json").read_text())["config"]) == {"probe", "supervised"}


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
    while time.time() < deadline and not ((out / "linkpred.csv").exists() and len(_rows(out / "linkpred.csv")) >= 1):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _rows(out / "linkpred.csv")
    assert 1 <= len(done) < 4  # killed mid-sweep, the file parses
    result = subprocess.run(argv[:-1], capture_output=True, text=True)
    assert result.returncode == 0
    assert f"reusing {len(done)} finished run(s)" in result.stdout
    rows = _rows(out / "linkpred.csv")
    assert len(rows) == 4 and rows[:len(done)] == done


def test_nodeclf_reuses_the_runs_of_a_linkpred_sweep(tmp_path, data_root, capsys):
    common = ["--datasets", "cora", "--dims", "4", "--methods", "fixed", "--seeds", "0", "--epochs", "5",
              "--data-root", str(data_root), "--quiet"]
    assert linkpred.main(common + ["--out", str(tmp_path / "lp")]) == 0
    capsys.readouterr()
    argv = common + ["--parts", "probe", "--out", str(tmp_path / "nc")]
    assert nodeclf.main(argv + ["--reuse-linkpred", str(tmp_path / "lp" / "linkpred.csv")]) == 0
    out = capsys.readouterr().out
    assert "imported 1 probe run(s)" in out and "reusing 1 finished run(s)" in out
    (lp_row,), (nc_row,) = _rows(tmp_path / "lp" / "linkpred.csv"), _rows(tmp_path / "nc" / "nodeclf.csv")
    assert nc_row["acc"] == lp_row["probe_acc"] and nc_row["part"] == "probe"
    assert nodeclf.main(argv + ["--reuse-linkpred", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


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
    assert sorted(int(r["seed"]) for r in _rows(csv_path)) == wanted
    assert sorted(int(line.split()[0]) for line in log.read_text().splitlines()) == wanted  # each run once
    assert all(float(r["score"]) == int(r["seed"]) / 10 for r in _rows(csv_path))


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
    assert sorted(int(r["seed"]) for r in _rows(csv_path)) == list(range(12))


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
    assert len(_rows(csv_path)) == 4


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
    assert sorted(r["seed"] for r in _rows(out / "linkpred.csv")) == ["0", "1", "2", "3", "4", "5"]


def _block_model_file(tmp_path):
    """Three planted communities of 40 nodes, as an edge-list file: ``(graph, path)``."""
    import networkx as nx

    g = nx.stochastic_block_model([40, 40, 40], [[0.25, 0.01, 0.01], [0.01, 0.25, 0.01], [0.01, 0.01, 0.25]],
                                  seed=0)
    path = tmp_path / "sbm.txt"
    path.write_text("".join(f"{u} {v}\n" for u, v in g.edges))
    return g, path


def test_embed_benchmark_scores_every_method_on_held_out_edges(tmp_path, capsys):
    """The user-path benchmark on a small edge-list file: every method gets a
    row with AUCs in range, the spectral embedding takes damgraph's width,
    and a re-run reuses the rows."""
    from benchmarks import embed

    g, path = _block_model_file(tmp_path)
    argv = ["--graphs", str(path), "--seeds", "0", "--dim", "16", "--out", str(tmp_path / "out"), "--quiet"]
    assert embed.main(argv) == 0
    rows = {r["method"]: r for r in _rows(tmp_path / "out" / "embed.csv")}
    assert set(rows) == {"damgraph", "spectral", "adamic-adar", "resource-allocation", "preferential-attachment"}
    assert rows["spectral"]["width"] == rows["damgraph"]["width"] and 1 <= int(rows["damgraph"]["width"]) <= 16
    for method, row in rows.items():
        # degrees say nothing in a block model of equal blocks: preferential attachment may fall below chance
        assert (0.0 if method == "preferential-attachment" else 0.5) < float(row["test_auc"]) <= 1.0
        assert float(row["seconds"]) >= 0
        assert int(row["test_pairs"]) == 2 * int(0.1 * g.number_of_edges())  # RandomLinkSplit floors
    assert float(rows["damgraph"]["test_auc"]) > 0.8  # three planted communities
    capsys.readouterr()
    assert embed.main(argv) == 0 and "reusing 5 finished run(s)" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")} == {
        "embed.csv", "embed.md", "embed.json", "embed.png"}


def test_embed_benchmark_passes_the_penalty_weight_to_damgraph(tmp_path, capsys):
    """``--lam 0`` trains damgraph without the gate's penalty, so no unit
    closes, and the run gets its own id beside the default's (the default,
    0.03, given explicitly is the default's run); the report records the
    weight each run used."""
    from benchmarks import embed
    from damgraph.config import model_config

    _, path = _block_model_file(tmp_path)
    argv = ["--graphs", str(path), "--seeds", "0", "--dim", "16", "--methods", "damgraph", "--out",
            str(tmp_path / "out"), "--quiet"]
    report = tmp_path / "out" / "embed.md"
    assert embed.main(argv) == 0
    assert f"'lam': {model_config('gae').lam}," in report.read_text()  # the weight used
    assert embed.main(argv + ["--lam", "0"]) == 0
    assert "'lam': 0.0," in report.read_text()
    rows = {r["config_id"]: r for r in _rows(tmp_path / "out" / "embed.csv")}
    assert len(rows) == 2
    free = next(r for cid, r in rows.items() if "|lam=0.0" in cid)
    default = next(r for cid, r in rows.items() if "lam=" not in cid)
    assert int(free["width"]) == 16 and int(default["width"]) < 16
    capsys.readouterr()  # the default given explicitly is the default run, not a new one
    assert embed.main(argv + ["--lam", str(model_config("gae").lam)]) == 0
    assert "reusing 1 finished run(s)" in capsys.readouterr().out
    assert len(_rows(tmp_path / "out" / "embed.csv")) == 2


def test_embed_benchmark_refuses_a_missing_peer_package(capsys):
    import importlib.util

    from benchmarks import embed

    if importlib.util.find_spec("nodevectors") is not None:
        pytest.skip("nodevectors is installed here")
    with pytest.raises(SystemExit) as info:
        embed.parse_args(["--methods", "prone"])
    assert info.value.code == 2
    assert "need nodevectors; install them with: pip install 'damgraph[peers]'" in capsys.readouterr().err


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
                                "4", "8", "16", "--lam", "0.01", "0.1", "--seeds", "0", "1"])
    plan = linkpred.sweep_plan(args, "c")
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
            write_csv(csv_path, rows + [dict(r) for r in _rows(csv_path)] if csv_path.exists() else rows)
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
                   "--dims", "4", "8", "--lam", "0.03", "--seeds", "0", "1", "--epochs", "5", "--data-root",
                   str(data_root), "--out", str(out), "--quiet", "--jobs", jobs]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        rows = _rows(out / "linkpred.csv")
        assert len(rows) == 6  # fixed 4 and 8, dam from 8, seeds 0 and 1
        results[jobs] = sorted(({k: v for k, v in r.items() if k not in timing} for r in rows),
                               key=lambda r: (r["method"], r["dim"], r["seed"]))
        assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {
            "linkpred.csv", "linkpred.md", "linkpred.json", "linkpred.png", "probe.png"}
        assert "--jobs " + jobs in json.loads((out / "linkpred.json").read_text())["command"]
    assert results["1"] == results["2"]


def test_linkpred_on_an_ogb_folder_uses_its_split_and_writes_every_output(tmp_path, small_ogb_root, capsys):
    out = tmp_path / "ogb"
    argv = ["--datasets", "ogbl-ddi", "--quick", "--dims", "8", "--seeds", "0", "--methods", "fixed", "dam",
            "dam-prefix", "--epochs", "3", "--val-metric", "hits@20", "--data-root", str(small_ogb_root),
            "--out", str(out), "--quiet"]
    assert linkpred.main(argv) == 0
    rows = _rows(out / "linkpred.csv")
    assert {r["method"] for r in rows} == {"fixed", "dam", "dam-prefix"} and {r["dataset"] for r in rows} == {"ogbl-ddi"}
    assert all(r["epochs"] == "3" and r["val_metric"] == "hits@20" for r in rows)  # flags given with --quick win
    fixed = next(r for r in rows if r["method"] == "fixed")
    # measured (2 threads and 1 alike): 53 and 37 of 128 positives above the 20th-best negative; one step is 1/128
    assert float(fixed["val_hits@20"]) == pytest.approx(0.414, abs=0.008)
    assert float(fixed["test_hits@20"]) == pytest.approx(0.289, abs=0.008)
    # featureless: the learned 64-wide node inputs count as parameters
    assert int(fixed["num_params"]) == 300 * 64 + (64 * 16 + 16) + (16 * 8 + 8)
    assert "probe_acc" not in rows[0]  # no labels, no probe
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert files == ["linkpred.csv", "linkpred.json", "linkpred.md", "linkpred.png"]
    assert "test Hits@20" in (out / "linkpred.md").read_text()


def test_embed_benchmark_scores_an_ogb_graph_on_its_official_test_pairs(tmp_path, small_ogb_root):
    from benchmarks import embed
    from damgraph import load_dataset

    argv = ["--graphs", "ogbl-ddi", "--data-root", str(small_ogb_root), "--methods", "damgraph", "spectral",
            "adamic-adar", "--seeds", "0", "--dim", "16", "--out", str(tmp_path / "out"), "--quiet"]
    assert embed.main(argv) == 0
    rows = {r["method"]: r for r in _rows(tmp_path / "out" / "embed.csv")}
    test = load_dataset("ogbl-ddi", root=small_ogb_root)[0]
    for row in rows.values():
        assert int(row["test_pairs"]) == test.test_pos.size(1) + test.test_neg.size(1)
        assert int(row["edges"]) == test.train_pos.size(1)  # the training graph only
    # Adamic-Adar recomputed here with networkx on the training graph and scored by OGB's own Evaluator
    import networkx as nx
    import torch
    from ogb.linkproppred import Evaluator
    graph = nx.Graph(test.train_pos.t().tolist())
    graph.add_nodes_from(range(test.num_nodes))
    def adamic_adar(pairs):
        return torch.tensor([s for _, _, s in nx.adamic_adar_index(graph, pairs.t().tolist())])
    hits = Evaluator("ogbl-ddi").eval({"y_pred_pos": adamic_adar(test.test_pos),
                                       "y_pred_neg": adamic_adar(test.test_neg)})["hits@20"]
    assert float(rows["adamic-adar"]["test_hits@20"]) == pytest.approx(hits, abs=1e-9)
    # damgraph's row, as measured (2 threads and 1 alike); the spectral embedding's below it
    # (DAMEmbedding's defaults: projection inputs, random-walk positives, the width settled first; 4 of 16 units)
    assert int(rows["damgraph"]["width"]) == 4 == int(rows["spectral"]["width"])
    assert float(rows["damgraph"]["test_hits@20"]) == pytest.approx(0.680, abs=0.008)
    assert float(rows["damgraph"]["test_auc"]) == pytest.approx(0.813, abs=0.005)
    assert float(rows["spectral"]["test_hits@20"]) == pytest.approx(0.586, abs=0.008)


def test_normalised_features_are_other_runs(tmp_path, data_root):
    out = tmp_path / "lp"
    common = ["--datasets", "cora", "--dims", "8", "--methods", "fixed", "--seeds", "0", "--epochs", "2",
              "--data-root", str(data_root), "--out", str(out), "--quiet"]
    assert linkpred.main(common) == 0 and linkpred.main(common + ["--features", "normalized"]) == 0
    rows = _rows(out / "linkpred.csv")
    assert len(rows) == 2 and rows[1]["config_id"] == rows[0]["config_id"] + "|features=normalized"
    assert rows[0]["test_auc"] != rows[1]["test_auc"]
    assert json.loads((out / "linkpred.json").read_text())["args"]["features"] == "normalized"


def _stored(dataset, model, method, dim, seed, width, auc, config_id, lam=0.0, epochs=100):
    return {"dataset": dataset, "model": model, "method": method, "dim": dim, "seed": seed, "lam": lam,
            "config_id": config_id, "width": width, "test_auc": auc, "best_epoch": epochs - 50, "epochs": epochs}


def test_report_keeps_the_current_defaults_runs_and_applies_the_one_percent_rule(tmp_path, capsys):
    """Fixed 8/16/32 at 0.90/0.951/0.96: the line is 0.9504, the smallest fixed size within it 16; DAM at 12 units
    and 0.955 passes; a DAM run of another config id (an earlier protocol) is left out."""
    from benchmarks import report
    from benchmarks.plan import PER_RUN
    from benchmarks.store import write_csv
    from damgraph.config import config_id, gateless, model_config

    plain, gated = (config_id(c, PER_RUN) for c in (gateless(model_config("gae")), model_config("gae")))
    rows = [_stored("g", "gae", "fixed", d, s, d, auc, plain) for s in (0, 1) for d, auc in ((8, 0.90), (16, 0.951), (32, 0.96))]
    rows += [_stored("g", "gae", "dam", 128, s, w, 0.955, gated, lam=0.1) for s, w in ((0, 11), (1, 13))]
    rows += [_stored("g", "gae", "dam", 128, 0, 40, 0.5, gated + "|old", lam=0.1)]
    write_csv(tmp_path / "linkpred.csv", rows)
    assert report.main(["--folders", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| g | gae | 2 | 32: 0.9600 ± 0.0000 | 0.9504 | 16 (0.9510) | 12.0 ± 1.4 | 0.9550 ± 0.0000 | yes | 0 of 8 |" \
        in text
    assert (tmp_path / "out" / "g-gae.png").is_file()
    rows[-2]["test_auc"] = rows[-3]["test_auc"] = 0.94  # below the line now
    write_csv(tmp_path / "linkpred.csv", rows)
    assert report.main(["--folders", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert "| no: score below the line |" in (tmp_path / "out" / "report.md").read_text()
    assert report.main(["--folders", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_stability_changes_multiply_one_setting_and_keep_the_schedule():
    from benchmarks.stability import SCHEDULES, changed
    from damgraph.config import model_config

    base = model_config("gae")
    assert changed(base, "beta_lr / 4").beta_lr == pytest.approx(base.beta_lr / 4)
    longer = changed(base, "epochs x 4")
    assert (longer.epochs, longer.patience) == (4 * base.epochs, 4 * base.patience) and longer.lr == base.lr
    joint = changed(model_config("gae", **SCHEDULES["joint"]), "lr x 4")
    assert (joint.settle, joint.gate_delay, joint.gate_alpha, joint.lr) == (0, 0, 1.0, 4 * base.lr)


def test_synthetic_graphs_by_name_and_the_knee_rule():
    from benchmarks import synthetic

    assert synthetic.make_graph("sbm-4").num_nodes == synthetic.make_graph("rdpg-2").num_nodes == 2048
    with pytest.raises(ValueError, match="use sbm-<communities> or rdpg-<rank>"):
        synthetic.make_graph("ring-4")
    rows = [{"graph": "sbm-8", "method": "fixed", "dim": d, "test_auc": a} for d, a in ((4, 0.80), (8, 0.85), (16, 0.852))]
    rows.append({"graph": "sbm-8", "method": "dam", "dim": 128, "width": 9, "test_auc": 0.849})
    (s,) = synthetic.summary(rows)
    assert (s["knee"], s["in_range"], s["within"], s["at_knee"]) == (8, True, True, True)
