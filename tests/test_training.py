import warnings

import pytest
import torch
from torch import nn

from damgraph import DAMGate, make_optimizer
from damgraph.gates import SizeGate
from damgraph.training import STALL_EPOCHS, fit


def _setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), DAMGate(4))
    x = torch.randn(8, 3)
    return model, make_optimizer(model, lr=0.01, beta_lr=0.1), lambda step: model(x).pow(2).mean()


def test_without_validation_every_epoch_runs_and_the_last_is_kept():
    model, optimizer, loss = _setup()
    record = fit(model, optimizer, loss, None, lam=0.1, epochs=7, patience=1)
    assert record.val_score is None and record.best_epoch == record.epochs == 7
    assert len(record.losses) == len(record.width_trajectory) == 7
    # the weights are those after the 7th step: Adam moved beta (gradient of one sign) by ~beta_lr = 0.1 a
    # step from 1.0 (measured 0.3014; a gradient of varying size makes the steps slightly shorter)
    assert model[1].beta.item() == pytest.approx(1.0 - 7 * 0.1, abs=5e-3)
    assert record.losses[0] > record.losses[-1]


def test_patience_stops_and_restores_the_best_epoch():
    model, optimizer, loss = _setup()
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.8, 0.1, 0.1])
    betas = []

    def val_score():
        betas.append(model[1].beta.item())
        return next(scores)

    record = fit(model, optimizer, loss, val_score, lam=0.1, epochs=7, patience=3)
    assert record.best_epoch == 2 and record.epochs == 5 and record.val_score == 0.9
    assert record.val_scores == [0.5, 0.9, 0.7, 0.6, 0.8]
    assert model[1].beta.item() == betas[1]  # the weights of epoch 2 are back


def _scripted(model, values):
    scores, betas = iter(values), []

    def val_score():
        betas.append(model[1].beta.item())
        return next(scores)

    return val_score, betas


def test_min_epochs_keeps_no_earlier_epoch_and_patience_counts_from_there():
    model, optimizer, loss = _setup()
    val_score, betas = _scripted(model, [0.9, 0.5, 0.6, 0.55, 0.5, 0.5, 0.5, 0.5])
    record = fit(model, optimizer, loss, val_score, lam=0.1, epochs=8, patience=2, min_epochs=3)
    assert record.best_epoch == 3 and record.val_score == 0.6 and record.epochs == 5
    assert model[1].beta.item() == betas[2]


def test_val_window_ranks_epochs_by_their_trailing_mean():
    # alone, epoch 2 (0.9) is best; over windows of 3 epoch 7 is (mean 0.8 against 0.7 at epochs 2 and 3)
    model, optimizer, loss = _setup()
    val_score, betas = _scripted(model, [0.5, 0.9, 0.7, 0.2, 0.8, 0.8, 0.8, 0.1])
    record = fit(model, optimizer, loss, val_score, lam=0.1, epochs=8, patience=5, val_window=3)
    assert record.best_epoch == 7 and record.val_score == 0.8  # the kept epoch's own score
    assert model[1].beta.item() == betas[6]
    # min_epochs=1 and val_window=1 select exactly as before
    model, optimizer, loss = _setup()
    val_score, _ = _scripted(model, [0.5, 0.9, 0.7, 0.2, 0.8, 0.8, 0.8, 0.1])
    assert fit(model, optimizer, loss, val_score, lam=0.1, epochs=8, patience=5).best_epoch == 2


def test_min_delta_lets_small_gains_replace_the_kept_epoch_but_not_restart_the_patience():
    scores = [0.5, 0.9, 0.905, 0.91, 0.912, 0.8, 0.8, 0.8, 0.8, 0.8]
    runs = {}
    for min_delta in (0.0, 0.02):
        model, optimizer, loss = _setup()
        val_score, betas = _scripted(model, scores)
        record = fit(model, optimizer, loss, val_score, lam=0.1, epochs=10, patience=3, min_delta=min_delta)
        assert model[1].beta.item() == betas[record.best_epoch - 1]
        runs[min_delta] = (record.best_epoch, record.epochs, record.val_score)
    # 0: every better epoch restarts the patience (the last at epoch 5, so the run ends at 8); 0.02: epochs
    # 3-5 gain at most 0.012 over epoch 2's 0.9, so the patience counts from epoch 2 and ends the run at 5,
    # which is still the kept one
    assert runs == {0.0: (5, 8, 0.912), 0.02: (5, 5, 0.912)}
    with pytest.raises(ValueError, match="min_delta must be >= 0, got -0.1"):
        fit(model, optimizer, loss, val_score, lam=0.1, epochs=10, patience=3, min_delta=-0.1)


