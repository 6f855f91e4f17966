"""Bad input, table-driven: each case ends with exit code 2 (or the named
exception in Python), one line that says the problem and the fix, and not
a single file changed or added."""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Callable, Dict

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from damgraph import DAMEmbedding
from damgraph.cli import main as damgraph_main
from damgraph.graphs import GraphInputError, prepare_graph

EDGES = "".join(f"n{i} n{(i + 1) % 30}\nn{i} n{(i + 7) % 30}\n" for i in range(30))  # 60 edges, 30 nodes


def _files(folder: Path) -> Dict[str, str]:
    """Every file and folder under :obj:`folder`, with a hash of its content."""
    found = {}
    for path in sorted(folder.rglob("*")):
        found[str(path.relative_to(folder))] = (
            "folder" if path.is_dir() else hashlib.sha1(path.read_bytes()).hexdigest())
    return found


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "e.txt").write_text(EDGES)
    (tmp_path / "f.csv").write_text("".join(f"n{i},{i},1\n" for i in range(30)))
    (tmp_path / "sub").mkdir()
    return tmp_path


def _write(name: str, content) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif callable(content):
            content(path)
        else:
            path.write_text(content)
    return make


def _npy(array) -> Callable[[Path], None]:
    return lambda path: np.save(path, array, allow_pickle=True)


def _model(path: Path) -> None:
    DAMEmbedding(dim=8, epochs=3, val_fraction=0).fit(nx.karate_club_graph()).save(path)


