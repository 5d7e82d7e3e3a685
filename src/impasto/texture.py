"""A procedural oil-paint texture, so that ``impasto demo`` needs no third-party artwork.

The idea is to imitate how an impasto painting is made, not what it looks like pixel by pixel:

1. A smooth *flow field* (a wavy drift plus a few vortices and some smoothed noise) gives every
   point of the canvas a brush direction, so that strokes swirl together coherently.
2. About 1,800 *strokes* are traced along that field (integrated with a midpoint rule), so they
   are elongated and gently curved. Each stroke is a bundle of thin parallel *bristle* lines, each
   a slightly different shade, like the streaks that a loaded brush leaves; the outer bristles
   are shorter, so stroke ends taper. Big strokes on a jittered grid go down first, smaller ones
   on top, and any canvas still bare afterwards gets strokes of its own.
3. With its colour, every bristle lays down a paint *height*: thick in the middle of the stroke,
   thin at its edges, with a ridge per bristle. Lighting that relief from the top left gives
   the raised, sculpted look of impasto.

Colours come from a bold palette (navy, ultramarine, cobalt, teal, ochre, yellow, white) picked
per stroke from a smooth "tone" field that glows warm around the vortex centres. The image thus
has texture at every scale a style loss looks at: swirls and colour regions (a tenth of the image
side or so), strokes (5-15 % of the side) and bristles (a pixel or two).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["PALETTES", "brush_strokes"]

# Palette stops, RGB in [0, 1], from a tone of 0 to a tone of 1.
PALETTES = {
    "night": np.array([  # navy to yellow and white, glowing around the vortices
        [0.04, 0.07, 0.22], [0.10, 0.16, 0.52], [0.16, 0.33, 0.72], [0.18, 0.52, 0.58],
        [0.78, 0.56, 0.16], [0.96, 0.80, 0.22], [0.97, 0.94, 0.80],
    ], dtype=np.float32),
    "ember": np.array([  # umber and crimson to orange, with pale green accents
        [0.16, 0.05, 0.04], [0.45, 0.08, 0.07], [0.72, 0.20, 0.10], [0.90, 0.45, 0.12],
        [0.97, 0.70, 0.30], [0.55, 0.70, 0.45], [0.95, 0.92, 0.78],
    ], dtype=np.float32),
}
_CELL = 4  # pixels per cell of the coarse grid that holds the direction and tone fields
_POINTS = 13  # points along each stroke's centre line
_BRISTLES = 11  # bristle lines per stroke


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """White noise of `shape` blurred by `sigma` cells, rescaled to zero mean and unit std."""
    field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return (field - field.mean()) / (field.std() + 1e-8)


def _fields(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Brush direction (radians) and tone (about 0 to 1) for a w x h pixel canvas: float32 arrays
    of shape (ceil(h / _CELL), ceil(w / _CELL)); cell (i, j) is at pixel (x, y) = _CELL * (j, i)."""
    side = np.sqrt(w * h)
    gy, gx = np.mgrid[0:h:_CELL, 0:w:_CELL].astype(np.float32)
    a0 = rng.uniform(0, 2 * np.pi)  # overall drift direction, made to meander by a slow sine
    across = (gx * np.sin(a0) - gy * np.cos(a0)) / (0.45 * side)
    drift = a0 + 0.7 * np.sin(2 * np.pi * across + rng.uniform(0, 2 * np.pi))
    vx, vy, glow = 0.6 * np.cos(drift), 0.6 * np.sin(drift), np.zeros_like(gx)
    for _ in range(rng.integers(4, 7)):  # vortices: Gaussian-weighted rotation, warm at the core
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.07, 0.16) * side
        dx, dy = (gx - cx) / r, (gy - cy) / r
        spin = rng.choice([-1.0, 1.0]) * rng.uniform(1.2, 2.0) * np.exp(-0.5 * (dx**2 + dy**2))
        vx, vy = vx - spin * dy, vy + spin * dx
        glow = np.maximum(glow, np.exp(-(dx**2 + dy**2) / 0.6))
    sigma = 0.06 * side / _CELL
    vx = vx + 0.35 * _smooth_noise(rng, gx.shape, sigma)
    vy = vy + 0.35 * _smooth_noise(rng, gx.shape, sigma)
    tone = 0.33 + 0.12 * _smooth_noise(rng, gx.shape, 1.5 * sigma) + 0.6 * glow
    return np.arctan2(vy, vx).astype(np.float32), tone.astype(np.float32)