class _ScriptedWidth(SizeGate):
    """A gate whose open width after step k is ``widths[k - 1]``."""

    def __init__(self, widths):
        super().__init__()
        self.widths, self.steps, self.scale = widths, 0, nn.Parameter(torch.ones(1))

    def values(self):
        return self.scale

    def regularization(self):
        return self.scale.sum()

    def project_(self):
        self.steps += 1

    @property
    def num_open(self):
        return self.widths[self.steps - 1]


def test_val_tolerance_keeps_the_narrowest_epoch_within_the_tolerance_of_the_best():
    scores = [0.70, 0.75, 0.745, 0.744, 0.70, 0.746, 0.80, 0.795, 0.6, 0.6, 0.6, 0.6]
    widths = [128, 120, 60, 30, 20, 25, 40, 10, 10, 10, 10, 10]
    kept = {}
    for tolerance in (0.0, 0.01, 0.1):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), _ScriptedWidth(widths))
        x = torch.randn(8, 3)
        weights = []
        values = iter(scores)

        def val_score():
            weights.append(model[0].weight.detach().clone())
            return next(values)

        record = fit(model, make_optimizer(model, lr=0.01, beta_lr=0.1), lambda step: model(x).pow(2).mean(),
                     val_score, lam=0.0, epochs=12, patience=3, val_tolerance=tolerance)
        torch.testing.assert_close(model[0].weight, weights[record.best_epoch - 1], rtol=0, atol=0)
        assert record.val_score == scores[record.best_epoch - 1]
        kept[tolerance] = (record.best_epoch, record.epochs)
    # 0: the best score so far (epoch 2), and the patience of 3 ends the run at epoch 5; 0.01: epoch 6 (0.746, 25 units) was the narrowest within 0.01 of 0.75 until
    # epoch 7 raised the best to 0.80, then epoch 8 (0.795, 10 units); 0.1: 0.70 at 20 units (epoch 5) is
    # within 0.1 of 0.75, then 0.795 at 10 units; the patience counts from the kept epoch
    assert kept == {0.0: (2, 5), 0.01: (8, 11), 0.1: (8, 11)}


def _recording(optimizer, model):
    """Wrap optimizer.step to record every parameter's gradient as the step sees it."""
    seen = []
    step = optimizer.step

    def recorded(*args, **kwargs):
        seen.append([p.grad.detach().clone() for p in model.parameters()])
        return step(*args, **kwargs)

    optimizer.step = recorded
    return seen


def _huge_loss_setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), DAMGate(4))
    x = torch.randn(8, 3)
    return model, lambda step: 1e4 * model(x).pow(2).mean()  # the weights' gradient norm is far above 0.5


def _global_norm(grads):
    return torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item()


@pytest.mark.parametrize("grad_clip", [0.0, 0.5])
def test_grad_clip_bounds_the_weights_gradient_norm_but_not_the_gates(grad_clip):
    # the unclipped gradients of loss + lam * beta at the initial weights
    reference, reference_loss = _huge_loss_setup()
    (reference_loss(0) + 0.1 * reference[1].beta).backward()
    expected = [p.grad for p in reference.parameters()]  # weight, bias, beta
    weight_norm = _global_norm(expected[:2])
    assert weight_norm > 1000  # measured 6.7e3; beta's gradient 1.5e3

    model, loss = _huge_loss_setup()
    optimizer = make_optimizer(model, lr=0.01, beta_lr=0.1)
    seen = _recording(optimizer, model)
    fit(model, optimizer, loss, None, lam=0.1, epochs=3, patience=3, grad_clip=grad_clip)
    assert len(seen) == 3
    if grad_clip == 0:  # no clipping: the step sees the gradients as they are
        for got, want in zip(seen[0], expected):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        return
    # the weights' gradients scaled by clip / (norm + 1e-6), as clip_grad_norm_ does
    scale = grad_clip / (weight_norm + 1e-6)
    for got, want in zip(seen[0][:2], expected[:2]):
        torch.testing.assert_close(got, want * scale, rtol=1e-6, atol=0)  # measured relative error 0
    assert seen[0][2].item() == expected[2].item()  # beta's gradient is left alone
    for grads in seen:  # every step: the weights' norm at most the clip
        assert _global_norm(grads[:2]) <= grad_clip * (1 + 1e-6)