# (argv of `damgraph`, files to make first, what the error line says)
CLI_CASES = [
    # damgraph predict
    (["predict", "none.pt", "--all"], {}, "none.pt: no such model file"),
    (["predict", "m.pt"], {"m.pt": _model}, "say what to predict: --pairs FILE, --nodes ID [ID ...] or --all"),
    (["predict", "m.pt", "--nodes", "0", "99"], {"m.pt": _model}, "node '99' is not in the model's graph (34 nodes)"),
    (["predict", "m.pt", "--pairs", "nopairs.txt"], {"m.pt": _model}, "nopairs.txt: no such pairs file"),
    (["predict", "m.pt", "--pairs", "p.txt"], {"m.pt": _model, "p.txt": "0 1\n5\n"}, "p.txt: a line holds one id ('5')"),
    (["predict", "m.pt", "--all", "--out", "m.pt"], {"m.pt": _model}, "--out m.pt is the model; writing it would destroy the input"),
    (["predict", "m.pt", "--all", "--out", "m.pt.json"], {"m.pt": _model}, "--out m.pt.json is the model's config"),
    (["predict", "m.pt", "--all"], {"m.pt": b"not a model"}, "m.pt is not a plain weights file"),
    # outputs that would destroy something, checked before any work
    (["embed", "e.txt", "--out", "e.txt"], {}, "--out e.txt is the input graph; writing it would destroy"),
    (["embed", "e.txt", "--out", "f.csv", "--features", "f.csv"], {}, "--out f.csv is the --features file"),
    (["embed", "e.txt", "--out", "o.npy", "--save-model", "o.npy"], {}, "--save-model o.npy is the same file as --out"),
    (["embed", "e.txt", "--out", "o.csv", "--save-model", "o.csv.json"], {},
     "--save-model o.csv.json is the same file as --out (sidecar)"),
    (["embed", "e.txt", "--out", "o.npy", "--save-model", "e.txt"], {}, "--save-model e.txt is the input graph"),
    (["embed", "e.txt", "--out", "sub"], {}, "cannot tell the format from the suffix of sub"),
    (["embed", "e.txt", "--out", "sub.npy"], {"sub.npy": lambda p: p.mkdir()}, "--out sub.npy is a folder"),
    (["embed", "e.txt", "--out", "missing/o.npy"], {}, "folder missing does not exist; create it or choose another --out"),
    (["embed", "e.txt", "--out", "o.npy", "--save-model", "missing/m.pt"], {},
     "folder missing does not exist; create it or choose another --save-model"),
    (["embed", "e.txt", "--out", "o.bin"], {}, "cannot tell the format from the suffix of o.bin"),
    # graph files
    (["embed", "nope.txt", "--out", "o.npy"], {}, "nope.txt: no such file or dataset"),
    (["info", "empty.txt"], {"empty.txt": ""}, "empty.txt: the file is empty"),
    (["info", "c.txt"], {"c.txt": "# only a comment\n\n"}, "c.txt: the file holds no edges"),
    (["info", "four.txt"], {"four.txt": "a b 1 2\n"}, "four.txt, line 1: expected 'u v' or 'u v weight' (or one id for a node without edges), got 4 fields"),
    (["info", "mixed.txt"], {"mixed.txt": "a b 1\nb c\n"}, "mixed.txt, line 2: missing weight"),
    (["info", "neg.txt"], {"neg.txt": "a b -1\nb c 1\n"}, "neg.txt, line 1: weight '-1' is negative; GCN needs weights >= 0"),
    (["info", "nan.txt"], {"nan.txt": "a b 1\nb c nan\n"}, "nan.txt, line 2: weight 'nan' is not a number"),
    (["info", "huge.txt"], {"huge.txt": "a b 1e300\nb c 1\n"}, "weight '1e300' is beyond the float32 range"),
    (["info", "inf.txt"], {"inf.txt": "a b inf\nb c 1\n"}, "weight 'inf' is beyond the float32 range"),
    (["info", "word.txt"], {"word.txt": "a b 1\nb c heavy\n"}, "word.txt, line 2: weight 'heavy' is not a number"),
    (["info", "h.csv", "--no-header"], {"h.csv": "source,target,weight\n1,2,1\n2,3,1\n"},
     "h.csv, line 1: weight 'weight' is not a number; fix it (if line 1 names the columns, pass --header)"),
    (["info", "latin.txt"], {"latin.txt": "caf\xe9 bar\n".encode("latin-1")},
     "latin.txt, line 1: byte 0xe9 is not UTF-8; save the file as UTF-8"),
    (["info", "bin.txt"], {"bin.txt": b"a b\n\x00\x01\x02"}, "bin.txt is binary (it holds NUL bytes)"),
    (["info", "z.txt"], {"z.txt": b"PK\x03\x04rest"}, "z.txt is a zip archive, not a text file"),
    (["info", "bad.gz"], {"bad.gz": gzip.compress(b"a b\nb c\n")[:-12]}, "bad.gz is a damaged gzip file"),
    (["info", "g.graphml"], {"g.graphml": "<graphml><broken"}, "g.graphml: not a readable graphml file"),
    (["info", "rect.npz"], {"rect.npz": lambda p: sp.save_npz(p, sp.csr_matrix(np.ones((2, 3))))},
     "adjacency matrix is 2x3; it must be square"),
    (["info", "negative.npz"], {"negative.npz": lambda p: sp.save_npz(p, sp.csr_matrix(-np.eye(3, k=1)))},
     "adjacency matrix values hold the negative value -1"),
    # features
    (["embed", "e.txt", "--out", "o.npy", "--features", "nofeat.csv"], {}, "nofeat.csv: no such features file"),
    (["embed", "e.txt", "--out", "o.npy", "--features", "z.npy"], {"z.npy": _npy(np.array(3.0))},
     "z.npy holds a 0-d array; give a 2-d array"),
    (["embed", "e.txt", "--out", "o.npy", "--features", "v.npy"], {"v.npy": _npy(np.ones(30))}, "v.npy holds a 1-d array"),
    (["embed", "e.txt", "--out", "o.npy", "--features", "w.npy"], {"w.npy": _npy(np.zeros((30, 0)))},
     "w.npy has 0 feature columns"),
    (["embed", "e.txt", "--out", "o.npy", "--features", "p.npy"], {"p.npy": _npy(np.array([{"a": 1}], dtype=object))},
     "p.npy holds Python objects; save a numeric 2-d array"),
    (["embed", "e.txt", "--out", "o.npy", "--features", "ids.csv"], {"ids.csv": "".join(f"n{i}\n" for i in range(30))},
     "ids.csv holds node ids but no feature values"),
    (["embed", "e.txt", "--out", "o.npy", "--features", "ragged.csv"], {"ragged.csv": "n0,1,2\nn1,1\n"},
     "ragged.csv, row 2: 1 values where row 1 has 2"),
    (["embed", "e.txt", "--out", "o.npy", "--features", "text.csv"], {"text.csv": "n0,1\nn1,x\n"},
     "text.csv, row 2: a value is not a number"),
    (["embed", "e.txt", "--out", "o.npy", "--features", "nan.csv"],
     {"nan.csv": "".join(f"n{i},{'nan' if i == 3 else 1}\n" for i in range(30))}, "features hold NaN or inf"),
    (["embed", "e.txt", "--out", "o.npy", "--features", "few.csv"], {"few.csv": "n0,1\nn1,1\n"},
     "features are missing for 28 of 30 node(s)"),
    # settings
    (["embed", "e.txt", "--out", "o.npy", "--device", "tpu"], {}, "unknown device 'tpu'"),
    (["embed", "e.txt", "--out", "o.npy", "--lam", "nan"], {}, "lam must be a finite number, got nan"),
    (["embed", "e.txt", "--out", "o.npy", "--seed", "-1"], {}, "seed must be in [0, 4294967295], got -1"),
    (["embed", "e.txt", "--out", "o.npy", "--dim", "0"], {}, "dim must be >= 1, got 0"),
    (["embed", "e.txt", "--out", "o.npy", "--dim", "100000", "--epochs", "1"], {},
     "this run needs about 301.0 GiB (298.2 GiB for 20,013,100,001 parameters"),
    # graphs the model cannot learn from
    (["embed", "one.txt", "--out", "o.npy"], {"one.txt": "a b\n"},
     "too few for a 5% validation split (at least 20 needed); pass val_fraction=0 (--val-fraction 0)"),
    (["embed", "loops.txt", "--out", "o.npy", "--val-fraction", "0"], {"loops.txt": "a a\nb b\n"},
     "the graph has no edges (after removing self-loops)"),
    (["embed", "zero.txt", "--out", "o.npy", "--val-fraction", "0"], {"zero.txt": "a b 0\nb c 0\n"},
     "the graph has no edges (after removing self-loops)"),
    (["embed", "w.txt", "--out", "o.npy", "--model", "maskgae", "--val-fraction", "0"], {"w.txt": "a b 2\nb c 1\n"},
     "model 'maskgae' does not use edge weights yet"),
    (["embed", "e.txt", "--out", "o.npy", "--lr", "1e30", "--quiet"], {},
     "became NaN or inf; lower the learning rate"),
    (["embed", "cora2", "--out", "o.npy"], {}, "cora2: no such file or dataset"),
]