def _cells(field: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Values of a coarse-grid `field` at the nearest cells to (N, 2) pixel points (x, y)."""
    i = np.clip(np.rint(p[:, 1] / _CELL).astype(int), 0, field.shape[0] - 1)
    j = np.clip(np.rint(p[:, 0] / _CELL).astype(int), 0, field.shape[1] - 1)
    return field[i, j]


def _trace(angle: np.ndarray, seed: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Centre lines (N, _POINTS, 2) that follow `angle` through (N, 2) `seed` pixels, near their
    middles, in steps of (N,) `step` pixels; integrated with the midpoint (RK2) rule."""
    def walk(p: np.ndarray, count: int, sign: float) -> list[np.ndarray]:
        def velocity(q: np.ndarray) -> np.ndarray:
            a = _cells(angle, q)
            return np.stack([np.cos(a), np.sin(a)], 1) * (sign * step[:, None])
        path = [p]
        for _ in range(count):
            path.append(path[-1] + velocity(path[-1] + 0.5 * velocity(path[-1])))
        return path

    start = walk(seed, _POINTS // 2, -1.0)[-1]  # back up half a stroke, then trace it all
    return np.stack(walk(start, _POINTS - 1, 1.0), axis=1)


def _paint(canvas: np.ndarray, rng: np.random.Generator, fields: tuple[np.ndarray, np.ndarray],
           seed: np.ndarray, length: tuple[float, float], width: tuple[float, float], palette: np.ndarray) -> None:
    """Paint one stroke through each of the (N, 2) `seed` pixels (x, y), in order, onto `canvas`
    (H, W, 4: R, G, B, paint height). `length` and `width` are ranges, as fractions of the side."""
    n, side = len(seed), np.sqrt(canvas.shape[0] * canvas.shape[1])
    angle, tone = fields
    lengths, widths = rng.uniform(*length, n) * side, rng.uniform(*width, n) * side  # (N,) pixels
    path = _trace(angle, seed, lengths / (_POINTS - 1))

    # Colour: local tone, jittered, with a few bright accents; mostly pure paints, some mixtures.
    t = _cells(tone, seed) + rng.normal(0, 0.12, n) + np.where(rng.random(n) < 0.06, 0.45, 0.0)
    t = np.clip(t, 0, 1) * (len(palette) - 1)
    lo = np.minimum(t.astype(int), len(palette) - 2)
    mix = np.clip(2.5 * (t - lo) - 0.75, 0, 1)[:, None]
    colour = palette[lo] + mix * (palette[lo + 1] - palette[lo])

    # Bristles sit at `across` half-widths from the centre line, along its normals.
    tangent = np.gradient(path, axis=1)
    normal = np.stack([-tangent[..., 1], tangent[..., 0]], -1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-6
    across = np.linspace(-1, 1, _BRISTLES) + rng.uniform(-0.12, 0.12, (n, _BRISTLES))
    pts = path[:, None] + normal[:, None] * (across * widths[:, None] / 2)[..., None, None]
    pts = np.rint(pts).astype(np.int32)  # (n, bristles, points, 2)
    shade = colour[:, None] * rng.normal(1.0, 0.12, (n, _BRISTLES, 1))
    height = np.sqrt(np.clip(1 - across**2, 0.05, 1)) * rng.uniform(0.6, 1.0, (n, 1))
    height += rng.uniform(0, 0.35, (n, _BRISTLES))
    paint = np.concatenate([shade, height[..., None]], -1).astype(float)
    trim = np.rint(rng.uniform(1.5, 4, (n, _BRISTLES, 2)) * across[..., None] ** 2).astype(int)
    thick = np.maximum(1, np.rint(widths / _BRISTLES + 1)).astype(int)
    for s in range(n):
        for b in range(_BRISTLES):
            line = pts[s, b, trim[s, b, 0]:_POINTS - trim[s, b, 1]]
            cv2.polylines(canvas, [line], False, tuple(paint[s, b]), int(thick[s]))


def brush_strokes(size: tuple[int, int] = (512, 512), seed: int = 0, palette: str = "night") -> np.ndarray:
    """Render a painterly, impasto-like brush-stroke texture (a style image for the demo).

    Args:
        size: (width, height) in pixels.
        seed: random seed; the same seed and size always give the same image.
        palette: a name in :data:`PALETTES` (``night``: blues and yellows; ``ember``: reds and oranges).

    Returns:
        float32 array of shape (height, width, 3): RGB in [0, 1].
    """
    w, h = int(size[0]), int(size[1])
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    if palette not in PALETTES:
        raise ValueError(f"unknown palette {palette!r}; choose from {', '.join(PALETTES)}")
    colours = PALETTES[palette]
    rng = np.random.default_rng(seed)
    side = np.sqrt(w * h)
    fields = _fields(rng, w, h)
    canvas = np.zeros((h, w, 4), np.float32)  # R, G, B, height; a height < 0 marks bare canvas
    canvas[..., :3], canvas[..., 3] = colours[0], -1.0

    # Big strokes on a jittered grid, in random order, then smaller ones anywhere on top.
    spacing = 0.038 * side
    grid = np.mgrid[0:w + spacing:spacing, 0:h + spacing:spacing].reshape(2, -1).T
    grid = rng.permutation(grid + rng.uniform(-0.5, 0.5, grid.shape) * spacing)
    _paint(canvas, rng, fields, grid, (0.08, 0.15), (0.030, 0.045), colours)
    scatter = rng.random((int(1.3 * len(grid)), 2)) * [w, h]
    _paint(canvas, rng, fields, scatter, (0.05, 0.11), (0.014, 0.030), colours)
    for _ in range(3):  # where strokes diverge, bare canvas may show: give it strokes of its own
        bare = np.argwhere(canvas[..., 3] < 0)[:, ::-1]
        if len(bare):
            count = min(len(bare), int(len(bare) / (0.0005 * side**2)) + 1)  # ~1 per 0.05 % bare
            pick = rng.choice(len(bare), count, replace=False)
            _paint(canvas, rng, fields, bare[pick].astype(float), (0.04, 0.08), (0.015, 0.030), colours)

    # Light the relief from the top left: ridges catch the light, their far sides fall in shadow.
    relief = cv2.GaussianBlur(np.maximum(canvas[..., 3], 0), (0, 0), 0.8)
    light = 0.7 * (cv2.Sobel(relief, cv2.CV_32F, 1, 0) + cv2.Sobel(relief, cv2.CV_32F, 0, 1))
    rgb = canvas[..., :3] * (1 + 0.45 * np.tanh(light))[..., None]
    return np.clip(rgb, 0, 1).astype(np.float32)
