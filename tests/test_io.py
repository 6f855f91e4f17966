"""damgraph.io: embeddings in npy / word2vec text / csv, checkpoints, and
atomic writes."""
import argparse
import json
import os

import numpy as np
import pytest
import torch

from damgraph.io import (atomic_write, atomic_write_text, embedding_format, jsonable, load_checkpoint,
                         load_embeddings, save_checkpoint, save_embeddings)

EMBEDDING = np.array([[0.1, -2.5, 3.0], [1e-8, 0.0, -0.3333333432674408], [7.25, 1e5, -1e-3]], dtype=np.float32)


@pytest.mark.parametrize("ids", [["a", "node-b", "c.3"], [10, 2, 7]])
def test_npy_round_trip_keeps_the_values_and_the_id_types(tmp_path, ids):
    path = tmp_path / "emb.npy"
    written = save_embeddings(path, EMBEDDING, ids)
    assert written == [path, tmp_path / "emb.npy.ids.json"]
    assert json.loads(written[1].read_text()) == ids
    embedding, node_ids = load_embeddings(path)
    assert embedding.dtype == np.float32 and np.array_equal(embedding, EMBEDDING)
    assert node_ids == ids  # ints stay ints in JSON


@pytest.mark.parametrize("suffix, fmt", [(".txt", "w2v"), (".vec", "w2v"), (".csv", "csv")])
@pytest.mark.parametrize("ids", [["a", "node-b", "c.3"], [10, 2, 7]])
def test_text_round_trips_are_exact_and_give_ids_as_text(tmp_path, suffix, fmt, ids):
    path = tmp_path / f"emb{suffix}"
    assert embedding_format(path) == fmt
    assert save_embeddings(path, EMBEDDING, ids) == [path]
    embedding, node_ids = load_embeddings(path)
    assert np.array_equal(embedding, EMBEDDING)  # repr() of the float32 values reads back exactly
    assert node_ids == [str(i) for i in ids]
    lines = path.read_text().splitlines()
    if fmt == "w2v":
        assert lines[0] == "3 3" and lines[1].split()[0] == str(ids[0]) and len(lines) == 4
    else:
        assert lines[0] == "id,d0,d1,d2" and lines[1].split(",")[0] == str(ids[0]) and len(lines) == 4


def test_csv_keeps_ids_with_spaces_and_commas_that_w2v_refuses(tmp_path):
    ids = ["New York", "a,b", "x"]
    save_embeddings(tmp_path / "e.csv", EMBEDDING, ids)
    assert load_embeddings(tmp_path / "e.csv")[1] == ids
    with pytest.raises(ValueError, match="node id 'New York' is empty or holds whitespace"):
        save_embeddings(tmp_path / "e.txt", EMBEDDING, ids)
    assert not (tmp_path / "e.txt").exists()


def test_format_by_name_and_bad_inputs(tmp_path):
    path = tmp_path / "emb.data"
    with pytest.raises(ValueError, match="cannot tell the format from the suffix"):
        save_embeddings(path, EMBEDDING, [0, 1, 2])
    save_embeddings(path, EMBEDDING, [0, 1, 2], fmt="csv")
    assert path.read_text().startswith("id,d0,d1,d2\n")
    assert np.array_equal(load_embeddings(path, fmt="csv")[0], EMBEDDING)
    with pytest.raises(ValueError, match="unknown embedding format 'parquet': choose one of npy, w2v, csv"):
        embedding_format(path, "parquet")
    with pytest.raises(ValueError, match="embedding has shape \\(3, 3\\) but there are 2 node ids"):
        save_embeddings(tmp_path / "e.npy", EMBEDDING, [0, 1])
    with pytest.raises(ValueError, match="header says 3 x 3 but the rows disagree"):
        (tmp_path / "bad.txt").write_text("3 3\na 1 2 3\nb 1 2 3\n")
        load_embeddings(tmp_path / "bad.txt")


def test_jsonable_ids():
    assert jsonable(np.int64(4)) == 4 and type(jsonable(np.int64(4))) is int
    assert jsonable(("a", np.float32(0.5))) == ["a", 0.5]
    assert jsonable(frozenset()) == "frozenset()" and jsonable(None) is None


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    config = {"dim": 4, "model": "gae", "path": tmp_path}  # non-JSON values are written as text
    path = tmp_path / "model.pt"
    assert save_checkpoint(path, model.state_dict(), config) == [path, tmp_path / "model.pt.json"]
    state, loaded_config = load_checkpoint(path)
    assert list(state) == list(model.state_dict())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert loaded_config == {"dim": 4, "model": "gae", "path": str(tmp_path)}
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    fresh.load_state_dict(state)
    assert torch.equal(fresh[0].weight, model[0].weight)


def test_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.ones(2), "payload": argparse.Namespace(command="rm -rf /")}, path)
    (tmp_path / "evil.pt.json").write_text("{}")
    with pytest.raises(ValueError, match="evil.pt is not a plain weights file .*only checkpoints written by"):
        load_checkpoint(path)


