"""The stability loss: steady video from a model trained on still photos.

A feed-forward network paints each video frame on its own, so anything that changes a little
between frames (the camera moving by a pixel or two, sensor noise) can change the brush strokes a
lot, and the video flickers. Following the idea of Gupta et al. 2017 ("Characterizing and
improving stability in neural style transfer"), the model is asked during training to paint a
slightly shifted, slightly noisy copy of a crop as the same shift of its painting of the crop:

    loss = mean((net(shift(x) + noise) − shift(net(x)))²)      over the region both cover

in pixel units (the images are in [0, 1]), like the video engine's temporal term. A network of
stride-2 convolutions is shift-equivariant only for shifts by multiples of its stride (4 px), and
instance normalization and deep layers amplify small input changes; the loss trains both away.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

#: Largest shift, in pixels, in each direction (drawn uniformly, never (0, 0)).
MAX_SHIFT = 4
#: Standard deviation of the Gaussian noise added to the shifted copy (pixel units).
NOISE = 0.02
#: Pixels beyond the shift excluded at the borders (where the painting depends on the crop's edge).
BORDER = 4


def shift(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` ``(N, C, H, W)`` moved so that ``out[..., i, j] = image[..., i + dy, j + dx]``.

    Positions that fall outside are filled by reflecting the image at its edge (they are excluded
    from the loss, but the network still sees a natural-looking border).
    """
    pad = max(abs(dy), abs(dx))
    if pad == 0:
        return image
    height, width = image.shape[-2:]
    padded = F.pad(image, (pad, pad, pad, pad), mode="reflect" if pad < min(height, width) else "replicate")
    return padded[..., pad + dy:pad + dy + height, pad + dx:pad + dx + width]


def draw_shift(generator: torch.Generator, max_shift: int = MAX_SHIFT) -> tuple[int, int]:
    """A random ``(dy, dx)`` with each component in ``[-max_shift, max_shift]``, not both zero."""
    while True:
        dy, dx = (torch.randint(-max_shift, max_shift + 1, (2,), generator=generator)).tolist()
        if dy or dx:
            return int(dy), int(dx)


def stability_loss(net: Callable[[torch.Tensor], torch.Tensor], photos: torch.Tensor, painted: torch.Tensor,
                   offset: tuple[int, int], noise: torch.Tensor | None = None, border: int = BORDER) -> torch.Tensor:
    """How differently ``net`` paints a shifted, noisy copy of ``photos`` from the shifted painting.

    ``photos`` ``(N, 3, H, W)`` and ``painted = net(photos)`` (with its gradient); ``offset`` =
    ``(dy, dx)``; ``noise``: added to the shifted photos (None: none). Only the interior that both
    paintings cover, ``max(|dy|, |dx|) + border`` pixels away from every edge, counts. A scalar
    mean squared difference in pixel units; 0 for a network that commutes with shifts and
    ignores the noise.
    """
    dy, dx = offset
    moved = shift(photos, dy, dx)
    if noise is not None:
        moved = (moved + noise).clamp(0, 1)
    repainted = net(moved).float()
    expected = shift(painted.float(), dy, dx)
    m = max(abs(dy), abs(dx)) + border
    height, width = photos.shape[-2:]
    if height <= 2 * m or width <= 2 * m:
        raise ValueError(f"stability loss: a {width}x{height} crop has no interior {m} px from its edges")
    return (repainted[..., m:height - m, m:width - m] - expected[..., m:height - m, m:width - m]).pow(2).mean()
