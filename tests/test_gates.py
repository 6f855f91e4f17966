"""damgraph.gates: the DAM gate, the L1 and hard-concrete L0 baselines,
the gate factory and the helpers that find gates in a model."""
import math

import pytest
import torch

from damgraph import DAMGate, build_autoencoder, compact, dam_penalty, make_optimizer
from damgraph.gates import (HardConcreteGate, L1Scale, gate_parameters, gate_penalty, gate_widths, make_gate,
                            size_gates)
from damgraph.training import fit


# -- DAMGate ------------------------------------------------------------------
def test_gate_values_match_hand_computed_numbers():
    gate = DAMGate(4)  # mu = 0, 1.25, 2.5, 3.75; beta = 1
    assert gate.mu.tolist() == [0.0, 1.25, 2.5, 3.75]
    expected = [0.7615941559557649, 0.9780261147388136, 0.9981778976111987, 0.9998503153123462]
    torch.testing.assert_close(gate.values(), torch.tensor(expected), rtol=0, atol=1e-7)
    with torch.no_grad():
        gate.beta.fill_(-2.0)  # mu + beta = -2, -0.75, 0.5, 1.75
    torch.testing.assert_close(gate.values(), torch.tensor([0.0, 0.0, 0.46211715726000974, 0.9413755384972874]),
                               rtol=0, atol=1e-7)


def test_alpha_scales_the_argument():
    gate = DAMGate(2, beta_init=-1.0, alpha=2.0)  # 4 * (mu + beta) = -4, 6
    torch.testing.assert_close(gate.values(), torch.tensor([0.0, math.tanh(6.0)]))
    assert not gate.alpha.requires_grad and [n for n, _ in gate.named_parameters()] == ["beta"]


def test_forward_multiplies_by_the_gate():
    gate = DAMGate(4, beta_init=-2.0)
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.testing.assert_close(gate(x), x * gate.values())
    assert (gate(x)[:, :2] == 0).all()


@pytest.mark.parametrize("beta, active", [(1.0, 10), (0.0, 9), (-1.0, 7), (-1.01, 7), (-2.2, 5), (-4.5, 0), (-6, 0)])
def test_num_open_for_given_beta(beta, active):
    gate = DAMGate(10, beta_init=beta)  # mu_j = j / 2: unit j is open iff j / 2 + beta > 0
    assert gate.num_open == active
    assert gate.open_slice == slice(10 - active, 10)
    assert gate.open_indices().tolist() == list(range(10 - active, 10))


def test_beta_gets_no_task_gradient_once_every_unit_is_closed():
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    closed = DAMGate(8, beta_init=-5.0)
    closed(x).pow(2).sum().backward()
    assert closed.num_open == 0 and closed.beta.grad == 0
    half = DAMGate(8, beta_init=-2.0)
    half(x).pow(2).sum().backward()
    assert half.beta.grad > 0


def test_units_close_from_the_lowest_index_up():
    gate = DAMGate(16)
    previous = set(range(16))
    for beta in torch.linspace(1.0, -5.5, 60):
        with torch.no_grad():
            gate.beta.fill_(float(beta))
        open_units = set(torch.nonzero(gate.values() > 0).flatten().tolist())
        assert open_units <= previous
        assert open_units == set(range(16 - len(open_units), 16))  # a top block
        previous = open_units
    assert previous == set()


def test_penalty_alone_drives_beta_down_at_a_steady_rate():
    gate = DAMGate(8)
    optimizer = make_optimizer(gate, lr=0.01, beta_lr=0.05)
    for _ in range(20):
        optimizer.zero_grad()
        (0.01 * dam_penalty(gate)).backward()
        optimizer.step()
    # Adam moves a parameter with a constant gradient g by lr * |g| / (|g| + eps) per step: with g = 0.01
    # and eps = 1e-8, 20 steps fall 20 * 0.05 * 1e-6 = 1e-6 short of 1.0 (measured 9.6e-7).
    assert gate.beta.item() == pytest.approx(1.0 - 20 * 0.05, abs=3e-6)
    assert gate.beta.item() > 0.0


@pytest.mark.parametrize("width, min_open, floor", [
    (8, 1, -5 * 7 / 8 + 5 / 16), (128, 1, -5 * 127 / 128 + 5 / 256), (8, 3, -5 * 5 / 8 + 5 / 16), (2, 1, -2.0),
    (1, 1, 0.5), (3, 3, 0.5), (8, 8, 5 / 16)])
