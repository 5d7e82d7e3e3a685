"""The network as the losses see it: activations of named layers, in fp32."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..vgg import VGG19Features


class FeatureExtractor:
    """Calls the VGG network under the run's precision and returns fp32 activations.

    ``autocast``: ``torch.bfloat16`` to run the network under autocast, ``None`` for fp32.
    ``notebook``: undo the Caffe input scale, for the reference recipe's absolute losses.
    """

    def __init__(self, net: VGG19Features, autocast: torch.dtype | None, notebook: bool = False):
        self.net = net
        self.autocast = autocast
        self.scale = net.convention.feature_scale if notebook else 1.0

    def __call__(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """``{layer: (1, C, h, w) float32}`` for an image ``(1, 3, H, W)`` in [0, 1]."""
        if image.device.type == "cuda":
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(image.device.type, dtype=self.autocast or torch.bfloat16,
                            enabled=self.autocast is not None):
            feats = self.net(image, tuple(layers))
        if self.scale != 1.0:
            return {k: v.float() * self.scale for k, v in feats.items()}
        return {k: v.float() for k, v in feats.items()}
