import math

import pytest
import torch

from damgraph import DAMGate, dam_penalty, make_optimizer
from damgraph.gates import gate_widths, gate_parameters


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
    x = torch.randn(5, 8)
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
    # Adam moves a parameter with a constant gradient by ~lr per step.
    assert gate.beta.item() == pytest.approx(1.0 - 20 * 0.05, abs=1e-3)


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