def test_steps_per_epoch_calls_each_step_and_records_the_mean_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), DAMGate(4))
    x = torch.randn(8, 3)
    calls, values = [], []

    def loss(step):
        calls.append(step)
        value = (step + 1) * model(x).pow(2).mean()
        values.append(value.item())
        return value

    optimizer = make_optimizer(model, lr=0.01)
    record = fit(model, optimizer, loss, None, lam=0.0, epochs=2, patience=2, steps_per_epoch=3)
    assert calls == [0, 1, 2, 0, 1, 2]
    assert record.losses == pytest.approx([sum(values[:3]) / 3, sum(values[3:]) / 3], rel=1e-12)
    assert values[1] > values[0] and len(record.width_trajectory) == 2
    assert int(optimizer.state[model[0].weight]["step"]) == 6  # one optimiser step per call


def test_losses_include_the_gate_penalty():
    model, optimizer, loss = _setup()
    values = []

    def recorded(step):
        value = loss(step)
        values.append(value.item() + 0.1 * model[1].beta.item())
        return value

    record = fit(model, optimizer, recorded, None, lam=0.1, epochs=3, patience=3)
    assert record.losses == pytest.approx(values, rel=1e-6)


def test_bad_arguments_and_a_diverging_loss():
    model, optimizer, loss = _setup()
    for kwargs in (dict(epochs=0, patience=1), dict(epochs=1, patience=0), dict(epochs=1, patience=1,
                                                                             steps_per_epoch=0)):
        with pytest.raises(ValueError, match="epochs, patience, steps_per_epoch, min_epochs, val_window and val_every must be >= 1"):
            fit(model, optimizer, loss, None, lam=0.1, **kwargs)
    with pytest.raises(FloatingPointError, match="the training loss became nan at epoch 1"):
        fit(model, optimizer, lambda step: model(torch.full((2, 3), float("nan"))).sum(), None, lam=0.1,
            epochs=2, patience=2)


def test_a_validation_score_that_is_never_a_number_is_one_clear_error():
    model, optimizer, loss = _setup()
    with pytest.raises(FloatingPointError, match="the validation score was never a number"):
        fit(model, optimizer, loss, lambda: float("nan"), lam=0.1, epochs=5, patience=2)


def _rising(model, x, rise):
    """A loss that grows by :obj:`rise` every call."""
    calls = []

    def loss(step):
        calls.append(step)
        return model(x).pow(2).mean() + rise * len(calls)

    return loss


@pytest.mark.parametrize("flat, rise, warns", [
    (STALL_EPOCHS, 1.0, True),  # the score stuck for the last STALL_EPOCHS epochs while the loss grew
    (STALL_EPOCHS - 1, 1.0, False),  # stuck one epoch fewer
    (STALL_EPOCHS, 0.0, False),  # stuck, but the loss did not grow (a converged model)
])
def test_a_run_that_stopped_learning_warns(flat, rise, warns):
    model, optimizer, _ = _setup()
    loss = _rising(model, torch.randn(8, 3), rise)
    epochs = flat + 2
    val_score, _ = _scripted(model, [0.7, 0.8] + [0.5] * flat)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = fit(model, optimizer, loss, val_score, lam=0.1, epochs=epochs, patience=epochs)
    stalled = [w for w in caught if "training stalled" in str(w.message)]
    assert record.best_epoch == 2 and record.epochs == epochs
    if warns:
        assert len(stalled) == 1 and stalled[0].category is RuntimeWarning
        assert f"stayed at 0.5 for the last {flat} epochs" in str(stalled[0].message)
        assert "the kept epoch is 2; clip the gradients (grad_clip=1.0)" in str(stalled[0].message)
    else:
        assert stalled == []


def test_gate_delay_holds_the_gates_then_they_move():
    model, optimizer, loss = _setup()
    record = fit(model, optimizer, loss, None, lam=0.1, epochs=10, patience=10, gate_delay=2)
    betas = [b["1"] for b in record.beta_trajectory]
    assert betas[:2] == [1.0, 1.0] and betas[2] == pytest.approx(0.9, abs=5e-3)  # held, then ~beta_lr a step
    assert optimizer.param_groups[-1]["lr"] == 0.1  # the gates' learning rate given back at the end
    # a delay longer than a quarter of the run is cut to it, so that a short run still sizes
    model, optimizer, loss = _setup()
    assert [b["1"] for b in fit(model, optimizer, loss, None, lam=0.1, epochs=8, patience=8,
                                gate_delay=40).beta_trajectory][:3] == [1.0, 1.0, pytest.approx(0.9, abs=5e-3)]


