import pytest
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


def test_total_variation():
    assert losses.total_variation(torch.full((1, 3, 5, 5), 0.3)).item() == 0.0
    checker = (torch.arange(4).view(1, 4) + torch.arange(4).view(4, 1)) % 2
    image = checker.float().expand(1, 3, 4, 4)
    assert losses.total_variation(image).item() == 2.0


def _features(seed=0, shape=(1, 8, 6, 6)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", losses.STYLE_LOSSES)
def test_style_distance_is_zero_for_identical_statistics(kind):
    f = _features()
    target = losses.prepare_target(losses.style_statistics(f, kind), kind)
    assert losses.style_distance(losses.style_statistics(f, kind), target, kind).item() == pytest.approx(0, abs=1e-5)
    # the statistics ignore where things are: a spatial shuffle changes nothing
    shuffled = f.flatten(2)[:, :, torch.randperm(36)].reshape(f.shape)
    shuffled_stats = losses.style_statistics(shuffled, kind)
    assert losses.style_distance(shuffled_stats, target, kind).item() == pytest.approx(0, abs=1e-5)


def test_wasserstein_by_hand_for_shifted_mean_and_scaled_covariance():
    f = _features(shape=(1, 4, 16, 16))
    target = losses.prepare_target(losses.style_statistics(f, "wasserstein"), "wasserstein")
    stats = losses.style_statistics(f, "wasserstein")
    shift = torch.tensor([1.0, 0.0, -2.0, 0.5]).view(1, 4, 1, 1)
    moved = losses.style_statistics(f + shift, "wasserstein")
    # a pure mean shift: W2² = |shift|²
    assert losses.style_distance(moved, target, "wasserstein", relative=False).item() == pytest.approx(5.25, rel=1e-3)
    # scaling centred features by s: W2² = (s − 1)² tr Σ
    cov = target["cov"]
    mean = stats["mean"].view(1, 4, 1, 1)
    scaled = losses.style_statistics((f - mean) * 2 + mean, "wasserstein")
    expected = torch.diagonal(cov, dim1=1, dim2=2).sum().item()
    assert (losses.style_distance(scaled, target, "wasserstein", relative=False).item()
            == pytest.approx(expected, rel=1e-3))
    # grows with the shift
    small = losses.style_statistics(f + 0.5 * shift, "wasserstein")
    assert (losses.style_distance(small, target, "wasserstein").item()
            < losses.style_distance(moved, target, "wasserstein").item())


def test_meanstd_by_hand():
    f = torch.tensor([[1.0, 3.0], [2.0, 2.0]]).view(1, 2, 1, 2)  # means (2, 2), stds (1, 0)
    target = losses.prepare_target(losses.style_statistics(torch.zeros(1, 2, 1, 2), "meanstd"), "meanstd")
    # mean over channels of (mean² + std²): ((4 + 1) + (4 + 0)) / 2
    assert losses.style_distance(losses.style_statistics(f, "meanstd"), target, "meanstd",
                                 relative=False).item() == pytest.approx(4.5, rel=1e-3)


def test_gram_statistics_match_gram_matrix():
    f = _features()
    assert torch.allclose(losses.style_statistics(f, "gram")["gram"], losses.gram_matrix(f), atol=1e-5)


def test_blend_is_the_mixture_of_the_moments():
    a, b = _features(1), _features(2)
    both = torch.cat([a, b], dim=3)  # one image made of both halves
    for kind in losses.STYLE_LOSSES:
        halves = [losses.style_statistics(a, kind), losses.style_statistics(b, kind)]
        mixed = losses.blend_statistics(halves, [0.5, 0.5])
        whole = losses.style_statistics(both, kind)
        for key in whole:
            assert torch.allclose(mixed[key], whole[key], atol=1e-5), (kind, key)


def test_masked_statistics_only_see_the_region():
    f = _features(shape=(1, 3, 4, 4))
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1
    for kind in losses.STYLE_LOSSES:
        masked = losses.style_statistics(f, kind, mask)
        left = losses.style_statistics(f[..., :2].contiguous(), kind)
        for key in masked:
            assert torch.allclose(masked[key], left[key], atol=1e-5)


def test_unknown_style_loss():
    with pytest.raises(ValueError, match="unknown style loss"):
        losses.style_statistics(_features(), "perceptual")


def _activations(dtype=torch.float32, channels_last=False, seed=0):
    f = torch.rand(2, 8, 6, 5, generator=torch.Generator().manual_seed(seed))
    f = f.to(dtype)
    return f.contiguous(memory_format=torch.channels_last) if channels_last else f


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_in_either_layout_and_bf16_is_fp32_gram(channels_last):
    reference = losses.gram_matrix(_activations())
    for dtype, tolerance in ((torch.float32, 1e-6), (torch.bfloat16, 2e-2)):
        gram = losses.gram_matrix(_activations(dtype, channels_last))
        assert gram.dtype == torch.float32 and gram.shape == (2, 8, 8)
        assert torch.allclose(gram, reference, rtol=tolerance, atol=tolerance)


def test_gram_gradient_is_autograd_of_the_plain_product():
    """The one-matmul backward gives what autograd of F Fᵀ / n gives, in both layouts."""
    weights = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(1))
    for channels_last in (False, True):
        f = _activations(channels_last=channels_last).requires_grad_(True)
        (losses.gram_matrix(f) * weights).sum().backward()
        plain = _activations().requires_grad_(True)
        flat = plain.reshape(2, 8, 30)
        ((flat @ flat.transpose(1, 2) / 30) * weights).sum().backward()
        assert torch.allclose(f.grad, plain.grad, atol=1e-5)


@pytest.mark.parametrize("kind", ["gram", "wasserstein", "meanstd"])
def test_statistics_of_bf16_channels_last_features_match_fp32(kind):
    mask = torch.rand(2, 1, 6, 5, generator=torch.Generator().manual_seed(2))
    for m in (None, mask):
        reference = losses.style_statistics(_activations(), kind, mask=m)
        low = losses.style_statistics(_activations(torch.bfloat16, channels_last=True), kind, mask=m)
        for key, value in reference.items():
            assert low[key].dtype == torch.float32
            assert torch.allclose(low[key], value, rtol=2e-2, atol=2e-2), (kind, key, m is None)


def test_losses_of_bf16_inputs_are_fp32():
    x, t = _activations(torch.bfloat16), _activations(torch.bfloat16, seed=3)
    assert losses.mse(x, t).dtype == torch.float32
    assert losses.relative_mse(x, t).item() == pytest.approx(
        losses.relative_mse(x.float(), t.float()).item(), rel=1e-6)
