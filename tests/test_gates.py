import math

import pytest
import torch

from damgraph import build_autoencoder, compact
from damgraph.gates import HardConcreteGate, L1Scale


def test_l1_scale_thresholds_relative_to_the_largest():
    gate = L1Scale(4, threshold=0.1)
    with torch.no_grad():
        gate.scale.copy_(torch.tensor([0.05, -2.0, 0.2, 1.0]))
    assert gate.values().tolist() == pytest.approx([0.0, -2.0, 0.2, 1.0])  # 0.05 < 0.1 * 2
    assert gate.num_open == 3 and gate.open_indices().tolist() == [1, 2, 3]
    assert gate.regularization().item() == pytest.approx(3.25)
    x = torch.ones(2, 4)
    gate.train()
    assert gate(x)[0].tolist() == pytest.approx([0.05, -2.0, 0.2, 1.0])  # no threshold while training
    gate.eval()
    assert gate(x)[0].tolist() == pytest.approx([0.0, -2.0, 0.2, 1.0])


def test_hard_concrete_test_time_gates_and_penalty_by_hand():
    gate = HardConcreteGate(3)
    with torch.no_grad():
        gate.log_alpha.copy_(torch.tensor([-3.0, 0.0, 4.0]))
    sig = [1 / (1 + math.exp(3.0)), 0.5, 1 / (1 + math.exp(-4.0))]
    expected = [min(1.0, max(0.0, s * 1.2 - 0.1)) for s in sig]  # 0 (closed), 0.5, 1 (clamped)
    assert gate.values().tolist() == pytest.approx(expected) and expected[0] == 0.0 and expected[2] == 1.0
    assert gate.num_open == 2
    shift = (2 / 3) * math.log(0.1 / 1.1)
    penalty = sum(1 / (1 + math.exp(-(a - shift))) for a in (-3.0, 0.0, 4.0))
    assert gate.regularization().item() == pytest.approx(penalty)


def test_hard_concrete_samples_in_training_within_bounds():
    torch.manual_seed(0)
    gate = HardConcreteGate(1000).train()
    z = gate(torch.ones(1, 1000))
    assert z.min() >= 0 and z.max() <= 1
    assert 0.0 < (z == 0).float().mean() < 0.2 and (z == 1).float().mean() > 0.3  # init open with p ~ 0.9


@pytest.mark.parametrize("gate, model", [("l1", "gae"), ("l0", "gae"), ("l1", "vgae"), ("l0", "vgae")])
def test_baseline_gates_compact_like_dam(tiny_graph, gate, model):
    torch.manual_seed(0)
    net = build_autoencoder(model, 5, dim=8, gate=gate, gate_hidden=True)
    g = net.encoder.out_gate
    with torch.no_grad():
        if gate == "l1":
            g.scale.copy_(torch.tensor([0.01, -1.5, 0.0, 0.7, 1.2, 0.02, -0.3, 0.9]))
        else:
            g.log_alpha.copy_(torch.tensor([-5.0, 1.0, -4.0, 0.5, 3.0, -6.0, 0.2, 2.0]))
    net.eval()
    z = net.encode(tiny_graph.x, tiny_graph.edge_index)
    keep = g.open_indices()
    assert keep.tolist() == [1, 3, 4, 6, 7]
    small = compact(net).eval()
    torch.testing.assert_close(small.encode(tiny_graph.x, tiny_graph.edge_index), z[:, keep], rtol=1e-5, atol=1e-6)