def _settling_setup():
    """A gate of 40 units whose task needs none of them: lam closes it, one unit's gradient at a time."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 40), DAMGate(40))
    x = torch.randn(8, 3)
    return model, make_optimizer(model, lr=0.01, beta_lr=0.2), lambda step: model(x).pow(2).mean() * 1e-3


def test_settle_freezes_the_width_and_selects_only_later_epochs():
    model, optimizer, loss = _settling_setup()
    scores = iter([1.0] + [0.5] * 200)  # the best score comes first: selection must not take it
    record = fit(model, optimizer, loss, lambda: next(scores), lam=0.1, epochs=200, patience=30, settle=10)
    settled = record.settled_epoch
    widths = [w["1"] for w in record.width_trajectory]
    assert settled is not None and widths[0] > widths[settled - 1] == 1  # closed to its last unit, then held
    assert set(widths[settled - 1:]) == {1} and len({b["1"] for b in record.beta_trajectory[settled:]}) == 1
    assert record.best_epoch == settled + 1 and record.epochs == settled + 1 + 30  # patience counts from there
    # a run too short to settle stops sizing at half its epochs and still keeps an epoch
    model, optimizer, loss = _settling_setup()
    short = fit(model, optimizer, loss, lambda: 0.5, lam=0.0, epochs=6, patience=6, settle=10, gate_delay=40)
    assert short.settled_epoch == 3 and short.best_epoch == 4


def test_rewind_trains_the_learned_width_again_from_the_start():
    model, optimizer, loss = _settling_setup()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []

    def val_score():
        seen.append(model[0].weight.detach().clone())
        return 0.5

    record = fit(model, optimizer, loss, val_score, lam=0.1, epochs=100, patience=100, settle=10, rewind=True)
    settled = record.settled_epoch
    assert not torch.equal(seen[settled - 2], start["0.weight"])  # trained while sizing
    assert torch.equal(seen[settled - 1], start["0.weight"])  # back at the start when the gates freeze
    assert not torch.equal(seen[settled], start["0.weight"])  # and trains from there
    # with fresh Adam moments: the weights' step count restarted when the gates froze
    assert int(optimizer.state[model[0].weight]["step"]) == record.epochs - settled
    assert model[1].beta.item() == record.beta_trajectory[settled - 1]["1"]  # the gate kept as it was


def test_val_window_averages_no_score_from_before_the_gates_froze():
    """The sizing epochs and the rewound start score 1.0, the candidates
    after it rise from 0.01: a window reaching back before the freeze would
    rank the first candidate highest (0.81), the candidates' own the last."""
    model, optimizer, loss = _settling_setup()
    start = model[0].weight.detach().clone()
    rewound = []

    def val_score():
        if not rewound:
            rewound.extend([True] if torch.equal(model[0].weight, start) else [])
            return 1.0
        rewound.append(True)
        return 0.01 * (len(rewound) - 1)

    record = fit(model, optimizer, loss, val_score, lam=0.1, epochs=60, patience=60, settle=10, rewind=True,
                 val_window=5)
    settled = record.settled_epoch
    assert settled is not None and record.val_scores[settled - 1] == 1.0 and record.epochs == 60
    assert record.best_epoch == 60 and record.val_score == pytest.approx(0.01 * (60 - settled))


def test_rewind_epochs_all_gives_the_rewound_model_a_whole_run():
    """rewind_epochs 'all': after the rewind the weights train for all of
    epochs again (a fixed model's budget), the sizing epochs on top; 'rest'
    ends at epochs; a bad value is one error."""
    runs = {}
    for mode in ("rest", "all"):
        model, optimizer, loss = _settling_setup()
        runs[mode] = fit(model, optimizer, loss, lambda: 0.5, lam=0.1, epochs=40, patience=100, settle=10,
                         rewind=True, rewind_epochs=mode, val_every=5)
    rest, full = runs["rest"], runs["all"]
    assert rest.settled_epoch == full.settled_epoch < 40  # the same sizing
    assert rest.epochs == 40 and full.epochs == full.settled_epoch + 40
    assert full.val_epochs[-1] == full.epochs  # the last epoch is scored
    with pytest.raises(ValueError, match="rewind_epochs must be 'rest' or 'all', got 'most'"):
        fit(*_settling_setup(), lambda: 0.5, lam=0.1, epochs=4, patience=4, rewind=True, rewind_epochs="most")


