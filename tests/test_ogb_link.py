"""OGB link-prediction sets from OGB's files: counts, the official split,
safe loading, errors, and the metric against OGB's own Evaluator."""
import pickle

import numpy as np
import pytest
import torch

from damgraph import DatasetNotFoundError, load_dataset
from damgraph.ogb_link import read_split_file
from damgraph.splits import link_split, official_split
from conftest import write_ogb_link_folder


@pytest.fixture(scope="module")
def ddi(data_root):
    if not (data_root / "ogbl_ddi" / "raw" / "edge.csv.gz").is_file():
        pytest.skip(f"ogbl-ddi is not in the data root {data_root}")
    return load_dataset("ogbl-ddi", root=data_root)[0]


def test_ddi_counts_and_official_split(ddi):
    assert ddi.num_nodes == 4267 and ddi.x is None and ddi.metric == "hits@20"
    assert ddi.train_pos.shape == (2, 1067911) and ddi.edge_index.shape == (2, 2 * 1067911)
    assert ddi.val_pos.shape == (2, 133489) and ddi.val_neg.shape == (2, 101882)
    assert ddi.test_pos.shape == (2, 133489) and ddi.test_neg.shape == (2, 95599)
    train, val, test = link_split(ddi, seed=3)
    assert torch.equal(train.pos_edge_label_index, ddi.train_pos)
    assert val.edge_index is train.edge_index and test.edge_index is train.edge_index  # the training graph only
    assert torch.equal(test.neg_edge_label_index, ddi.test_neg) and not hasattr(test, "mrr_neg_dst")
    # the split is OGB's: no seed changes it, and no evaluation pair is a training edge
    assert torch.equal(link_split(ddi, seed=7)[1].pos_edge_label_index, val.pos_edge_label_index)
    keys = set((ddi.train_pos[0] * ddi.num_nodes + ddi.train_pos[1]).tolist())
    sample = test.pos_edge_label_index[:, :2000]
    assert not keys & set((sample[0] * ddi.num_nodes + sample[1]).tolist())


def test_a_small_ogb_folder_reads_into_an_official_split(tmp_path):
    pos, neg = np.array([[0, 2], [1, 3]]), np.array([[0, 3]])
    write_ogb_link_folder(tmp_path / "ogbl_ddi", np.array([[0, 1], [1, 2], [2, 3]]), (pos, neg), (pos, neg))
    data = load_dataset("ogbl-ddi", root=tmp_path, download=False)[0]
    assert data.num_nodes == 4 and data.edge_index.size(1) == 6
    train, val, test = official_split(data)
    assert train.pos_edge_label_index.tolist() == [[0, 1, 2], [1, 2, 3]]
    assert val.pos_edge_label_index.tolist() == [[0, 1], [2, 3]] and test.neg_edge_label_index.tolist() == [[0], [3]]


class Payload:
    """An object a plain pickle would rebuild by calling code."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_split_files_load_without_unpickling_code(tmp_path):
    path = tmp_path / "valid.pt"
    torch.save({"edge": Payload()}, path, pickle_module=pickle)
    with pytest.raises(ValueError, match=r"valid.pt is not an OGB split file of NumPy arrays .*download the dataset again"):
        read_split_file(path)


def test_missing_ogb_files_name_the_files_and_the_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("ogbl-collab", root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "ogbl_collab") in message and "raw/edge.csv.gz" in message
    assert "downloading is switched off" in message and "--data-root" in message


def test_hits_and_mrr_match_ogbs_evaluator():
    evaluator_module = pytest.importorskip("ogb.linkproppred")
    from damgraph.evaluation import hits_at_k, mrr

    gen = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(500, generator=gen) + 1, torch.randn(2000, generator=gen)
    ddi = evaluator_module.Evaluator("ogbl-ddi").eval({"y_pred_pos": pos, "y_pred_neg": neg})
    assert hits_at_k(pos, neg, 20) == pytest.approx(ddi["hits@20"], abs=1e-12)
    per_positive = torch.randn(500, 100, generator=gen)
    citation = evaluator_module.Evaluator("ogbl-citation2").eval({"y_pred_pos": pos, "y_pred_neg": per_positive})
    assert mrr(pos, per_positive) == pytest.approx(float(citation["mrr_list"].mean()), abs=1e-6)


def test_validation_hits_selects_on_the_shared_negatives(tiny_graph):
    from damgraph.evaluation import validation_score
    from damgraph.models import InnerProductDecoder

    z = torch.tensor([[1.0], [0.9], [0.1], [0.2], [0.0], [0.5]])
    data = tiny_graph.clone()
    data.pos_edge_label_index = torch.tensor([[0, 2], [1, 3]])  # scores 0.9 and 0.02
    data.neg_edge_label_index = torch.tensor([[0, 5], [5, 4]])  # scores 0.5 and 0.0
    decoder = InnerProductDecoder()
    assert validation_score(z, data, decoder, "hits@20") == 1.0  # fewer than 20 negatives: OGB counts a hit
    data.neg_edge_label_index = torch.tensor([[0] * 20, [5] * 20])  # twenty negatives at 0.5
    assert validation_score(z, data, decoder, "hits@20") == 0.5  # only the 0.9 positive beats them
    assert validation_score(z, data, decoder) == pytest.approx(0.5)
