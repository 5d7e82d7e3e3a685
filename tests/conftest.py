"""Shared fixtures: small images made here (or bundled with scikit-image), never downloaded."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def astronaut_small() -> np.ndarray:
    """scikit-image's bundled astronaut photo, 96x96, float32 in [0, 1]."""
    from skimage import data

    image = Image.fromarray(data.astronaut()).resize((96, 96), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.float32) / 255.0


@pytest.fixture(scope="session")
def stripes_style() -> np.ndarray:
    """A colourful diagonal-stripe texture, 96x96, float32 in [0, 1]."""
    y, x = np.mgrid[0:96, 0:96].astype(np.float32)
    phase = (x + y) / 6.0
    return np.stack([0.5 + 0.5 * np.sin(phase), 0.5 + 0.5 * np.sin(phase + 2.1),
                     0.5 + 0.5 * np.cos(phase * 0.5)], axis=2).astype(np.float32)


@pytest.fixture
def image_files(tmp_path, astronaut_small, stripes_style):
    """(content.png, style.png) written in a temporary folder."""
    content = tmp_path / "content.png"
    style = tmp_path / "style.png"
    Image.fromarray((astronaut_small * 255).astype(np.uint8)).save(content)
    Image.fromarray((stripes_style * 255).astype(np.uint8)).save(style)
    return content, style