def test_the_sizing_schedule_applies_to_gates_that_settle_only():
    """DAM's width shows when it has settled; an L1 scale's moves only when a scale crosses its threshold, so
    fit trains such gates from the first step beside selection, whatever gate_delay, settle and rewind say."""
    from damgraph.gates import L1Scale

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), L1Scale(4))
    x = torch.randn(8, 3)
    optimizer = make_optimizer(model, lr=0.01, beta_lr=0.1)
    scales = []

    def val_score():
        scales.append(model[1].scale.detach().clone())
        return 0.5

    record = fit(model, optimizer, lambda step: model(x).pow(2).mean(), val_score, lam=0.1, epochs=20,
                 patience=20, gate_delay=5, settle=3, rewind=True)
    assert record.settled_epoch is None and record.best_epoch == 1  # selection from the first epoch
    assert not torch.equal(scales[0], torch.ones(4))  # the scales moved at the first step, not after a delay
    assert DAMGate.settles and not L1Scale.settles


def test_clip_parts_clips_each_part_on_its_own():
    """OGB's examples clip the table's, the encoder's and the predictor's
    gradient norms apart: each part's norm is at most the clip, and a part
    below it is left as it is."""
    torch.manual_seed(0)
    big, small, gate = nn.Linear(3, 4), nn.Linear(4, 2), DAMGate(2)
    model = nn.Sequential(big, nn.Sequential(small, gate))
    x = torch.randn(8, 3)

    def loss(step):
        return 1e3 * big(x).pow(2).mean() + 1e-3 * model(x).sum()

    ref_model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Linear(4, 2), DAMGate(2)))
    ref_model.load_state_dict(model.state_dict())
    ref_big = ref_model[0]
    (1e3 * ref_big(x).pow(2).mean() + 1e-3 * ref_model(x).sum() + 0.1 * ref_model[1][1].beta).backward()
    expected = [p.grad for p in ref_model.parameters()]  # big weight, big bias, small weight, small bias, beta
    big_norm, small_norm = _global_norm(expected[:2]), _global_norm(expected[2:4])
    assert big_norm > 1 > small_norm  # measured: the big part's norm far above the clip, the small one's below
    optimizer = make_optimizer(model, lr=0.01, beta_lr=0.1)
    seen = _recording(optimizer, model)
    fit(model, optimizer, loss, None, lam=0.1, epochs=1, patience=1, grad_clip=1.0, clip_parts=[big, model[1]])
    for got, want in zip(seen[0][:2], expected[:2]):
        torch.testing.assert_close(got, want / (big_norm + 1e-6), rtol=1e-6, atol=0)
    for got, want in zip(seen[0][2:], expected[2:]):  # the small part and the gate as they were
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_val_every_scores_every_nth_epoch_and_the_last():
    model, optimizer, loss = _setup()
    val_score, betas = _scripted(model, [0.5, 0.9, 0.6, 0.7])
    record = fit(model, optimizer, loss, val_score, lam=0.1, epochs=11, patience=20, val_every=3)
    assert record.val_epochs == [3, 6, 9, 11] and record.val_scores == [0.5, 0.9, 0.6, 0.7]
    assert record.best_epoch == 6 and record.epochs == 11 and len(record.losses) == 11
    assert model[1].beta.item() == betas[1]  # the weights of epoch 6 are back


def test_rewind_gains_one_passes_the_open_units_at_gain_one_from_the_rewind():
    """rewind_gains 'one': the rewound model's open units pass at gain 1 (a fixed model of the learned width),
    the same units open; 'gate' keeps the ramp; a bad value is one error."""
    gains = {}
    for mode in ("gate", "one"):
        model, optimizer, _ = _settling_setup()
        x = torch.randn(8, 3)
        # a loss that does not reach the gate and no penalty: every unit stays open, on the gate's ramp
        record = fit(model, optimizer, lambda step: model[0](x).pow(2).mean(), lambda: 0.5, lam=0.0, epochs=100,
                     patience=100, settle=10, rewind=True, rewind_gains=mode)
        gate = model[1]
        assert gate.num_open == record.width_trajectory[record.settled_epoch - 1]["1"]  # the learned width kept
        gains[mode] = gate.values().detach()[gate.open_slice]
    assert len(gains["one"]) == len(gains["gate"]) == 40
    assert gains["gate"].min() < 0.9 and torch.allclose(gains["one"], torch.ones_like(gains["one"]), atol=1e-6)
    with pytest.raises(ValueError, match="rewind_gains must be 'gate' or 'one', got 'half'"):
        fit(*_settling_setup(), lambda: 0.5, lam=0.1, epochs=4, patience=4, rewind=True, rewind_gains="half")
