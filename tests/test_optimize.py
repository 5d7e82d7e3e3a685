import pytest
import torch

from impasto.optimize.optimizers import IterateAverage, make_optimizer


def test_average_of_a_constant_is_the_constant():
    average = IterateAverage(0.9)
    for _ in range(5):
        average.update(torch.full((1, 3, 2, 2), 0.25))
    assert torch.allclose(average.value, torch.full((1, 3, 2, 2), 0.25))


def test_average_smooths_jitter_and_follows_early():
    average = IterateAverage(0.9)
    values = [0.0 if i % 2 else 1.0 for i in range(200)]
    for v in values:
        average.update(torch.tensor([v]))
    assert abs(average.value.item() - 0.5) < 0.06  # the jitter is averaged out
    fresh = IterateAverage(0.9)
    fresh.update(torch.tensor([0.0]))
    fresh.update(torch.tensor([1.0]))
    # effective decay starts at 1/10: the second iterate weighs 0.8, not 0.1
    assert fresh.value.item() == pytest.approx(1 - 2 / 11, rel=1e-5)


def test_zero_decay_is_the_last_iterate():
    average = IterateAverage(0.0)
    for v in (1.0, 2.0, 3.0):
        average.update(torch.tensor([v]))
    assert average.value.item() == 3.0


def test_average_does_not_alias_the_iterate():
    x = torch.zeros(3)
    average = IterateAverage(0.5)
    average.update(x)
    x += 1
    assert average.value.sum().item() == 0


@pytest.mark.parametrize("kind, kwargs", [("adam", {"lr": 0.1}), ("lbfgs", {"lr": 1.0}),
                                          ("lbfgs", {"lr": 1.0, "line_search": True})])
def test_optimizers_minimize_a_quadratic(kind, kwargs):
    x = torch.zeros(4, requires_grad=True)
    target = torch.tensor([0.2, 0.4, 0.6, 0.8])
    optimizer = make_optimizer(kind, x, **kwargs)

    def closure():
        optimizer.zero_grad()
        loss = (x - target).pow(2).sum()
        loss.backward()
        return loss

    for _ in range(60):
        optimizer.step(closure)
    assert torch.allclose(x.detach(), target, atol=0.02)