@pytest.mark.parametrize("argv, make, message", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_command_line_refuses_bad_input(workdir, capsys, argv, make, message):
    for name, content in make.items():
        _write(name, content)(workdir)
    before = _files(workdir)
    code = damgraph_main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message in err, err
    assert _files(workdir) == before


def _fitted(tmp_path: Path) -> Path:
    est = DAMEmbedding(dim=8, epochs=3, val_fraction=0).fit(nx.karate_club_graph())
    path = tmp_path / "m.pt"
    est.save(path)
    return path


def _edit_sidecar(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        side = path.with_name(path.name + ".json")
        config = json.loads(side.read_text())
        edit(config)
        side.write_text(json.dumps(config))
    return apply


API_CASES = [
    (lambda: DAMEmbedding(dim=16.0).fit(nx.karate_club_graph()), TypeError, "dim must be an integer, got 16.0"),
    (lambda: DAMEmbedding(seed=None).fit(nx.karate_club_graph()), TypeError, "seed must not be None"),
    (lambda: DAMEmbedding(epochs=2.5).fit(nx.karate_club_graph()), TypeError, "epochs must be an integer, got 2.5"),
    (lambda: DAMEmbedding(val_fraction=0.7).fit(nx.karate_club_graph()), ValueError, "val_fraction must be a number in [0, 0.5)"),
    (lambda: prepare_graph(torch.tensor([[0.0, 1.5], [1.0, 2.0]])), GraphInputError, "must hold integer node indices, got torch.float32"),
    (lambda: prepare_graph(torch.tensor([[0, -1], [1, 2]])), GraphInputError, "the negative node index -1"),
    (lambda: prepare_graph(np.array([0, 1, 2])), GraphInputError, "edge_index must have shape [2, E], got [3]"),
    (lambda: prepare_graph(Data(edge_index=torch.tensor([[0, 5], [1, 0]]), num_nodes=3)), GraphInputError,
     "Data.edge_index refers to node 5 but the Data has 3 nodes"),
    (lambda: prepare_graph(nx.path_graph(3), features=np.zeros((3, 0))), GraphInputError, "features have 0 columns"),
    (lambda: prepare_graph(nx.path_graph(3), features=np.ones((2, 4))), GraphInputError,
     "features have shape [2, 4] but the graph has 3 nodes"),
    (lambda: prepare_graph(nx.Graph([(0, 1, {"weight": -2.0}), (1, 2, {"weight": 1.0})])), GraphInputError,
     "edge weights hold the negative value -2"),
    (lambda: prepare_graph(nx.Graph([(0, 1, {"weight": 1e300})])), GraphInputError, "beyond the float32 range"),
    (lambda: prepare_graph(sp.csr_matrix(np.array([[0, np.nan], [np.nan, 0]]))), GraphInputError,
     "adjacency matrix values hold NaN"),
    (lambda: DAMEmbedding.load("missing.pt"), FileNotFoundError, "missing.pt: no such model file"),
]

LOAD_CASES = [
    (_edit_sidecar(lambda c: c.pop("width")), ValueError, "m.pt.json lacks the entry 'width'; save the model again"),
    (_edit_sidecar(lambda c: c.update(width=5)), ValueError, "holds an embedding of shape (34, 8) for 34 nodes"),
    (_edit_sidecar(lambda c: c["gate_widths"].update({"encoder.out_gate": 5})), ValueError,
     "m.pt.json do not match (size mismatch for"),
    (_edit_sidecar(lambda c: c["node_ids"].pop()), ValueError, "lists 33 node ids for 34 nodes"),
    (lambda p: p.with_name("m.pt.json").write_text("{not json"), ValueError, "m.pt.json is not valid JSON"),
    (lambda p: p.with_name("m.pt.json").unlink(), FileNotFoundError, "m.pt.json: missing"),
    (lambda p: torch.save({"code": object()}, p), ValueError, "m.pt is not a plain weights file"),
]


@pytest.mark.parametrize("call, error, message", API_CASES, ids=[c[2][:40] for c in API_CASES])
def test_python_api_refuses_bad_input(tmp_path, monkeypatch, call, error, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as caught:
        call()
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert _files(tmp_path) == {}


@pytest.mark.parametrize("damage, error, message", LOAD_CASES, ids=[c[2][:40] for c in LOAD_CASES])
def test_damaged_model_files_give_one_line(tmp_path, damage, error, message):
    path = _fitted(tmp_path)
    damage(path)
    before = _files(tmp_path)
    with pytest.raises(error) as caught:
        DAMEmbedding.load(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert _files(tmp_path) == before


# (argv of a benchmark, files to make first, what the error line says)
BENCHMARK_CASES = [
    ("linkpred", ["--seeds", "0", "0"], {}, "--seeds lists 0 more than once"),
    ("linkpred", ["--dims", "4", "4", "8"], {}, "--dims lists 4 more than once"),
    ("linkpred", ["--seeds", "-1"], {}, "--seeds: seed must be in [0, 4294967295], got -1"),
    ("linkpred", ["--lams", "nan"], {}, "--lams: lam must be a finite number, got nan"),
    ("linkpred", ["--device", "tpu"], {}, "unknown device 'tpu'"),
    ("nodeclf", ["--gcn-lams", "nan"], {}, "--gcn-lams: lam must be a finite number, got nan"),
    ("linkpred", ["--datasets", "nosuch"], {}, "unknown dataset 'nosuch'"),
    ("linkpred", ["--out", "file.txt"], {"file.txt": "x"}, "--out file.txt is a file; give a folder"),
    ("linkpred", ["--datasets", "cora", "--out", "res"], {"res/linkpred.csv": b"\x00\x01binary"},
     "res/linkpred.csv is binary (it holds NUL bytes)"),
    ("nodeclf", ["--datasets", "cora", "--out", "res", "--reuse-linkpred", "lp.csv"],
     {"lp.csv": b"\x89HDF\r\n"}, "lp.csv is a HDF5 file, not a text file"),
]


@pytest.mark.parametrize("task, argv, make, message", BENCHMARK_CASES, ids=[" ".join(c[1]) for c in BENCHMARK_CASES])
def test_benchmarks_refuse_bad_input(workdir, data_root, capsys, monkeypatch, task, argv, make, message):
    import importlib

    monkeypatch.setenv("DAMGRAPH_DATA", str(data_root))
    for name, content in make.items():
        (workdir / name).parent.mkdir(exist_ok=True)
        _write(name, content)(workdir)
    argv = argv if "--out" in argv else argv + ["--out", "res"]
    before = _files(workdir)
    module = importlib.import_module(f"benchmarks.{task}")
    try:
        code = module.main(argv + ["--quiet"])
    except SystemExit as exit:  # argparse's usage errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err, err
    assert err.strip().splitlines()[-1].count("error: ") == 1
    assert _files(workdir) == before
