import torch

from impasto import losses


def test_gram_matrix_by_hand():
    # two channels over four positions
    f = torch.tensor([[1.0, 2.0, 0.0, 1.0], [0.0, 1.0, 3.0, 1.0]]).view(1, 2, 2, 2)
    raw = losses.gram_matrix(f, normalize=False)
    assert torch.allclose(raw, torch.tensor([[[6.0, 3.0], [3.0, 11.0]]]))
    assert torch.allclose(losses.gram_matrix(f), raw / 4)


def test_gram_is_size_independent_for_repeated_texture():
    tile = torch.rand(1, 3, 4, 4)
    assert torch.allclose(losses.gram_matrix(tile), losses.gram_matrix(tile.repeat(1, 1, 3, 3)), atol=1e-6)


def test_mse_and_relative_mse():
    x = torch.tensor([1.0, 2.0, 3.0])
    t = torch.tensor([1.0, 0.0, 3.0])
    assert abs(losses.mse(x, t).item() - 4.0 / 3.0) < 1e-6
    assert abs(losses.relative_mse(x, t).item() - (4.0 / 3.0) / (10.0 / 3.0)) < 1e-6
    assert abs(losses.relative_mse(2 * x, 2 * t).item() - losses.relative_mse(x, t).item()) < 1e-6


def test_notebook_gram_loss_by_hand():
    f = torch.ones(1, 2, 1, 2)  # G = [[2, 2], [2, 2]]
    target = torch.zeros(1, 2, 2)
    # mean((G - 0)^2) = 4, divided by c*h*w = 4
    assert losses.notebook_gram_loss(f, target).item() == 1.0
    assert losses.notebook_gram_loss(f, losses.gram_matrix(f, normalize=False)).item() == 0.0


def test_total_variation():
    assert losses.total_variation(torch.full((1, 3, 5, 5), 0.3)).item() == 0.0
    checker = (torch.arange(4).view(1, 4) + torch.arange(4).view(4, 1)) % 2
    image = checker.float().expand(1, 3, 4, 4)
    assert losses.total_variation(image).item() == 2.0