def test_atomic_write_leaves_no_temp_file_on_failure(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old contents")

    def fail(f):
        f.write("half of the new")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    assert path.read_text() == "old contents"  # the old file is untouched

    def interrupted(f):
        f.write(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # not an Exception: cleaned up all the same
        atomic_write(tmp_path / "new.bin", interrupted, binary=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_write_replaces_with_the_usual_mode(tmp_path):
    path = tmp_path / "out.txt"
    old = os.umask(0o022)
    try:
        atomic_write_text(path, "first")
        atomic_write_text(path, "second\n")
    finally:
        os.umask(old)
    assert path.read_text() == "second\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_output_set_commits_every_file_or_none(tmp_path):
    from damgraph.io import OutputSet

    with OutputSet() as outputs:
        outputs.write_text(tmp_path / "a.txt", "a")
        outputs.write_text(tmp_path / "b.txt", "b")
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []
        assert outputs.commit() == [tmp_path / "a.txt", tmp_path / "b.txt"]
    assert (tmp_path / "a.txt").read_text() == "a" and (tmp_path / "b.txt").read_text() == "b"

    # a failure while writing the second file: neither appears, no temporary file is left
    with pytest.raises(RuntimeError):
        with OutputSet() as outputs:
            outputs.write_text(tmp_path / "c.txt", "c")
            outputs.write(tmp_path / "d.txt", lambda f: (_ for _ in ()).throw(RuntimeError("disk gone")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_a_failed_rename_puts_back_the_files_already_replaced(tmp_path):
    from damgraph.io import OutputError, OutputSet

    (tmp_path / "a.txt").write_text("old a")
    with OutputSet() as outputs:
        outputs.write_text(tmp_path / "a.txt", "new a")
        outputs.write_text(tmp_path / "b.txt", "new b")
        (tmp_path / "b.txt").mkdir()  # appears meanwhile: renaming onto it fails
        (tmp_path / "b.txt" / "x").write_text("")
        with pytest.raises(OutputError, match="cannot write .*b.txt: .*; nothing was written"):
            outputs.commit()
    assert (tmp_path / "a.txt").read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_outputs_are_checked_against_the_inputs_and_each_other(tmp_path):
    from damgraph.io import OutputError, check_outputs

    graph = tmp_path / "g.txt"
    graph.write_text("a b\n")
    (tmp_path / "link.txt").symlink_to(graph)
    with pytest.raises(OutputError, match="--out .*link.txt is the input graph"):
        check_outputs({"--out": tmp_path / "link.txt"}, {"input graph": graph})
    with pytest.raises(OutputError, match="--model .*m.pt is the same file as --out"):
        check_outputs({"--out": tmp_path / "m.pt", "--model": tmp_path / "." / "m.pt"})
    check_outputs({"--out": tmp_path / "new.npy"}, {"input graph": graph, "--features file": None})


@pytest.mark.slow
def test_sigterm_while_writing_leaves_nothing(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from damgraph.io import OutputSet\n"
        "with OutputSet() as outputs:\n"
        f"    outputs.write_text({str(tmp_path / 'first.txt')!r}, 'done')\n"
        "    def slow(f):\n"
        "        f.write('partial'); f.flush(); print('writing', flush=True); time.sleep(60)\n"
        f"    outputs.write({str(tmp_path / 'second.txt')!r}, slow)\n"
        "    outputs.commit()\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    assert len(list(tmp_path.iterdir())) == 2  # the two temporary files
    process.send_signal(signal.SIGTERM)
    start = time.monotonic()
    process.wait(timeout=30)
    assert time.monotonic() - start < 10
    assert process.returncode != 0
    assert list(tmp_path.iterdir()) == []


def test_text_lines_reads_gzip_and_a_byte_order_mark(tmp_path):
    import gzip

    from damgraph.io import text_lines

    (tmp_path / "g.txt.gz").write_bytes(gzip.compress("a b\nb c\n".encode()))
    (tmp_path / "bom.txt").write_bytes("\ufeffa b\n".encode("utf-8"))
    assert list(text_lines(tmp_path / "g.txt.gz")) == [(1, "a b\n"), (2, "b c\n")]
    assert list(text_lines(tmp_path / "bom.txt")) == [(1, "a b\n")]


def test_a_full_disk_names_the_file_not_the_temporary_one(tmp_path):
    import errno

    from damgraph.io import OutputError, OutputSet

    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError) as caught:
        with OutputSet() as outputs:
            outputs.write_text(tmp_path / "emb.npy.ids.json", "[]")
            outputs.write(tmp_path / "emb.npy", full)
    assert str(caught.value) == (f"cannot write {tmp_path / 'emb.npy'}: No space left on device; "
                                 "free some space or choose another location")
    assert list(tmp_path.iterdir()) == []
