"""Tests of impasto.images: reading, sizing, validating output paths and writing images.

Every test makes its own images in ``tmp_path`` with Pillow / NumPy / OpenCV / tifffile.
"""

from __future__ import annotations

import json
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

import impasto.images as images
from impasto.errors import ImageError, ImpastoError, UsageError
from impasto.images import (
    LoadedImage,
    check_output,
    fit,
    flatten,
    load_image,
    read_metadata,
    resize,
    save_image,
    scaled_to_long_side,
    sidecar_path,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def assert_rgb_image(loaded: LoadedImage, width: int, height: int) -> None:
    assert isinstance(loaded, LoadedImage)
    assert loaded.rgb.dtype == np.float32
    assert loaded.rgb.shape == (height, width, 3)
    assert loaded.size == (width, height)
    assert loaded.rgb.flags["C_CONTIGUOUS"]
    assert float(loaded.rgb.min()) >= 0.0 and float(loaded.rgb.max()) <= 1.0


def assert_close_rgb(pixel: np.ndarray, expected: tuple[int, int, int], tol: float = 8) -> None:
    got = np.asarray(pixel, dtype=np.float64) * 255.0
    assert np.all(np.abs(got - np.asarray(expected, dtype=np.float64)) <= tol + 1e-3), (got, expected)


def assert_one_line_error(excinfo, *needles: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def half_red_half_blue(width: int = 80, height: int = 40) -> Image.Image:
    """A non-symmetric pattern: red left half, blue right half."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_with_chunk_after_ihdr(data: bytes, kind: bytes, payload: bytes) -> bytes:
    assert data[12:16] == b"IHDR"
    return data[:33] + png_chunk(kind, payload) + data[33:]


def blank_png(width: int, height: int, *, idat: bytes | None = None) -> bytes:
    """A 1-bit greyscale all-black PNG, built row-chunk by row-chunk so it never holds the pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    if idat is None:
        row = b"\0" * (1 + (width + 7) // 8)
        compressor = zlib.compressobj(9)
        block = row * 500
        parts = [compressor.compress(block) for _ in range(height // 500)]
        parts.append(compressor.compress(row * (height % 500)))
        parts.append(compressor.flush())
        idat = b"".join(parts)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


# A minimal ICC v2 RGB matrix/TRC display profile, so that tests can embed a genuinely non-sRGB
# profile (Pillow can only create sRGB, LAB and XYZ profiles itself).
def _s15(value: float) -> bytes:
    return struct.pack(">i", int(round(value * 65536)))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def rgb_icc_profile(red, green, blue, gamma: float = 2.2, name: str = "impasto test RGB") -> bytes:
    text = name.encode() + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0\0\0" + b"\0" * 67
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(gamma * 256)))
    tags = [(b"desc", desc), (b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", _xyz(*red)),
            (b"gXYZ", _xyz(*green)), (b"bXYZ", _xyz(*blue)), (b"rTRC", curve), (b"gTRC", curve),
            (b"bTRC", curve), (b"cprt", b"text\0\0\0\0public domain\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, blob = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(blob), len(data))
        blob += data + b"\0" * (-len(data) % 4)
    body = struct.pack(">I", len(tags)) + table + blob
    header = (struct.pack(">I", 128 + len(body)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + body


# sRGB primaries adapted to D50, as in the sRGB ICC profile.
SRGB_RED_XYZ = (0.4361, 0.2225, 0.0139)
SRGB_GREEN_XYZ = (0.3851, 0.7169, 0.0971)
SRGB_BLUE_XYZ = (0.1431, 0.0606, 0.7141)


def gradient_rgb(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth float32 image in [0, 1] (lossy codecs keep it close)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([x / (width - 1), y / (height - 1), 0.25 + 0.5 * (x + y) / (width + height - 2)], axis=2)


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------------------------------------
# load_image: sources
# ---------------------------------------------------------------------------------------------
class TestLoadSources:
    def test_from_path_str_and_pathlike(self, tmp_path):
        path = tmp_path / "in.png"
        half_red_half_blue().save(path)
        for source in (path, str(path)):
            loaded = load_image(source)
            assert_rgb_image(loaded, 80, 40)
            assert_close_rgb(loaded.rgb[20, 5], RED, tol=0)
            assert_close_rgb(loaded.rgb[20, 75], BLUE, tol=0)
            assert loaded.alpha is None
            assert "in.png" in loaded.name

    def test_from_pil_image(self):
        loaded = load_image(half_red_half_blue(), what="style image")
        assert_rgb_image(loaded, 80, 40)
        assert_close_rgb(loaded.rgb[0, 0], RED, tol=0)
        assert_close_rgb(loaded.rgb[0, 79], BLUE, tol=0)
        assert loaded.alpha is None

    def test_from_pil_greyscale_and_palette(self):
        grey = Image.new("L", (40, 40), 100)
        loaded = load_image(grey)
        assert_rgb_image(loaded, 40, 40)
        np.testing.assert_allclose(loaded.rgb, 100 / 255, atol=1e-6)
        palette = half_red_half_blue().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        loaded = load_image(palette)
        assert_rgb_image(loaded, 80, 40)
        assert_close_rgb(loaded.rgb[10, 10], RED, tol=2)
        assert loaded.alpha is None

    def test_from_uint8_array(self):
        array = np.zeros((40, 50, 3), np.uint8)
        array[..., 0] = 255
        array[:, 25:, 1] = 51
        loaded = load_image(array)
        assert_rgb_image(loaded, 50, 40)
        np.testing.assert_allclose(loaded.rgb[0, 0], [1.0, 0.0, 0.0])
        np.testing.assert_allclose(loaded.rgb[0, 30], [1.0, 0.2, 0.0], atol=1e-6)
        assert loaded.alpha is None

    def test_from_uint16_array_keeps_precision(self):
        array = np.full((40, 40, 3), 1000, np.uint16)
        array[..., 2] = 65535
        loaded = load_image(array)
        assert_rgb_image(loaded, 40, 40)
        np.testing.assert_allclose(loaded.rgb[5, 5], [1000 / 65535, 1000 / 65535, 1.0], atol=1e-6)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
    def test_from_float_array(self, dtype):
        array = gradient_rgb(50, 40).astype(dtype)
        loaded = load_image(array)
        assert_rgb_image(loaded, 50, 40)
        np.testing.assert_allclose(loaded.rgb, array.astype(np.float32), atol=1e-3)

    def test_float_array_is_clipped(self):
        array = np.full((40, 40, 3), 0.5, np.float32)
        array[0, 0] = [-1.0, 2.0, 0.5]
        loaded = load_image(array)
        assert_rgb_image(loaded, 40, 40)
        np.testing.assert_allclose(loaded.rgb[0, 0], [0.0, 1.0, 0.5])

    def test_float_array_with_nan_is_an_image_error(self):
        array = np.full((40, 40, 3), 0.5, np.float32)
        array[3, 3, 1] = np.nan
        with pytest.raises(ImageError) as excinfo:
            load_image(array, what="content image")
        assert_one_line_error(excinfo, "content image")

    def test_from_greyscale_2d_array(self):
        array = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (40, 1))
        loaded = load_image(array)
        assert_rgb_image(loaded, 48, 40)
        np.testing.assert_array_equal(loaded.rgb[..., 0], loaded.rgb[..., 1])
        np.testing.assert_array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])
        np.testing.assert_allclose(loaded.rgb[7, :, 0], array[7] / 255.0, atol=1e-6)

    def test_from_single_channel_3d_array(self):
        array = np.full((40, 40, 1), 0.25, np.float32)
        loaded = load_image(array)
        assert_rgb_image(loaded, 40, 40)
        np.testing.assert_allclose(loaded.rgb, 0.25)

    def test_from_rgba_array(self):
        array = np.zeros((40, 40, 4), np.uint8)
        array[..., 1] = 255
        array[..., 3] = 255
        array[:, :10, 3] = 0
        loaded = load_image(array)
        assert_rgb_image(loaded, 40, 40)
        assert loaded.alpha is not None
        assert loaded.alpha.shape == (40, 40)
        assert loaded.alpha.dtype == np.float32
        np.testing.assert_allclose(loaded.alpha[:, :10], 0.0)
        np.testing.assert_allclose(loaded.alpha[:, 10:], 1.0)
        np.testing.assert_allclose(loaded.rgb[0, 20], [0.0, 1.0, 0.0])

    def test_opaque_rgba_array_has_no_alpha(self):
        array = np.full((40, 40, 4), 1.0, np.float32)
        assert load_image(array).alpha is None

    def test_array_input_is_not_modified(self):
        array = np.full((40, 40, 3), 0.5, np.float32)
        loaded = load_image(array)
        loaded.rgb[...] = 0.0
        assert float(array.min()) == 0.5

    @pytest.mark.parametrize("shape", [(40, 40, 2), (40, 40, 5), (40,), (2, 40, 40, 3)])
    def test_array_of_wrong_shape_is_usage_error(self, shape):
        with pytest.raises(UsageError) as excinfo:
            load_image(np.zeros(shape, np.uint8), what="style image 2")
        assert_one_line_error(excinfo, "style image 2")

    def test_array_of_unsupported_dtype_is_usage_error(self):
        with pytest.raises(UsageError):
            load_image(np.zeros((40, 40, 3), np.complex64))

    def test_unsupported_source_type_is_usage_error(self):
        with pytest.raises(UsageError) as excinfo:
            load_image(12345, what="content image")
        assert_one_line_error(excinfo, "content image", "int")

    def test_errors_are_impasto_errors(self):
        assert issubclass(ImageError, ImpastoError) and issubclass(UsageError, ImpastoError)


# ---------------------------------------------------------------------------------------------
# load_image: EXIF orientation
# ---------------------------------------------------------------------------------------------
class TestExifOrientation:
    # 80x40 stored pixels: red left half, blue right half.
    # 3 = rotate 180, 6 = viewer rotates 90 deg clockwise, 8 = viewer rotates 90 deg anticlockwise.
    @pytest.mark.parametrize("orientation, shape, top_left, bottom_right", [
        (1, (40, 80, 3), RED, BLUE),
        (3, (40, 80, 3), BLUE, RED),
        (6, (80, 40, 3), RED, BLUE),
        (8, (80, 40, 3), BLUE, RED),
    ])
    def test_jpeg_orientation(self, tmp_path, orientation, shape, top_left, bottom_right):
        path = tmp_path / f"o{orientation}.jpg"
        half_red_half_blue().save(path, exif=exif_bytes(orientation), quality=95)
        loaded = load_image(path)
        assert loaded.rgb.shape == shape
        assert_close_rgb(loaded.rgb[3, 3], top_left, tol=12)
        assert_close_rgb(loaded.rgb[-4, -4], bottom_right, tol=12)

    def test_orientation_6_red_on_top(self, tmp_path):
        path = tmp_path / "o6.jpg"
        half_red_half_blue().save(path, exif=exif_bytes(6), quality=95)
        rgb = load_image(path).rgb
        assert rgb.shape[:2] == (80, 40)
        top, bottom = rgb[:35].mean(axis=(0, 1)), rgb[45:].mean(axis=(0, 1))
        assert top[0] > 0.9 and top[2] < 0.1
        assert bottom[2] > 0.9 and bottom[0] < 0.1

    def test_pil_image_with_orientation_is_transposed(self, tmp_path):
        path = tmp_path / "o8.jpg"
        half_red_half_blue().save(path, exif=exif_bytes(8), quality=95)
        with Image.open(path) as opened:
            loaded = load_image(opened)
        assert loaded.rgb.shape == (80, 40, 3)
        assert_close_rgb(loaded.rgb[-4, 3], RED, tol=12)

    def test_orientation_with_alpha_rotates_alpha_too(self, tmp_path):
        image = Image.new("RGBA", (80, 40), (0, 0, 255, 255))
        image.paste((255, 0, 0, 0), (0, 0, 40, 40))  # transparent left half
        path = tmp_path / "o6.png"
        image.save(path, exif=exif_bytes(6))
        loaded = load_image(path)
        assert loaded.rgb.shape == (80, 40, 3)
        assert loaded.alpha is not None and loaded.alpha.shape == (80, 40)
        np.testing.assert_allclose(loaded.alpha[:40], 0.0)
        np.testing.assert_allclose(loaded.alpha[40:], 1.0)

    def test_16bit_png_with_orientation_keeps_precision_and_rotates(self, tmp_path):
        bgr = np.zeros((40, 80, 3), np.uint16)
        bgr[:, :40, 2] = 1000    # red 1000/65535 on the left
        bgr[:, 40:, 0] = 60000   # blue on the right
        ok, encoded = cv2.imencode(".png", bgr)
        assert ok
        exif = exif_bytes(6)
        payload = exif[6:] if exif.startswith(b"Exif\0\0") else exif
        path = tmp_path / "o6-16.png"
        path.write_bytes(png_with_chunk_after_ihdr(encoded.tobytes(), b"eXIf", payload))
        loaded = load_image(path)
        assert loaded.rgb.shape == (80, 40, 3)
        np.testing.assert_allclose(loaded.rgb[2, 2], [1000 / 65535, 0, 0], atol=1e-5)
        np.testing.assert_allclose(loaded.rgb[-3, -3], [0, 0, 60000 / 65535], atol=1e-5)

    def test_broken_exif_does_not_make_image_unreadable(self, tmp_path):
        path = tmp_path / "badexif.jpg"
        half_red_half_blue().save(path, exif=b"Exif\0\0garbage-not-a-tiff-header", quality=95)
        loaded = load_image(path)
        assert_rgb_image(loaded, 80, 40)


# ---------------------------------------------------------------------------------------------
# load_image: alpha and transparency
# ---------------------------------------------------------------------------------------------
class TestAlpha:
    def test_rgba_png_with_transparency(self, tmp_path):
        image = Image.new("RGBA", (60, 40), (255, 0, 0, 255))
        image.paste((0, 0, 0, 0), (0, 0, 20, 40))          # transparent black
        image.paste((0, 0, 255, 128), (20, 0, 40, 40))     # half-transparent blue
        path = tmp_path / "alpha.png"
        image.save(path)
        loaded = load_image(path)
        assert_rgb_image(loaded, 60, 40)
        assert loaded.alpha is not None
        assert loaded.alpha.shape == (40, 60) and loaded.alpha.dtype == np.float32
        np.testing.assert_allclose(loaded.alpha[:, :20], 0.0)
        np.testing.assert_allclose(loaded.alpha[:, 20:40], 128 / 255, atol=1e-6)
        np.testing.assert_allclose(loaded.alpha[:, 40:], 1.0)
        flat = flatten(loaded)
        assert flat.shape == (40, 60, 3)
        np.testing.assert_allclose(flat[:, :20], 1.0, atol=1e-6)             # white background
        np.testing.assert_allclose(flat[5, 30], [127 / 255, 127 / 255, 1.0], atol=2 / 255)
        np.testing.assert_allclose(flat[:, 40:], np.broadcast_to([1.0, 0, 0], (40, 20, 3)), atol=1e-6)

    def test_flatten_with_custom_background(self):
        loaded = LoadedImage(rgb=np.ones((4, 4, 3), np.float32) * 0.2, alpha=np.zeros((4, 4), np.float32))
        np.testing.assert_allclose(flatten(loaded, background=0.0), 0.0)
        np.testing.assert_allclose(flatten(loaded, background=0.5), 0.5)

    def test_flatten_without_alpha_returns_rgb(self):
        rgb = gradient_rgb()
        loaded = LoadedImage(rgb=rgb)
        assert flatten(loaded) is rgb

    def test_fully_opaque_rgba_has_no_alpha(self, tmp_path):
        path = tmp_path / "opaque.png"
        Image.new("RGBA", (40, 40), (10, 20, 30, 255)).save(path)
        loaded = load_image(path)
        assert loaded.alpha is None
        assert_close_rgb(loaded.rgb[0, 0], (10, 20, 30), tol=0)

    def test_greyscale_alpha_png(self, tmp_path):
        image = Image.new("LA", (40, 40), (200, 255))
        image.paste((0, 0), (0, 0, 40, 10))
        path = tmp_path / "la.png"
        image.save(path)
        loaded = load_image(path)
        assert loaded.alpha is not None
        np.testing.assert_allclose(loaded.alpha[:10], 0.0)
        np.testing.assert_allclose(loaded.alpha[10:], 1.0)
        assert_close_rgb(loaded.rgb[20, 20], (200, 200, 200), tol=0)

    def test_palette_png_with_transparency(self, tmp_path):
        image = Image.new("P", (40, 40), 1)
        image.putpalette([0, 255, 0, 255, 0, 0] + [0] * 762)   # index 0 green, index 1 red
        image.paste(0, (0, 0, 40, 15))
        path = tmp_path / "palette.png"
        image.save(path, transparency=0)
        with Image.open(path) as check:
            assert check.mode == "P" and "transparency" in check.info
        loaded = load_image(path)
        assert_rgb_image(loaded, 40, 40)
        assert loaded.alpha is not None
        np.testing.assert_allclose(loaded.alpha[:15], 0.0)
        np.testing.assert_allclose(loaded.alpha[15:], 1.0)
        assert_close_rgb(loaded.rgb[30, 30], RED, tol=0)
        flat = flatten(loaded)
        np.testing.assert_allclose(flat[:15], 1.0)
        np.testing.assert_allclose(flat[30, 30], [1.0, 0.0, 0.0])

    def test_palette_png_with_unused_transparency_index_is_opaque(self, tmp_path):
        image = Image.new("P", (40, 40), 1)
        image.putpalette([0, 255, 0, 255, 0, 0] + [0] * 762)
        path = tmp_path / "palette.png"
        image.save(path, transparency=0)
        loaded = load_image(path)
        assert loaded.alpha is None
        assert_close_rgb(loaded.rgb[0, 0], RED, tol=0)

    @pytest.mark.parametrize("mode, key", [("RGB", (255, 0, 0)), ("L", 76)])
    def test_colour_key_transparency_png(self, tmp_path, mode, key):
        image = half_red_half_blue().convert(mode)          # red -> L 76
        path = tmp_path / "trns.png"
        image.save(path, transparency=key)
        loaded = load_image(path)
        assert loaded.alpha is not None
        np.testing.assert_allclose(loaded.alpha[:, :40], 0.0)
        np.testing.assert_allclose(loaded.alpha[:, 40:], 1.0)

    @pytest.mark.parametrize("mode", ["RGBa", "La"])
    def test_premultiplied_pil_modes(self, mode):
        image = Image.new("RGBA", (40, 40), (255, 0, 0, 255))
        image.paste((0, 0, 0, 0), (0, 0, 40, 10))
        # Pillow's RGBA -> La conversion drops alpha, so reach La through LA
        image = image.convert("LA").convert("La") if mode == "La" else image.convert(mode)
        loaded = load_image(image)
        assert loaded.alpha is not None
        np.testing.assert_allclose(loaded.alpha[:10], 0.0)
        np.testing.assert_allclose(loaded.alpha[10:], 1.0)


# ---------------------------------------------------------------------------------------------
# load_image: bit depth, colour modes, colour management, formats
# ---------------------------------------------------------------------------------------------
class TestDepthAndColour:
    def test_16bit_greyscale_png_full_precision(self, tmp_path):
        grey = np.full((40, 48), 1000, np.uint16)
        grey[:, 24:] = 50001
        path = tmp_path / "grey16.png"
        Image.fromarray(grey).save(path)
        with Image.open(path) as check:
            assert check.mode.startswith("I")
        loaded = load_image(path)
        assert_rgb_image(loaded, 48, 40)
        np.testing.assert_allclose(loaded.rgb[5, 5], [1000 / 65535] * 3, atol=1e-4)
        np.testing.assert_allclose(loaded.rgb[5, 40], [50001 / 65535] * 3, atol=1e-4)
        # would fail if quantised to 8 bits (1000/65535 is 4.3e-4 away from 4/255)
        assert abs(float(loaded.rgb[5, 5, 0]) - 1000 / 65535) < 1e-5

    def test_16bit_rgb_png_written_by_opencv_full_precision(self, tmp_path):
        rgb16 = np.zeros((40, 48, 3), np.uint16)
        rgb16[..., 0] = 1000
        rgb16[..., 1] = 30001
        rgb16[..., 2] = 65000
        rgb16[:, 24:, 0] = 12345
        path = tmp_path / "rgb16.png"
        assert cv2.imwrite(str(path), rgb16[..., ::-1].copy())   # OpenCV takes BGR
        loaded = load_image(path)
        assert_rgb_image(loaded, 48, 40)
        np.testing.assert_allclose(loaded.rgb[3, 3], [1000 / 65535, 30001 / 65535, 65000 / 65535], atol=1e-5)
        np.testing.assert_allclose(loaded.rgb[3, 40, 0], 12345 / 65535, atol=1e-5)
        assert abs(float(loaded.rgb[3, 3, 0]) - 1000 / 65535) < 1e-4

    def test_16bit_rgba_png_full_precision_and_alpha(self, tmp_path):
        bgra = np.zeros((40, 40, 4), np.uint16)
        bgra[..., 2] = 1000
        bgra[..., 3] = 65535
        bgra[:10, :, 3] = 0
        path = tmp_path / "rgba16.png"
        assert cv2.imwrite(str(path), bgra)
        loaded = load_image(path)
        assert_rgb_image(loaded, 40, 40)
        np.testing.assert_allclose(loaded.rgb[20, 20, 0], 1000 / 65535, atol=1e-5)
        assert loaded.alpha is not None
        np.testing.assert_allclose(loaded.alpha[:10], 0.0)
        np.testing.assert_allclose(loaded.alpha[10:], 1.0)

    def test_16bit_rgb_tiff_full_precision(self, tmp_path):
        rgb16 = np.full((40, 40, 3), 1000, np.uint16)
        rgb16[..., 2] = 40000
        path = tmp_path / "rgb16.tif"
        tifffile.imwrite(path, rgb16, photometric="rgb")
        loaded = load_image(path)
        assert_rgb_image(loaded, 40, 40)
        np.testing.assert_allclose(loaded.rgb[7, 7], [1000 / 65535, 1000 / 65535, 40000 / 65535], atol=1e-5)

    def test_cmyk_jpeg_loads_as_rgb(self, tmp_path):
        image = Image.new("CMYK", (40, 40), (255, 0, 0, 0))      # pure cyan
        image.paste((0, 255, 0, 0), (0, 0, 40, 20))              # pure magenta on top
        path = tmp_path / "cmyk.jpg"
        image.save(path, quality=95)
        with Image.open(path) as check:
            assert check.mode == "CMYK"
        loaded = load_image(path)
        assert_rgb_image(loaded, 40, 40)
        assert_close_rgb(loaded.rgb[30, 20], (0, 255, 255), tol=20)
        assert_close_rgb(loaded.rgb[5, 20], (255, 0, 255), tol=20)

    def test_embedded_srgb_profile_preserves_pixels(self, tmp_path):
        profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        array = (gradient_rgb(48, 40) * 255 + 0.5).astype(np.uint8)
        path = tmp_path / "srgb.png"
        Image.fromarray(array).save(path, icc_profile=profile)
        with Image.open(path) as check:
            assert check.info.get("icc_profile")
        loaded = load_image(path)
        assert_rgb_image(loaded, 48, 40)
        np.testing.assert_allclose(loaded.rgb, array / 255.0, atol=2 / 255)

    @pytest.mark.parametrize("suffix", [".png", ".jpg"])
    def test_non_srgb_profile_is_converted(self, tmp_path, suffix):
        # A profile whose "red" primary is sRGB green and whose "green" primary is sRGB red:
        # stored (255, 0, 0) must come out as sRGB green.
        profile = rgb_icc_profile(SRGB_GREEN_XYZ, SRGB_RED_XYZ, SRGB_BLUE_XYZ)
        image = Image.new("RGB", (40, 40), RED)
        image.paste(BLUE, (0, 0, 20, 40))
        path = tmp_path / f"swapped{suffix}"
        image.save(path, icc_profile=profile, **({"quality": 95} if suffix == ".jpg" else {}))
        loaded = load_image(path)
        assert_rgb_image(loaded, 40, 40)
        assert_close_rgb(loaded.rgb[20, 30], GREEN, tol=6)
        assert_close_rgb(loaded.rgb[20, 5], BLUE, tol=6)

    def test_linear_gamma_profile_is_converted(self, tmp_path):
        profile = rgb_icc_profile(SRGB_RED_XYZ, SRGB_GREEN_XYZ, SRGB_BLUE_XYZ, gamma=1.0)
        path = tmp_path / "linear.png"
        Image.new("RGB", (40, 40), (128, 128, 128)).save(path, icc_profile=profile)
        value = float(load_image(path).rgb[0, 0, 0]) * 255
        # linear 0.502 is sRGB ~188; treating the pixels as sRGB would give 128
        assert 180 <= value <= 195, value

    @pytest.mark.parametrize("suffix", [".png", ".jpg"])
    def test_garbage_icc_profile_does_not_crash(self, tmp_path, suffix):
        path = tmp_path / f"garbage{suffix}"
        Image.new("RGB", (40, 40), (200, 100, 50)).save(path, icc_profile=b"this is not an ICC profile" * 8,
                                                         **({"quality": 95} if suffix == ".jpg" else {}))
        with Image.open(path) as check:
            assert check.info.get("icc_profile")
        loaded = load_image(path)
        assert_rgb_image(loaded, 40, 40)
        assert_close_rgb(loaded.rgb[20, 20], (200, 100, 50), tol=3)

    def test_greyscale_and_bilevel_pngs(self, tmp_path):
        Image.new("L", (40, 40), 77).save(tmp_path / "l.png")
        bilevel = Image.new("1", (40, 40), 0)
        bilevel.paste(1, (0, 0, 20, 40))
        bilevel.save(tmp_path / "one.png")
        grey = load_image(tmp_path / "l.png")
        np.testing.assert_allclose(grey.rgb, 77 / 255, atol=1e-6)
        one = load_image(tmp_path / "one.png")
        np.testing.assert_allclose(one.rgb[:, :20], 1.0)
        np.testing.assert_allclose(one.rgb[:, 20:], 0.0)

    def test_animated_gif_first_frame(self, tmp_path):
        frames = [Image.new("RGB", (40, 40), colour) for colour in (RED, GREEN, BLUE)]
        path = tmp_path / "anim.gif"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
        with Image.open(path) as check:
            assert getattr(check, "n_frames", 1) == 3
        loaded = load_image(path)
        assert_rgb_image(loaded, 40, 40)
        assert_close_rgb(loaded.rgb[20, 20], RED, tol=0)

    def test_gif_with_transparency(self, tmp_path):
        image = Image.new("P", (40, 40), 1)
        image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
        image.paste(0, (0, 0, 40, 20))
        path = tmp_path / "t.gif"
        image.save(path, transparency=0)
        loaded = load_image(path)
        assert loaded.alpha is not None
        np.testing.assert_allclose(loaded.alpha[:20], 0.0)
        np.testing.assert_allclose(loaded.alpha[20:], 1.0)

    @pytest.mark.parametrize("fmt, suffix", [("WEBP", ".webp"), ("TIFF", ".tif"), ("BMP", ".bmp")])
    def test_other_formats(self, tmp_path, fmt, suffix):
        path = tmp_path / f"in{suffix}"
        half_red_half_blue().save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        loaded = load_image(path)
        assert_rgb_image(loaded, 80, 40)
        assert_close_rgb(loaded.rgb[20, 10], RED, tol=0)
        assert_close_rgb(loaded.rgb[20, 70], BLUE, tol=0)

    def test_format_is_detected_from_content_not_extension(self, tmp_path):
        path = tmp_path / "actually-a-png.jpg"
        half_red_half_blue().save(path, "PNG")
        assert_close_rgb(load_image(path).rgb[20, 10], RED, tol=0)


# ---------------------------------------------------------------------------------------------
# load_image: errors
# ---------------------------------------------------------------------------------------------
class TestLoadErrors:
    def test_missing_file(self, tmp_path):
        path = tmp_path / "nope.png"
        with pytest.raises(ImageError) as excinfo:
            load_image(path, what="content image")
        assert_one_line_error(excinfo, "content image", "nope.png", "does not exist")

    def test_directory(self, tmp_path):
        folder = tmp_path / "folder.png"
        folder.mkdir()
        with pytest.raises(ImageError) as excinfo:
            load_image(folder)
        assert_one_line_error(excinfo, "folder.png", "directory")

    def test_zero_byte_file(self, tmp_path):
        path = tmp_path / "empty.png"
        path.touch()
        with pytest.raises(ImageError) as excinfo:
            load_image(path)
        assert_one_line_error(excinfo, "empty.png", "empty")

    def test_text_file(self, tmp_path):
        path = tmp_path / "notes.png"
        path.write_text("this is not an image\nsecond line\n")
        with pytest.raises(ImageError) as excinfo:
            load_image(path, what="style image")
        assert_one_line_error(excinfo, "style image", "notes.png", "not an image")

    def test_random_bytes(self, tmp_path):
        path = tmp_path / "noise.jpg"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        with pytest.raises(ImageError) as excinfo:
            load_image(path)
        assert_one_line_error(excinfo, "noise.jpg")

    @pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
    def test_truncated_file(self, tmp_path, fmt, suffix):
        rng = np.random.default_rng(1)
        whole = tmp_path / f"whole{suffix}"
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(whole, fmt)
        data = whole.read_bytes()
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data[: len(data) // 2])
        assert_rgb_image(load_image(whole), 96, 96)
        with pytest.raises(ImageError) as excinfo:
            load_image(cut)
        assert_one_line_error(excinfo, f"cut{suffix}", "truncated")

    def test_header_only_png(self, tmp_path):
        data = blank_png(64, 64)
        path = tmp_path / "head.png"
        path.write_bytes(data[:40])
        with pytest.raises(ImageError) as excinfo:
            load_image(path)
        assert_one_line_error(excinfo, "head.png")

    def test_pixel_limit(self, tmp_path):
        path = tmp_path / "big.png"
        Image.new("RGB", (100, 50)).save(path)
        assert_rgb_image(load_image(path, max_pixels=5000), 100, 50)
        with pytest.raises(ImageError) as excinfo:
            load_image(path, max_pixels=4999)
        assert_one_line_error(excinfo, "big.png", "100x50", "4,999")

    def test_pixel_limit_for_arrays_and_pil(self):
        with pytest.raises(ImageError) as excinfo:
            load_image(np.zeros((50, 100, 3), np.uint8), what="content image", max_pixels=1000)
        assert_one_line_error(excinfo, "content image", "1,000")
        with pytest.raises(ImageError):
            load_image(Image.new("RGB", (100, 50)), max_pixels=1000)

    @pytest.mark.parametrize("size", [(31, 100), (100, 31), (8, 8)])
    def test_too_small(self, tmp_path, size):
        path = tmp_path / "small.png"
        Image.new("RGB", size).save(path)
        with pytest.raises(ImageError) as excinfo:
            load_image(path)
        assert_one_line_error(excinfo, "small.png", "too small", "32")

    def test_min_side_exactly_32_ok_and_configurable(self, tmp_path):
        path = tmp_path / "ok.png"
        Image.new("RGB", (32, 32)).save(path)
        assert_rgb_image(load_image(path), 32, 32)
        with pytest.raises(ImageError):
            load_image(path, min_side=33)
        assert_rgb_image(load_image(np.zeros((4, 4, 3), np.uint8), min_side=1), 4, 4)
        with pytest.raises(ImageError):
            load_image(np.zeros((31, 40, 3), np.uint8))

    def test_unreadable_file(self, tmp_path, monkeypatch):
        path = tmp_path / "secret.png"
        Image.new("RGB", (40, 40)).save(path)
        # chmod 0 stops no one running as root (as CI does): deny the read itself
        real_read = Path.read_bytes

        def denied(self):
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_read(self)

        monkeypatch.setattr(Path, "read_bytes", denied)
        with pytest.raises(ImageError) as excinfo:
            load_image(path)
        assert_one_line_error(excinfo, "secret.png", "permission")


class TestDecompressionBomb:
    def test_bomb_over_default_limit_rejected_before_decoding(self, tmp_path, monkeypatch):
        data = blank_png(12000, 12000)                 # 144 MP, a few kB on disk
        assert len(data) < 1_000_000
        path = tmp_path / "bomb.png"
        path.write_bytes(data)

        def no_decoding(self, *args, **kwargs):
            raise AssertionError("the pixels of a too-large image were decoded")

        monkeypatch.setattr(Image.Image, "load", no_decoding)
        monkeypatch.setattr(images.Image.Image, "load", no_decoding)
        from PIL import ImageFile
        monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
        saved_limit = Image.MAX_IMAGE_PIXELS
        with pytest.raises(ImageError) as excinfo:
            load_image(path, what="content image")
        assert_one_line_error(excinfo, "bomb.png", "12000x12000", "100,000,000")
        assert Image.MAX_IMAGE_PIXELS == saved_limit

    def test_bomb_with_bogus_pixel_data_reports_the_limit(self, tmp_path):
        # The header claims 12000x12000 but the pixel data is junk: if the size check ran after
        # decoding, this would be reported as a corrupt file instead.
        path = tmp_path / "bomb2.png"
        path.write_bytes(blank_png(12000, 12000, idat=b"junk"))
        with pytest.raises(ImageError) as excinfo:
            load_image(path)
        assert_one_line_error(excinfo, "bomb2.png", "limit")

    def test_huge_bomb_beyond_pillows_own_limit(self, tmp_path):
        path = tmp_path / "bomb3.png"
        path.write_bytes(blank_png(30000, 30000, idat=b"junk"))  # 900 MP: Pillow's own check fires
        saved_limit = Image.MAX_IMAGE_PIXELS
        with pytest.raises(ImageError) as excinfo:
            load_image(path)
        assert_one_line_error(excinfo, "bomb3.png", "limit")
        assert Image.MAX_IMAGE_PIXELS == saved_limit

    def test_pillow_limit_is_raised_and_restored(self, tmp_path, monkeypatch):
        # Pillow alone refuses images over 2 * Image.MAX_IMAGE_PIXELS; impasto's own --max-pixels
        # must govern instead, and Pillow's global setting must be restored afterwards.
        path = tmp_path / "ok.png"
        Image.new("RGB", (100, 100), RED).save(path)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        with pytest.raises(Image.DecompressionBombError):
            Image.open(path)
        loaded = load_image(path)
        assert_rgb_image(loaded, 100, 100)
        assert Image.MAX_IMAGE_PIXELS == 1000
        with pytest.raises(ImageError):
            load_image(path, max_pixels=5000)
        assert Image.MAX_IMAGE_PIXELS == 1000


# ---------------------------------------------------------------------------------------------
# Sizing
# ---------------------------------------------------------------------------------------------
def disc_image(width: int, height: int, radius: int) -> LoadedImage:
    """A white disc of ``radius`` centred on black."""
    y, x = np.mgrid[0:height, 0:width]
    inside = (x - (width - 1) / 2) ** 2 + (y - (height - 1) / 2) ** 2 <= radius ** 2
    return LoadedImage(rgb=np.repeat(inside[..., None], 3, axis=2).astype(np.float32), name="disc")


def disc_extent(rgb: np.ndarray) -> tuple[int, int]:
    mask = rgb[..., 0] > 0.5
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1


class TestFit:
    def test_max_size_shrinks_long_side_keeping_aspect(self):
        loaded = LoadedImage(rgb=gradient_rgb(400, 200))
        out = fit(loaded, max_size=100)
        assert out.rgb.shape == (50, 100, 3) and out.rgb.dtype == np.float32
        tall = fit(LoadedImage(rgb=gradient_rgb(120, 300)), max_size=150)
        assert tall.rgb.shape == (150, 60, 3)

    def test_max_size_never_enlarges(self):
        rgb = gradient_rgb(80, 60)
        out = fit(LoadedImage(rgb=rgb), max_size=512)
        assert out.rgb.shape == (60, 80, 3)
        np.testing.assert_array_equal(out.rgb, rgb)
        assert fit(LoadedImage(rgb=rgb), max_size=80).rgb.shape == (60, 80, 3)

    def test_name_is_kept(self):
        assert fit(LoadedImage(rgb=gradient_rgb(), name="content 'x.png'"), max_size=32).name == "content 'x.png'"

    @pytest.mark.parametrize("size", [(64, 64), (120, 100), (100, 40), (33, 77), (400, 300)])
    def test_size_is_exact(self, size):
        out = fit(LoadedImage(rgb=gradient_rgb(300, 200)), max_size=10, size=size)
        assert out.rgb.shape == (size[1], size[0], 3)
        assert float(out.rgb.min()) >= 0.0 and float(out.rgb.max()) <= 1.0

    def test_size_does_not_distort(self):
        # 300x200 with a disc of diameter ~121 -> 120x100: covered at 0.5 (150x100), cropped to 120.
        out = fit(disc_image(300, 200, 60), max_size=4096, size=(120, 100))
        assert out.rgb.shape == (100, 120, 3)
        width, height = disc_extent(out.rgb)
        assert abs(width - height) <= 2, (width, height)
        assert 56 <= width <= 64, width

    def test_size_crop_is_centred(self):
        out = fit(disc_image(300, 200, 60), max_size=4096, size=(120, 100))
        mask = out.rgb[..., 0] > 0.5
        rows, cols = np.nonzero(mask)
        assert abs(rows.mean() - 49.5) <= 1.5 and abs(cols.mean() - 59.5) <= 1.5

    def test_square_crop(self):
        out = fit(disc_image(300, 200, 60), max_size=4096, square="crop")
        assert out.rgb.shape == (200, 200, 3)
        width, height = disc_extent(out.rgb)
        assert width == height
        tall = fit(LoadedImage(rgb=gradient_rgb(60, 150)), max_size=4096, square="crop")
        assert tall.rgb.shape == (60, 60, 3)

    def test_square_pad(self):
        rgb = gradient_rgb(150, 60)
        out = fit(LoadedImage(rgb=rgb), max_size=4096, square="pad")
        assert out.rgb.shape == (150, 150, 3)
        np.testing.assert_array_equal(out.rgb[45:105], rgb)       # original centred, untouched
        np.testing.assert_array_equal(out.rgb[44], rgb[0])         # mirrored edge
        np.testing.assert_array_equal(out.rgb[105], rgb[-1])

    def test_square_pad_with_pad_wider_than_image(self):
        out = fit(LoadedImage(rgb=gradient_rgb(200, 40)), max_size=4096, square="pad")
        assert out.rgb.shape == (200, 200, 3)
        assert np.isfinite(out.rgb).all()

    def test_square_then_max_size(self):
        out = fit(LoadedImage(rgb=gradient_rgb(300, 200)), max_size=100, square="crop")
        assert out.rgb.shape == (100, 100, 3)

    def test_aspect_crop_16_9(self):
        out = fit(LoadedImage(rgb=gradient_rgb(320, 320)), max_size=4096, aspect=(16, 9))
        assert out.rgb.shape == (180, 320, 3)
        wide = fit(LoadedImage(rgb=gradient_rgb(640, 180)), max_size=4096, aspect=(16, 9))
        assert wide.rgb.shape == (180, 320, 3)
        # centred: the middle column of the crop is the middle column of the input
        rgb = gradient_rgb(640, 180)
        np.testing.assert_array_equal(wide.rgb, rgb[:, 160:480])

    def test_aspect_then_size(self):
        out = fit(LoadedImage(rgb=gradient_rgb(320, 320)), max_size=4096, aspect=(16, 9), size=(160, 90))
        assert out.rgb.shape == (90, 160, 3)

    def test_alpha_follows_geometry(self):
        rgb = gradient_rgb(300, 200)
        alpha = np.ones((200, 300), np.float32)
        alpha[:, :150] = 0.0                            # left half transparent
        loaded = LoadedImage(rgb=rgb, alpha=alpha)
        for kwargs, shape in [({"max_size": 150}, (100, 150)), ({"max_size": 999, "size": (64, 48)}, (48, 64)),
                              ({"max_size": 999, "square": "crop"}, (200, 200)),
                              ({"max_size": 999, "square": "pad"}, (300, 300)),
                              ({"max_size": 999, "aspect": (16, 9)}, (169, 300))]:
            out = fit(loaded, **kwargs)
            assert out.rgb.shape == shape + (3,), kwargs
            assert out.alpha is not None and out.alpha.shape == shape, kwargs
            assert out.alpha.dtype == np.float32
            width = shape[1]
            assert float(out.alpha[:, : width // 2 - 3].max()) < 0.05, kwargs
            assert float(out.alpha[:, width // 2 + 3:].min()) > 0.95, kwargs

    def test_no_alpha_stays_none(self):
        assert fit(LoadedImage(rgb=gradient_rgb(300, 200)), max_size=100, square="pad").alpha is None


class TestResize:
    def test_shape_dtype_and_range(self):
        rgb = np.zeros((60, 80, 3), np.float32)
        rgb[:, 40:] = 1.0                                   # a hard edge makes Lanczos ring
        out = resize(rgb, (37, 23))
        assert out.shape == (23, 37, 3) and out.dtype == np.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        up = resize(rgb, (200, 150))
        assert up.shape == (150, 200, 3)
        assert float(up.min()) >= 0.0 and float(up.max()) <= 1.0
        np.testing.assert_allclose(up[:, :90].mean(), 0.0, atol=0.02)
        np.testing.assert_allclose(up[:, 110:].mean(), 1.0, atol=0.02)

    def test_constant_image_stays_constant(self):
        out = resize(np.full((50, 50, 3), 0.3, np.float32), (20, 70))
        np.testing.assert_allclose(out, 0.3, atol=1e-4)

    def test_two_dimensional_and_four_channels(self):
        assert resize(np.full((40, 40), 0.5, np.float32), (10, 20)).shape == (20, 10)
        assert resize(np.full((40, 40, 4), 0.5, np.float32), (10, 20)).shape == (20, 10, 4)

    def test_same_size_is_identity(self):
        rgb = gradient_rgb(40, 30)
        np.testing.assert_array_equal(resize(rgb, (40, 30)), rgb)

    def test_scaled_to_long_side(self):
        assert scaled_to_long_side((400, 200), 100) == (100, 50)
        assert scaled_to_long_side((200, 400), 100) == (50, 100)
        assert scaled_to_long_side((1000, 1), 10) == (10, 1)


# ---------------------------------------------------------------------------------------------
# check_output
# ---------------------------------------------------------------------------------------------
class TestCheckOutput:
    @pytest.mark.parametrize("name", ["out.png", "out.PNG", "out.jpg", "out.jpeg", "out.webp", "out.tif", "out.tiff"])
    def test_valid_paths(self, tmp_path, name):
        result = check_output(tmp_path / name)
        assert result == tmp_path / name and isinstance(result, Path)
        assert listing(tmp_path) == set()                  # the writability probe left nothing

    def test_returns_path_for_str_and_relative(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        assert check_output("out.png") == Path("out.png")
        assert listing(tmp_path) == set()

    @pytest.mark.parametrize("name", ["out.gif", "out.bmp", "out", "out.png.bak"])
    def test_unknown_extension(self, tmp_path, name):
        with pytest.raises(UsageError) as excinfo:
            check_output(tmp_path / name)
        assert_one_line_error(excinfo, name)

    @pytest.mark.parametrize("name", ["out.jpg", "out.jpeg", "out.webp"])
    def test_16bit_needs_png_or_tiff(self, tmp_path, name):
        with pytest.raises(UsageError) as excinfo:
            check_output(tmp_path / name, bit_depth=16)
        assert_one_line_error(excinfo, name, "16-bit")
        assert check_output(tmp_path / "out.png", bit_depth=16) == tmp_path / "out.png"
        assert check_output(tmp_path / "out.tif", bit_depth=16) == tmp_path / "out.tif"

    @pytest.mark.parametrize("depth", [0, 1, 12, 32])
    def test_bad_bit_depth(self, tmp_path, depth):
        with pytest.raises(UsageError):
            check_output(tmp_path / "out.png", bit_depth=depth)

    def test_output_is_an_input(self, tmp_path, monkeypatch):
        source = tmp_path / "photo.png"
        Image.new("RGB", (40, 40)).save(source)
        for force in (False, True):
            with pytest.raises(UsageError) as excinfo:
                check_output(source, force=force, inputs=(str(tmp_path / "other.png"), source))
            assert_one_line_error(excinfo, "photo.png", "input")
        monkeypatch.chdir(tmp_path)
        with pytest.raises(UsageError):                     # other spelling of the same file
            check_output("./photo.png", force=True, inputs=(str(source.resolve()),))
        assert source.exists()

    def test_existing_file_needs_force(self, tmp_path):
        out = tmp_path / "out.png"
        out.write_bytes(b"old")
        with pytest.raises(ImageError) as excinfo:
            check_output(out)
        assert_one_line_error(excinfo, "out.png", "--force")
        assert check_output(out, force=True) == out
        assert out.read_bytes() == b"old"                   # checking never touches the file

    def test_output_is_a_directory(self, tmp_path):
        (tmp_path / "out.png").mkdir()
        with pytest.raises(ImageError) as excinfo:
            check_output(tmp_path / "out.png", force=True)
        assert_one_line_error(excinfo, "out.png", "directory")

    def test_missing_folder(self, tmp_path):
        with pytest.raises(ImageError) as excinfo:
            check_output(tmp_path / "no" / "such" / "out.png")
        assert_one_line_error(excinfo, "such", "does not exist")

    def test_parent_is_a_file(self, tmp_path):
        (tmp_path / "file.txt").write_text("x")
        with pytest.raises(ImageError) as excinfo:
            check_output(tmp_path / "file.txt" / "out.png")
        assert_one_line_error(excinfo, "file.txt", "not a directory")

    @pytest.mark.parametrize("path", ["/proc/out.png", "/proc/impasto-test/out.png"])
    def test_unwritable_folder_under_proc(self, path):
        if not Path("/proc").is_dir():
            pytest.skip("no /proc")
        with pytest.raises(ImageError) as excinfo:
            check_output(path)
        assert_one_line_error(excinfo, "/proc")

    def test_unwritable_folder(self, tmp_path, monkeypatch):
        folder = tmp_path / "ro"
        folder.mkdir()
        # a read-only folder stops no one running as root (as CI does): deny creating files in it
        real_temporary = tempfile.NamedTemporaryFile

        def denied(*args, **kwargs):
            if Path(kwargs.get("dir") or ".") == folder:
                raise PermissionError(13, "Permission denied", str(folder))
            return real_temporary(*args, **kwargs)

        monkeypatch.setattr(images.tempfile, "NamedTemporaryFile", denied)
        with pytest.raises(ImageError) as excinfo:
            check_output(folder / "out.png")
        assert_one_line_error(excinfo, "ro", "not writable")
        with pytest.raises(ImageError) as excinfo:
            save_image(gradient_rgb(), folder / "out.png")
        assert_one_line_error(excinfo, "out.png", "cannot be written", "Permission denied")
        assert list(folder.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# save_image
# ---------------------------------------------------------------------------------------------
RECIPE = {"content": "photo.png", "style": ["starry night.jpg"], "steps": 300, "weights": {"style": 1e6},
          "note": "café – ünïcödé"}


class TestSaveImage:
    @pytest.mark.parametrize("suffix, pil_format, tol", [
        (".png", "PNG", 0.5 / 255 + 1e-6), (".tif", "TIFF", 0.5 / 255 + 1e-6), (".tiff", "TIFF", 0.5 / 255 + 1e-6),
        (".jpg", "JPEG", 6 / 255), (".jpeg", "JPEG", 6 / 255), (".webp", "WEBP", 12 / 255)])
    def test_8bit_round_trip(self, tmp_path, suffix, pil_format, tol):
        rgb = gradient_rgb(64, 48)
        out = tmp_path / f"out{suffix}"
        assert save_image(rgb, out) == out
        with Image.open(out) as check:
            assert check.format == pil_format
            assert check.mode == "RGB"
            assert check.size == (64, 48)
            back = np.asarray(check.convert("RGB"), dtype=np.float32) / 255.0
        assert float(np.abs(back - rgb).mean()) < tol
        if pil_format in ("PNG", "TIFF"):
            assert float(np.abs(back - rgb).max()) <= tol
        loaded = load_image(out)
        assert_rgb_image(loaded, 64, 48)
        assert listing(tmp_path) == {out.name}             # no sidecar without metadata, no temp files

    def test_values_are_clipped(self, tmp_path):
        rgb = np.full((40, 40, 3), 0.5, np.float32)
        rgb[0, 0] = [-0.5, 1.5, 0.5]
        out = tmp_path / "out.png"
        save_image(rgb, out)
        with Image.open(out) as check:
            assert check.getpixel((0, 0)) == (0, 255, 128)

    def test_16bit_png_round_trip(self, tmp_path):
        rgb = gradient_rgb(64, 48)
        rgb[0, 0] = [1000 / 65535, 2 / 65535, 65534 / 65535]
        out = tmp_path / "out16.png"
        save_image(rgb, out, bit_depth=16)
        back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert back is not None and back.dtype == np.uint16 and back.shape == (48, 64, 3)
        back = back[..., ::-1].astype(np.float64) / 65535.0
        np.testing.assert_allclose(back, rgb, atol=2 / 65535)
        assert tuple(back[0, 0] * 65535) == pytest.approx((1000, 2, 65534), abs=0.01)
        loaded = load_image(out)
        np.testing.assert_allclose(loaded.rgb, rgb, atol=2 / 65535)

    def test_16bit_tiff_round_trip(self, tmp_path):
        rgb = gradient_rgb(64, 48)
        rgb[0, 0] = [1000 / 65535, 2 / 65535, 65534 / 65535]
        out = tmp_path / "out16.tif"
        save_image(rgb, out, bit_depth=16)
        back = tifffile.imread(out)
        assert back.dtype == np.uint16 and back.shape == (48, 64, 3)
        np.testing.assert_allclose(back / 65535.0, rgb, atol=2 / 65535)
        loaded = load_image(out)
        np.testing.assert_allclose(loaded.rgb, rgb, atol=2 / 65535)

    @pytest.mark.parametrize("name, depth", [("out.png", 8), ("out16.png", 16), ("out.tif", 8), ("out16.tif", 16)])
    def test_metadata_embedded_and_sidecar(self, tmp_path, name, depth):
        out = tmp_path / name
        save_image(gradient_rgb(), out, bit_depth=depth, metadata=RECIPE)
        assert read_metadata(out) == RECIPE
        side = sidecar_path(out)
        assert side == tmp_path / f"{name}.json"
        assert json.loads(side.read_text()) == RECIPE
        assert listing(tmp_path) == {name, f"{name}.json"}
        # the file is still a valid image of the right depth
        back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert back.dtype == (np.uint16 if depth == 16 else np.uint8)
        assert_rgb_image(load_image(out), 64, 48)

    @pytest.mark.parametrize("name", ["out.jpg", "out.webp"])
    def test_metadata_sidecar_for_formats_without_embedding(self, tmp_path, name):
        out = tmp_path / name
        save_image(gradient_rgb(), out, metadata=RECIPE)
        assert json.loads(sidecar_path(out).read_text()) == RECIPE
        assert read_metadata(out) is None

    def test_no_sidecar_when_disabled(self, tmp_path):
        out = tmp_path / "out.png"
        save_image(gradient_rgb(), out, metadata=RECIPE, sidecar=False)
        assert read_metadata(out) == RECIPE
        assert listing(tmp_path) == {"out.png"}

    def test_read_metadata_of_foreign_images(self, tmp_path):
        Image.new("RGB", (40, 40)).save(tmp_path / "plain.png")
        Image.new("RGB", (40, 40)).save(tmp_path / "plain.tif")
        assert read_metadata(tmp_path / "plain.png") is None
        assert read_metadata(tmp_path / "plain.tif") is None

    @pytest.mark.parametrize("name, depth", [("out.png", 8), ("out16.png", 16), ("out.tif", 8),
                                             ("out16.tif", 16), ("out.webp", 8)])
    def test_alpha_kept_as_rgba(self, tmp_path, name, depth):
        rgb = gradient_rgb(64, 48)
        alpha = np.ones((48, 64), np.float32)
        alpha[:, :20] = 0.0
        alpha[:, 20:40] = 0.5
        out = tmp_path / name
        save_image(rgb, out, alpha=alpha, bit_depth=depth)
        if name.endswith(".tif") and depth == 16:
            raw = tifffile.imread(out)
        else:
            raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert raw.shape == (48, 64, 4)
        assert raw.dtype == (np.uint16 if depth == 16 else np.uint8)
        scale = 65535.0 if depth == 16 else 255.0
        channel = 3
        np.testing.assert_allclose(raw[..., channel][:, :20], 0)
        np.testing.assert_allclose(raw[..., channel][:, 20:40] / scale, 0.5, atol=1 / scale)
        np.testing.assert_allclose(raw[..., channel][:, 40:] / scale, 1.0)
        loaded = load_image(out)
        assert loaded.alpha is not None
        np.testing.assert_allclose(loaded.alpha, alpha, atol=1 / 255 + 1e-6)
        opaque = alpha == 1.0
        np.testing.assert_allclose(loaded.rgb[opaque], rgb[opaque], atol=12 / 255 if name.endswith("webp") else 1 / 255)

    def test_jpeg_drops_alpha(self, tmp_path):
        alpha = np.zeros((48, 64), np.float32)
        out = tmp_path / "out.jpg"
        save_image(gradient_rgb(), out, alpha=alpha)
        with Image.open(out) as check:
            assert check.mode == "RGB"

    def test_overwrite_replaces_atomically(self, tmp_path):
        out = tmp_path / "out.png"
        save_image(np.zeros((40, 40, 3), np.float32), out)
        save_image(np.ones((40, 40, 3), np.float32), out)
        with Image.open(out) as check:
            assert check.getpixel((5, 5)) == (255, 255, 255)
        assert listing(tmp_path) == {"out.png"}
        assert (out.stat().st_mode & 0o777) == 0o644

    def test_failing_encode_leaves_nothing(self, tmp_path, monkeypatch):
        def broken(*args, **kwargs):
            raise RuntimeError("encoder exploded")

        monkeypatch.setattr(images, "encode", broken)
        with pytest.raises(RuntimeError):
            save_image(gradient_rgb(), tmp_path / "out.png", metadata=RECIPE)
        assert listing(tmp_path) == set()

    def test_failing_encode_keeps_existing_file(self, tmp_path, monkeypatch):
        out = tmp_path / "out.png"
        out.write_bytes(b"previous")

        def broken(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(images, "encode", broken)
        with pytest.raises(ImageError) as excinfo:
            save_image(gradient_rgb(), out)
        assert_one_line_error(excinfo, "out.png")
        assert out.read_bytes() == b"previous"
        assert listing(tmp_path) == {"out.png"}

    def test_failing_rename_removes_temp_file(self, tmp_path, monkeypatch):
        def broken_replace(src, dst):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(images.os, "replace", broken_replace)
        with pytest.raises(ImageError) as excinfo:
            save_image(gradient_rgb(), tmp_path / "out.png")
        assert_one_line_error(excinfo, "out.png", "cannot be written")
        assert listing(tmp_path) == set()

    def test_failing_write_removes_temp_file(self, tmp_path, monkeypatch):
        def broken_fsync(fd):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(images.os, "fsync", broken_fsync)
        with pytest.raises(ImageError) as excinfo:
            save_image(gradient_rgb(), tmp_path / "out.png")
        assert_one_line_error(excinfo, "out.png", "No space left")
        assert listing(tmp_path) == set()

    def test_unknown_extension(self, tmp_path):
        with pytest.raises(UsageError):
            save_image(gradient_rgb(), tmp_path / "out.gif")
        assert listing(tmp_path) == set()

    def test_unwritable_destination_under_proc(self):
        if not Path("/proc").is_dir():
            pytest.skip("no /proc")
        with pytest.raises(ImageError) as excinfo:
            save_image(gradient_rgb(), "/proc/impasto-test-out.png")
        assert_one_line_error(excinfo, "impasto-test-out.png")

    @pytest.mark.parametrize("name", ["out.jpg", "out.webp"])
    def test_16bit_to_8bit_only_format_is_refused(self, tmp_path, name):
        out = tmp_path / name
        try:
            save_image(gradient_rgb(), out, bit_depth=16)
        except UsageError:
            assert not out.exists()
            return
        with Image.open(out) as check:                      # if written, it must at least be that format
            assert check.format == {"out.jpg": "JPEG", "out.webp": "WEBP"}[name]
