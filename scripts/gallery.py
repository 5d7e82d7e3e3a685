"""Render the README's gallery of controls: ``make gallery`` (about 5 minutes on 2 CPU cores).

Every input is bundled with scikit-image (the astronaut photo, NASA, public domain) or generated
by impasto (the brush-stroke styles), so anyone can reproduce the pictures exactly:

    python scripts/gallery.py [--out docs/gallery] [--size 256] [--preset balanced]

Each control gets one strip of labelled pictures in ``--out`` (JPEG, small enough to commit).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage import data

from impasto.optimize.engine import Stylizer
from impasto.recipe import Recipe
from impasto.texture import brush_strokes

LABEL_HEIGHT = 26


def ellipse(shape: tuple[int, int], centre: tuple[float, float], axes: tuple[float, float],
            soft: float = 0.15) -> np.ndarray:
    """A white ellipse on black, ``(H, W)`` in [0, 1], with edges blurred over ``soft`` of its size."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    r = np.sqrt(((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2)
    return np.clip((1 + soft - r) / (2 * soft), 0, 1)


def strip(tiles: list[tuple[str, np.ndarray]], size: int) -> Image.Image:
    """Tiles side by side, each resized to ``size`` px high, with its label underneath."""
    font = ImageFont.load_default(size=15)
    pictures = []
    for label, array in tiles:
        rgb = array if array.ndim == 3 else np.repeat(array[..., None], 3, axis=2)
        picture = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
        picture = picture.resize((round(picture.width * size / picture.height), size), Image.Resampling.LANCZOS)
        pictures.append((label, picture))
    gap = 6
    width = sum(p.width for _, p in pictures) + gap * (len(pictures) - 1)
    canvas = Image.new("RGB", (width, size + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for label, picture in pictures:
        canvas.paste(picture, (x, 0))
        text_width = draw.textlength(label, font=font)
        draw.text((x + (picture.width - text_width) / 2, size + 5), label, fill=(40, 40, 40), font=font)
        x += picture.width + gap
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/gallery", help="output folder (default docs/gallery)")
    parser.add_argument("--size", type=int, default=256, help="long side of each result (default 256)")
    parser.add_argument("--preset", default="balanced")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = args.size

    photo = data.astronaut().astype(np.float32) / 255.0  # 512x512
    night = brush_strokes((512, 512), seed=0, palette="night")
    ember = brush_strokes((512, 512), seed=3, palette="ember")
    person = ellipse(photo.shape[:2], (215, 330), (175, 300))
    face = ellipse(photo.shape[:2], (235, 130), (75, 95))

    stylizer = Stylizer()
    started = time.perf_counter()

    def paint(styles, label, blend=None, masks=None, content_mask=None, **options):
        stylizer.recipe = Recipe.from_preset(args.preset, max_size=size, seed=0, **options)
        result = stylizer.run(photo, styles, style_blend=blend, masks=masks, content_mask=content_mask)
        print(f"  {label}: {result.elapsed:.1f} s", flush=True)
        return label, result.image

    def save(name, tiles):
        path = out / f"{name}.jpg"
        strip(tiles, size).save(path, quality=88, optimize=True)
        print(f"wrote {path}", flush=True)

    save("inputs", [("photo", photo), ("style: night", night), ("style: ember", ember)])
    save("colour", [paint(night, "no preservation"),
                    paint(night, "luminance", preserve_color="luminance"),
                    paint(night, "histogram", preserve_color="histogram"),
                    paint(night, "post-lab", preserve_color="post-lab")])
    save("blend", [paint(night, "night"),
                   paint([night, ember], "0.5 night + 0.5 ember", blend=[0.5, 0.5]),
                   paint(ember, "ember")])
    save("masks", [("mask: person", person),
                   paint([night, ember], "night around, ember on the person", masks=[1 - person, person]),
                   paint(night, "night around, photo kept", masks=[1 - person])])
    save("scale", [paint(night, "style scale 0.5", style_scale=0.5),
                   paint(night, "style scale 1", style_scale=1.0),
                   paint(night, "style scale 2", style_scale=2.0)])
    save("content_mask", [("content mask: face", face),
                          paint(night, "without", style_weight=4.0),
                          paint(night, "with the face mask", style_weight=4.0, content_mask=face,
                                content_mask_weights=(0.5, 6.0))])
    print(f"gallery done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
