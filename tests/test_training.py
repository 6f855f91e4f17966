import torch
from torch import nn

from damgraph import DAMGate, make_optimizer
from damgraph.training import fit


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
    # the weights are those after the 7th step: beta fell by ~0.1 a step from 1.0
    assert model[1].beta.item() < 1.0 - 0.5


def test_patience_stops_and_restores_the_best_epoch():
    model, optimizer, loss = _setup()
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.8, 0.1, 0.1])
    betas = []

    def val_score():
        betas.append(model[1].beta.item())
        return next(scores)

    record = fit(model, optimizer, loss, val_score, lam=0.1, epochs=7, patience=3)
    assert record.best_epoch == 2 and record.epochs == 5 and record.val_score == 0.9
    assert model[1].beta.item() == betas[1]  # the weights of epoch 2 are back
