"""What an output records of the run that painted it (its metadata): enough to paint it again.

The recipe (with the seed the run drew), the identities of its inputs and weights (paths as given
and sha256 of the bytes, never the bytes), the style blend, masks and tiles, and what happened:
steps, time, whether it was cancelled, the last losses. :mod:`impasto.reruns` reads it back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from .._version import __version__
from ..images import LoadedImage
from ..recipe import Recipe
from ..weights import VGGWeights
from .inputs import PreparedInputs
from .progress import RunState
from .tiling import Tiles


def run_record(recipe: Recipe, inputs: PreparedInputs, weights: VGGWeights, device: torch.device,
               dtype: torch.dtype | None, blend: Sequence[float], masks: Sequence[LoadedImage] | None,
               content_mask: LoadedImage | None, tiles: Sequence[Tiles], state: RunState, elapsed: float,
               cancelled: bool) -> dict[str, Any]:
    """The metadata of one run of ``recipe``: JSON-ready, with ``dtype`` the network's (None: fp32)."""
    return {
        "impasto": __version__,
        "torch": torch.__version__,
        "device": str(device),
        "precision": "bf16" if dtype is not None else "fp32",
        "recipe": recipe.to_dict(),
        "style_blend": list(blend),
        "content": inputs.content.identity(),
        "styles": [s.identity() for s in inputs.styles],
        "masks": len(masks) if masks is not None else 0,
        "mask_inputs": [m.identity() for m in masks] if masks is not None else [],
        "content_mask_input": content_mask.identity() if content_mask is not None else None,
        "tiles": [list(t) if t else None for t in tiles],
        "content_mask": content_mask is not None,
        "weights": {"layout": weights.layout, "sha256": weights.sha256},
        "steps": state.step,
        "elapsed_s": round(elapsed, 3),
        "cancelled": cancelled,
        "losses": state.last_losses,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
