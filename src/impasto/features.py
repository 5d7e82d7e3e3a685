"""The network as the losses see it: activations of named layers, in the run's precision and layout.

The network keeps its weights channels-last and runs in bf16 (a copy of it) on a device with
fast bf16 (CPUs with AVX512-BF16 or AMX, CUDA GPUs), fp32 elsewhere. Its activations stay in
that dtype and layout: the losses read them so and accumulate in fp32 (see :mod:`impasto.losses`). Mixed
fp32/bf16 arithmetic on large activations, NCHW max pooling and fp32 Gram matrices each cost
as much as a convolution layer on a CPU, so none of them appears in a step.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Iterable

import torch

from .vgg import VGG19Features

_copies: weakref.WeakKeyDictionary[VGG19Features, dict[torch.dtype, VGG19Features]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def layout_copy(net: VGG19Features, dtype: torch.dtype) -> VGG19Features:
    """``net`` with its convolution weights in ``dtype`` (channels-last, as the network keeps
    them), made once per network and dtype; ``net`` itself for its own dtype."""
    if net.layers["conv1_1"].weight.dtype == dtype:
        return net
    with _lock:
        per_dtype = _copies.setdefault(net, {})
        if dtype not in per_dtype:
            twin = copy.deepcopy(net)
            for module in twin.layers.values():  # the input's mean and scale buffers stay fp32
                if isinstance(module, torch.nn.Conv2d):
                    module.to(dtype=dtype)
            per_dtype[dtype] = twin
        return per_dtype[dtype]


class FeatureExtractor:
    """Calls the VGG network under the run's precision and returns its activations.

    ``dtype``: ``torch.bfloat16`` to run a bf16 copy of the network, ``None`` for fp32 (the
    network itself); activations come back in that dtype, channels-last.
    ``notebook``: undo the Caffe input scale, for the reference recipe's absolute losses.
    """

    def __init__(self, net: VGG19Features, dtype: torch.dtype | None, notebook: bool = False):
        self.net = net
        self.dtype = dtype  #: the network's dtype (None: fp32); it keys the style statistics cache
        self.scale = net.convention.feature_scale if notebook else 1.0
        self._run = layout_copy(net, dtype or torch.float32)

    def __call__(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """``{layer: (N, C, h, w)}`` channels-last, in the run's dtype, for fp32 images ``(N, 3, H, W)``
        in [0, 1] (gradients flow back to the images as fp32)."""
        feats = self._run(image, tuple(layers), dtype=self.dtype or torch.float32)
        if self.scale != 1.0:
            return {k: v * self.scale for k, v in feats.items()}
        return feats