def test_projection_keeps_the_top_units_open_and_passing_gradient(width, min_open, floor):
    gate = DAMGate(width, min_open=min_open)
    assert gate.beta_floor == pytest.approx(floor)
    with torch.no_grad():
        gate.beta.fill_(-10.0)
    gate.project_()
    assert gate.beta.item() == pytest.approx(floor) and gate.num_open == min_open
    gate(torch.ones(3, width)).sum().backward()  # the open units keep a path back to beta
    assert gate.beta.grad.item() > 0
    with torch.no_grad():  # above the floor, projection changes nothing, bit for bit
        gate.beta.fill_(floor + 0.1234)
    before = gate.beta.detach().clone()
    gate.project_()
    assert torch.equal(gate.beta.detach(), before)


def test_unguarded_gate_and_bad_min_open():
    gate = DAMGate(8, beta_init=-10.0, min_open=0)
    gate.project_()
    assert gate.beta.item() == -10.0 and gate.num_open == 0 and gate.beta_floor == -math.inf
    for bad in (-1, 9, 1.5):
        with pytest.raises(ValueError, match="min_open must be an integer from 0 to the width 8"):
            DAMGate(8, min_open=bad)


@pytest.mark.parametrize("min_open", [0, 1, 2])
def test_training_stops_beta_at_the_floor(min_open):
    """A penalty that would close every unit (beta falls 0.5 a step) leaves the guarded top units open."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), DAMGate(8, min_open=min_open))
    x = torch.randn(10, 3)
    optimizer = make_optimizer(model, lr=0.01, beta_lr=0.5)
    record = fit(model, optimizer, lambda step: model(x).pow(2).mean(), None, lam=1.0, epochs=30, patience=30)
    assert [w["1"] for w in record.width_trajectory][-1] == min_open
    assert min(w["1"] for w in record.width_trajectory) == min_open


def test_penalty_is_the_mean_of_betas_and_betas_skip_weight_decay():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), DAMGate(4, beta_init=0.5), DAMGate(4, beta_init=-1.5))
    assert dam_penalty(model).item() == pytest.approx(-0.5)
    assert gate_widths(model) == {"1": 4, "2": 2}
    optimizer = make_optimizer(model, lr=0.01, weight_decay=5e-4, beta_lr=0.2)
    weights, gates = optimizer.param_groups
    assert {id(p) for p in gates["params"]} == {id(p) for p in gate_parameters(model)}
    assert gates["weight_decay"] == 0.0 and gates["lr"] == 0.2
    assert weights["weight_decay"] == 5e-4 and len(weights["params"]) == 2


def test_bad_width_is_refused():
    with pytest.raises(ValueError, match="positive integer"):
        DAMGate(0)


def test_num_open_counts_exactly_the_non_zero_gates_at_every_boundary():
    """num_open is counted without computing g (it is asked every epoch):
    it must agree with (mask() > 0) everywhere, unit boundaries included."""
    gen = torch.Generator().manual_seed(0)
    for width in (1, 3, 16, 100):
        gate = DAMGate(width)
        betas = torch.cat([torch.randn(500, generator=gen) * 3, -gate.mu, -gate.mu + 1e-7, -gate.mu - 1e-7,
                           torch.tensor([0.0, -0.0, 10.0, -10.0])])
        for beta in betas:
            with torch.no_grad():
                gate.beta.fill_(beta)
            assert gate.num_open == int((gate.values() > 0).sum()), (width, float(beta))


# -- the baselines: L1Scale and HardConcreteGate ---------------------------------
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
    # z = 0 iff s <= 1/12, i.e. u <= sigmoid(-beta log 11 - log alpha); z = 1 iff s >= 11/12. With
    # log alpha = log 9 (init_open 0.9): P(z = 0) = 0.0220, P(z = 1) = 0.6453 (measured 0.026, 0.643;
    # 1000 draws give standard errors 0.0046 and 0.015: the margins are about 4 of them)
    p_closed = 1 / (1 + math.exp((2 / 3) * math.log(11) + math.log(9)))
    p_open = 1 / (1 + math.exp((2 / 3) * math.log(11) - math.log(9)))
    assert abs((z == 0).float().mean().item() - p_closed) < 0.02
    assert abs((z == 1).float().mean().item() - p_open) < 0.06


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
    # float rounding of the folded weights only: measured worst 8.9e-8 (|z| <= 0.29)
    torch.testing.assert_close(small.encode(tiny_graph.x, tiny_graph.edge_index), z[:, keep], rtol=0, atol=1e-6)


# -- the factory and the helpers ------------------------------------------------
def test_make_gate_builds_each_kind_and_refuses_others():
    dam, l1, l0 = make_gate("dam", 6, beta_init=-0.5), make_gate("l1", 6), make_gate("l0", 6)
    assert isinstance(dam, DAMGate) and dam.beta.item() == -0.5 and dam.width == 6
    assert isinstance(l1, L1Scale) and l1.scale.tolist() == [1.0] * 6
    assert isinstance(l0, HardConcreteGate) and l0.log_alpha.shape == (6,)
    # init_open 0.9: log(0.9 / 0.1)
    assert l0.log_alpha[0].item() == pytest.approx(math.log(9.0), rel=1e-6)
    with pytest.raises(ValueError, match="unknown gate 'l2': choose one of dam, l1, l0"):
        make_gate("l2", 6)


def test_reset_parameters_restores_each_gate_s_initial_state():
    gates = [DAMGate(4, beta_init=0.3), L1Scale(4), HardConcreteGate(4, init_open=0.8)]
    initial = [[p.detach().clone() for p in g.parameters()] for g in gates]
    with torch.no_grad():
        for g in gates:
            for p in g.parameters():
                p.add_(1.5)
    for g, before in zip(gates, initial):
        assert not all(torch.equal(p, b) for p, b in zip(g.parameters(), before))
        g.reset_parameters()
        assert all(torch.equal(p, b) for p, b in zip(g.parameters(), before))
    assert gates[0].beta.item() == pytest.approx(0.3)


def test_helpers_find_every_kind_of_gate_and_average_their_penalties():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), DAMGate(4, beta_init=0.5), L1Scale(4),
                                HardConcreteGate(3))
    assert [type(g) for g in size_gates(model)] == [DAMGate, L1Scale, HardConcreteGate]
    # DAM: beta 0.5; L1: sum |s| = 4; L0: 3 * sigmoid(log 9 - (2/3) log(0.1 / 1.1))
    l0 = 3 / (1 + math.exp(-(math.log(9.0) - (2 / 3) * math.log(0.1 / 1.1))))
    assert gate_penalty(model).item() == pytest.approx((0.5 + 4.0 + l0) / 3, rel=1e-6)
    assert dam_penalty(model).item() == 0.5  # the DAM gates only
    assert gate_widths(model) == {"1": 4, "2": 4, "3": 3}
    assert [p.shape for p in gate_parameters(model)] == [(), (4,), (3,)]
    plain = torch.nn.Linear(3, 4)
    assert gate_penalty(plain).item() == 0.0 and dam_penalty(plain).item() == 0.0 and gate_widths(plain) == {}


def test_a_hardened_dam_gate_passes_its_open_units_at_gain_one_and_keeps_them():
    from damgraph.gates import DAMGate, L1Scale

    gate = DAMGate(128, alpha=2.0)
    with torch.no_grad():
        gate.beta.fill_(-4.4)  # 15 units open, the lowest at gain 0.056
    before = gate.values().detach()
    assert gate.num_open == 15 and before[gate.open_slice].min() < 0.1
    gate.harden_()
    after = gate.values().detach()
    assert gate.num_open == 15 and torch.equal(after == 0, before == 0)
    assert torch.allclose(after[gate.open_slice], torch.ones(15), atol=1e-6)
    with pytest.raises(NotImplementedError, match="L1Scale has no hard form"):
        L1Scale(4).harden_()


def test_a_registered_gate_kind_is_a_setting_choice_and_built_wherever_a_gate_goes():
    from damgraph import config
    from damgraph.config import LinkPredConfig
    from damgraph.encoders import GNNEncoder
    from damgraph.gates import GATE_KINDS, register_gate

    register_gate("toy-scale", lambda width, beta_init, alpha: L1Scale(width))
    try:
        assert LinkPredConfig(gate="toy-scale").gate == "toy-scale"
        encoder = GNNEncoder(5, 8, gate="toy-scale", gate_hidden=True)
        assert isinstance(encoder.out_gate, L1Scale) and isinstance(encoder.hidden_gates[0], L1Scale)
        with pytest.raises(ValueError, match="registered already"):
            register_gate("toy-scale", lambda width, beta_init, alpha: L1Scale(width))
    finally:
        del GATE_KINDS["toy-scale"]
        config.GATES.remove("toy-scale")
    with pytest.raises(ValueError, match="unknown gate 'toy-scale'"):
        LinkPredConfig(gate="toy-scale")


def test_the_settings_choices_are_the_registries():
    from damgraph import config
    from damgraph.gates import GATE_KINDS
    from damgraph.layers import LAYERS

    assert config.GATES == list(GATE_KINDS) and config.CONVS == list(LAYERS)
