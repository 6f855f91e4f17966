import pytest

from damgraph import compact
from damgraph import NodeClfConfig
from damgraph.nodeclf import accuracy, train_node_classifier


def test_dam_gcn_classifies_cora_and_learns_its_width(cora_normalized):
    result = train_node_classifier(cora_normalized, NodeClfConfig(hidden=64, epochs=80, patience=80))
    assert result.test_acc > 0.78
    assert set(result.widths) == {"hidden_gates.0"}
    assert result.width == result.widths["hidden_gates.0"] < 64
    small = compact(result.model)
    assert small.convs[0].out_channels == result.width
    assert result.num_params_compact < result.num_params
    assert accuracy(small, cora_normalized, cora_normalized.test_mask) == pytest.approx(result.test_acc)


def test_fixed_gcn_and_same_seed_same_numbers(cora_normalized):
    config = NodeClfConfig(hidden=16, dam=False, epochs=30, patience=30, seed=7)
    a = train_node_classifier(cora_normalized, config)
    b = train_node_classifier(cora_normalized, config)
    assert a.widths == {} and a.width == 16
    assert a.test_acc == b.test_acc and a.record.val_score == b.record.val_score
    assert a.record.best_epoch == b.record.best_epoch
    row = a.row()
    assert {"hidden", "width", "test_acc", "val_acc", "seed", "train_s"} <= set(row)
