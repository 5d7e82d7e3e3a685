"""Device checks: the CUDA ones are skipped on machines without a GPU (CI) and run where one is."""

import numpy as np
import pytest
import torch

from impasto.device import compute_dtype, select_device
from impasto.optimize.engine import Stylizer
from impasto.recipe import Recipe

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


def test_auto_device_falls_back_to_cpu_without_gpu():
    if torch.cuda.is_available():
        assert select_device("auto").type == "cuda"
    else:
        assert select_device("auto").type in ("cpu", "mps")
        assert compute_dtype("fp32", torch.device("cpu")) is None


@cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_run_matches_cpu(astronaut_small, stripes_style, precision):
    options = dict(max_size=96, min_size=48, scale_factor=2.0, steps=30, seed=0, precision=precision)
    gpu = Stylizer(Recipe.from_preset("balanced", device="cuda", **options)).run(astronaut_small, stripes_style)
    cpu = Stylizer(Recipe.from_preset("balanced", device="cpu", **options)).run(astronaut_small, stripes_style)
    assert gpu.metadata["device"].startswith("cuda") and gpu.metadata["precision"] == precision
    assert gpu.image.shape == cpu.image.shape and np.isfinite(gpu.image).all()
    # same optimization problem: final losses agree within a few percent, images look alike
    assert gpu.losses["style"] == pytest.approx(cpu.losses["style"], rel=0.15)
    assert np.abs(gpu.image - cpu.image).mean() < 0.03


def test_cpu_keeps_large_buffers_on_glibc():
    import platform

    from impasto.device import keep_large_buffers

    applied = keep_large_buffers()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert applied


@pytest.mark.parametrize("flags, expected", [
    ({"avx512_bf16": True}, torch.bfloat16),
    ({"amx_bf16": True}, torch.bfloat16),
    ({"avx2": True, "avx512_f": True}, None),  # bf16 emulated: slower than fp32
])
def test_auto_precision_on_cpu_follows_the_cpus_bf16_instructions(monkeypatch, flags, expected):
    import impasto.device as device

    device.cpu_has_native_bf16.cache_clear()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: flags)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    try:
        assert compute_dtype("auto", torch.device("cpu")) == expected
        assert compute_dtype("fp32", torch.device("cpu")) is None
    finally:
        device.cpu_has_native_bf16.cache_clear()
