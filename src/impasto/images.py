"""Reading, sizing and writing images.

Images travel through impasto as ``float32`` NumPy arrays of shape ``(H, W, 3)`` with sRGB values
in [0, 1], plus an optional alpha plane ``(H, W)``. Reading handles EXIF orientation, ICC
profiles, palette/greyscale/CMYK/16-bit modes, transparency and hostile files; writing is atomic
and records the recipe.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import threading
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import ImageError, UsageError

ImageSource = str | os.PathLike | Image.Image | np.ndarray

MIN_SIDE = 32
#: File extensions read as images (what Pillow decodes here); other files in a folder are skipped.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
METADATA_KEY = "impasto:recipe"

_pillow_limit_lock = threading.Lock()
_SRGB = ImageCms.createProfile("sRGB")


@dataclass
class LoadedImage:
    """An image ready for the engine: ``rgb`` (H, W, 3) float32 in [0, 1], ``alpha`` (H, W) or None.

    ``name`` labels it in messages; ``path`` (as the user gave it) and ``sha256`` (of the file's
    bytes) identify a file input and are ``None`` for images given in memory.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    name: str = "image"
    path: str | None = None
    sha256: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]

    def identity(self) -> dict[str, str | None]:
        """What a recipe records of an input: its path as given and the sha256 of its bytes."""
        return {"path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class Fitting:
    """The output geometry an image is fitted to (the arguments of :func:`fit`)."""

    max_size: int
    size: tuple[int, int] | None = None
    square: str | None = None
    aspect: tuple[int, int] | None = None

    def apply(self, image: LoadedImage) -> LoadedImage:
        return fit(image, max_size=self.max_size, size=self.size, square=self.square, aspect=self.aspect)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (read in 1 MiB blocks), as outputs record their inputs'."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def natural_key(path: str | os.PathLike) -> list[int | str]:
    """Sort key that orders numbers by value: ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def load_image(source: ImageSource, *, what: str = "image", max_pixels: int = 100_000_000,
               min_side: int = MIN_SIDE) -> LoadedImage:
    """Read a path, PIL image or array into a :class:`LoadedImage`.

    ``what`` names the role in error messages ("content image", "style image 2", …). Arrays may be
    ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``, ``uint8``/``uint16`` or floats in [0, 1].
    Raises :class:`ImageError` with a one-line message for every unreadable input.
    """
    if isinstance(source, np.ndarray):
        loaded = _from_array(source, what)
    elif isinstance(source, Image.Image):
        loaded = _from_pil(source, what, label=what)
    elif isinstance(source, (str, os.PathLike)):
        loaded = _from_path(Path(source), what, max_pixels)
    else:
        raise UsageError(f"{what}: expected a path, PIL image or array, got {type(source).__name__}")
    width, height = loaded.size
    if width * height > max_pixels:
        raise ImageError(f"{loaded.name}: {width}x{height} has more pixels than the limit of {max_pixels:,} "
                         "(--max-pixels)")
    if min(width, height) < min_side:
        raise ImageError(f"{loaded.name}: {width}x{height} is too small; each side needs at least {min_side} px")
    return loaded


def _from_path(path: Path, what: str, max_pixels: int) -> LoadedImage:
    label = f"{what} {str(path)!r}"
    if not path.exists():
        raise ImageError(f"{label}: file does not exist")
    if path.is_dir():
        raise ImageError(f"{label}: is a directory, not an image file")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise ImageError(f"{label}: permission denied (cannot read the file)") from None
    except OSError as exc:
        raise ImageError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    return _decode(data, what, label, max_pixels, path=str(path))


def load_image_bytes(data: bytes, *, path: str, what: str = "image", max_pixels: int = 100_000_000,
                     min_side: int = MIN_SIDE) -> LoadedImage:
    """Decode the bytes of the image file at ``path`` (read elsewhere: another machine, a queue).

    The result is the same as :func:`load_image` of the file, ``path`` and ``sha256`` included.
    """
    loaded = _decode(data, what, f"{what} {path!r}", max_pixels, path=path)
    width, height = loaded.size
    if min(width, height) < min_side:
        raise ImageError(f"{loaded.name}: {width}x{height} is too small; each side needs at least {min_side} px")
    return loaded


def _decode(data: bytes, what: str, label: str, max_pixels: int, *, path: str) -> LoadedImage:
    if not data:
        raise ImageError(f"{label}: file is empty (0 bytes)")
    try:
        with _pillow_pixel_limit(max_pixels), warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(f"{label}: {width}x{height} has more pixels than the limit of {max_pixels:,} "
                                 "(--max-pixels)")
            image.load()
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{label}: has more pixels than the limit of {max_pixels:,} (--max-pixels)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise ImageError(f"{label}: truncated or corrupt image ({reason})") from None
    loaded = _from_pil(image, what, label)
    sixteen = _read_16bit_rgb(data, image)
    if sixteen is not None:
        loaded.rgb = sixteen
    loaded.path, loaded.sha256 = path, hashlib.sha256(data).hexdigest()
    return loaded


class _pillow_pixel_limit:
    """Let Pillow open images up to ``limit`` pixels (its own bomb check would stop at ~179 MP)."""

    def __init__(self, limit: int):
        self.limit = limit

    def __enter__(self):
        _pillow_limit_lock.acquire()
        self.saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max(self.limit, self.saved or 0)

    def __exit__(self, *exc):
        Image.MAX_IMAGE_PIXELS = self.saved
        _pillow_limit_lock.release()


def _from_pil(image: Image.Image, what: str, label: str) -> LoadedImage:
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not make a readable image unreadable
        pass
    if image.mode in ("RGBa", "La"):  # premultiplied: un-premultiply into the ordinary modes
        image = image.convert("RGBA" if image.mode == "RGBa" else "LA")
    alpha = _alpha_plane(image)
    rgb = _to_srgb(image, label)
    return LoadedImage(rgb=rgb, alpha=alpha, name=label)


def _alpha_plane(image: Image.Image) -> np.ndarray | None:
    if "transparency" in image.info and image.mode in ("P", "L", "RGB", "I", "I;16"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        return None if alpha.min() >= 1.0 else alpha
    return None


def _to_srgb(image: Image.Image, label: str) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2)
    if mode == "F":
        grey = np.asarray(image, dtype=np.float32)
        grey = grey / max(float(grey.max()), 1.0)
        return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2)
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            base = image if mode in ("RGB", "CMYK", "L") else image.convert("RGB")
            converted = ImageCms.profileToProfile(base, source, _SRGB, outputMode="RGB")
            image = converted if converted is not None else image.convert("RGB")
        except Exception:  # an unusable profile: fall back to treating the pixels as sRGB
            image = image.convert("RGB")
    elif mode == "P" or mode.startswith(("RGBA", "LA", "PA")):
        image = image.convert("RGBA").convert("RGB")
    else:
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32) / 255.0


def _read_16bit_rgb(data: bytes, image: Image.Image) -> np.ndarray | None:
    """Full-precision pixels of a 48/64-bit PNG or TIFF, which Pillow reduces to 8 bits."""
    if image.format not in ("PNG", "TIFF") or image.mode not in ("RGB", "RGBA") or image.info.get("icc_profile"):
        return None
    import cv2

    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != np.uint16 or decoded.ndim != 3:
        return None
    rgb = decoded[..., 2::-1].astype(np.float32) / 65535.0
    orientation = image.getexif().get(0x0112, 1) if hasattr(image, "getexif") else 1
    return np.ascontiguousarray(_orient(rgb, orientation))


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to an (H, W, C) array, as ``ImageOps.exif_transpose`` does."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}
    return ops.get(orientation, lambda a: a)(array)


def _from_array(array: np.ndarray, what: str) -> LoadedImage:
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise UsageError(f"{what}: array of shape {array.shape} is not an image (H, W[, 3|4])")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    elif np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ImageError(f"{what}: array holds NaN or infinite values")
        a = np.clip(a, 0.0, 1.0)
    else:
        raise UsageError(f"{what}: arrays of {a.dtype} are not supported")
    alpha = a[..., 3].copy() if a.shape[2] == 4 else None
    rgb = np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a[..., :3]
    if alpha is not None and alpha.min() >= 1.0:
        alpha = None
    return LoadedImage(rgb=np.ascontiguousarray(rgb, dtype=np.float32), alpha=alpha, name=what)


def flatten(image: LoadedImage, background: float = 1.0) -> np.ndarray:
    """RGB composited over a uniform ``background`` grey level (white by default)."""
    if image.alpha is None:
        return image.rgb
    a = image.alpha[..., None]
    return image.rgb * a + background * (1.0 - a)


# ---------------------------------------------------------------------------------------------
# Sizing
# ---------------------------------------------------------------------------------------------
def resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W[, C]) float array to ``size`` = (width, height) with Lanczos filtering."""
    width, height = size
    if array.shape[1] == width and array.shape[0] == height:
        return array
    channels = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[2])]
    resized = [np.asarray(Image.fromarray(np.ascontiguousarray(c, dtype=np.float32), mode="F")
                          .resize((width, height), Image.Resampling.LANCZOS)) for c in channels]
    out = resized[0] if array.ndim == 2 else np.stack(resized, axis=2)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def scaled_to_long_side(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is ``long_side``, aspect kept."""
    width, height = size
    factor = long_side / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def _center_crop(array: np.ndarray, width: int, height: int) -> np.ndarray:
    top = (array.shape[0] - height) // 2
    left = (array.shape[1] - width) // 2
    return array[top: top + height, left: left + width]


def _crop_to_aspect(array: np.ndarray, aspect_w: int, aspect_h: int) -> np.ndarray:
    height, width = array.shape[:2]
    if width * aspect_h > height * aspect_w:
        return _center_crop(array, max(1, round(height * aspect_w / aspect_h)), height)
    return _center_crop(array, width, max(1, round(width * aspect_h / aspect_w)))


def fit(image: LoadedImage, *, max_size: int, size: tuple[int, int] | None = None,
        square: str | None = None, aspect: tuple[int, int] | None = None) -> LoadedImage:
    """Crop/pad and resize an image to the output geometry.

    Order: ``aspect`` (W:H centre crop), ``square`` (``crop``: centre crop; ``pad``: mirror the
    edges out to a square), then ``size`` (W×H exactly, by covering and centre-cropping, never
    distorting) or else ``max_size`` (long side; images are only ever shrunk to it).
    """
    planes = image.rgb if image.alpha is None else np.concatenate([image.rgb, image.alpha[..., None]], axis=2)
    if aspect is not None:
        planes = _crop_to_aspect(planes, *aspect)
    if square == "crop":
        planes = _crop_to_aspect(planes, 1, 1)
    elif square == "pad":
        height, width = planes.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        planes = np.pad(planes, ((top, side - height - top), (left, side - width - left), (0, 0)), mode="symmetric")
    height, width = planes.shape[:2]
    if size is not None:
        factor = max(size[0] / width, size[1] / height)
        covered = (max(size[0], round(width * factor)), max(size[1], round(height * factor)))
        planes = _center_crop(resize(planes, covered), *size)
    elif max(width, height) > max_size:
        planes = resize(planes, scaled_to_long_side((width, height), max_size))
    planes = np.ascontiguousarray(planes, dtype=np.float32)
    alpha = planes[..., 3] if planes.shape[2] == 4 else None
    return replace(image, rgb=np.ascontiguousarray(planes[..., :3]), alpha=alpha)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def check_output(path: str | os.PathLike, *, force: bool = False, bit_depth: int = 8,
                 inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Validate an output path before any work is done; returns it as a :class:`Path`."""
    out = Path(path)
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"output {str(out)!r}: unknown extension {out.suffix or '(none)'!r}; "
                         "use .png, .jpg, .webp or .tif")
    if bit_depth not in (8, 16):
        raise UsageError(f"bit depth {bit_depth}: use 8 or 16")
    if bit_depth == 16 and fmt not in SIXTEEN_BIT_FORMATS:
        raise UsageError(f"output {str(out)!r}: 16-bit output needs .png or .tif, not {out.suffix}")
    for source in inputs:
        if _same_file(out, Path(source)):
            raise UsageError(f"output {str(out)!r} is also an input file; refusing to overwrite an input")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.exists():
        raise ImageError(f"output folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ImageError(f"output folder {str(folder)!r} is not a directory")
    if out.is_dir():
        raise ImageError(f"output {str(out)!r} is a directory")
    if out.exists() and not force:
        raise ImageError(f"output {str(out)!r} already exists; pass --force to overwrite it")
    try:
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".impasto-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise ImageError(f"output folder {str(folder)!r} is not writable ({exc.strerror or exc})") from None
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def encode(rgb: np.ndarray, fmt: str, *, alpha: np.ndarray | None = None, bit_depth: int = 8,
           metadata: dict[str, Any] | None = None) -> bytes:
    """Encode an (H, W, 3) float image in [0, 1] as ``fmt`` (PNG, JPEG, WEBP or TIFF) bytes."""
    planes = rgb if alpha is None or fmt == "JPEG" else np.concatenate([rgb, alpha[..., None]], axis=2)
    planes = np.clip(planes, 0.0, 1.0)
    text = json.dumps(metadata, sort_keys=True) if metadata is not None else None
    if bit_depth not in (8, 16):
        raise UsageError(f"bit depth {bit_depth}: use 8 or 16")
    if bit_depth == 16 and fmt not in SIXTEEN_BIT_FORMATS:
        raise UsageError(f"16-bit output needs PNG or TIFF, not {fmt}")
    if bit_depth == 16:
        return _encode_16bit(planes, fmt, text)
    pixels = (planes * 255.0 + 0.5).astype(np.uint8)
    image = Image.fromarray(pixels, mode="RGBA" if pixels.shape[2] == 4 else "RGB")
    buffer = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", "impasto")
        if text is not None:
            info.add_itxt(METADATA_KEY, text, zip=True)
        image.save(buffer, "PNG", pnginfo=info)
    elif fmt == "JPEG":
        image.save(buffer, "JPEG", quality=95, subsampling=0)
    elif fmt == "WEBP":
        image.save(buffer, "WEBP", quality=95)
    else:
        tiffinfo = {305: "impasto"}
        if text is not None:
            tiffinfo[270] = text
        image.save(buffer, "TIFF", compression="tiff_deflate", tiffinfo=tiffinfo)
    return buffer.getvalue()


def _encode_16bit(planes: np.ndarray, fmt: str, text: str | None) -> bytes:
    pixels = (planes * 65535.0 + 0.5).astype(np.uint16)
    if fmt == "TIFF":
        import tifffile

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, pixels, photometric="rgb", compression="zlib", description=text,
                         software="impasto", extrasamples=("unassalpha",) if pixels.shape[2] == 4 else None)
        return buffer.getvalue()
    import cv2

    order = [2, 1, 0, 3] if pixels.shape[2] == 4 else [2, 1, 0]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels[..., order]))
    if not ok:
        raise ImageError("could not encode a 16-bit PNG")
    data = encoded.tobytes()
    if text is not None:  # OpenCV writes no text chunks: add a compressed iTXt before IEND
        payload = METADATA_KEY.encode("latin-1") + b"\0\1\0\0\0" + zlib.compress(text.encode("utf-8"))
        data = data[:-12] + _png_chunk(b"iTXt", payload) + data[-12:]
    return data


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return len(payload).to_bytes(4, "big") + kind + payload + crc.to_bytes(4, "big")


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    target = Path(path)
    handle = tempfile.NamedTemporaryFile(dir=target.parent if str(target.parent) else ".",
                                         prefix=f".{target.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def save_image(rgb: np.ndarray, path: str | os.PathLike, *, alpha: np.ndarray | None = None,
               bit_depth: int = 8, metadata: dict[str, Any] | None = None, sidecar: bool = True) -> Path:
    """Encode by extension and write atomically; with ``metadata`` also write ``<path>.json``."""
    out = Path(path)
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"output {str(out)!r}: unknown extension {out.suffix or '(none)'!r}; "
                         "use .png, .jpg, .webp or .tif")
    try:
        data = encode(rgb, fmt, alpha=alpha, bit_depth=bit_depth, metadata=metadata)
    except OSError as exc:
        raise ImageError(f"output {str(out)!r}: cannot be written ({exc.strerror or exc})") from None
    return save_encoded(data, out, metadata=metadata if sidecar else None)


def save_encoded(data: bytes, path: str | os.PathLike, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write an encoded image (from :func:`encode`) atomically, with its ``<path>.json`` sidecar."""
    out = Path(path)
    try:
        write_atomic(out, data)
        if metadata is not None:
            write_atomic(sidecar_path(out), (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())
    except OSError as exc:
        raise ImageError(f"output {str(out)!r}: cannot be written ({exc.strerror or exc})") from None
    return out


def sidecar_path(path: str | os.PathLike) -> Path:
    """``out.png`` → ``out.png.json``."""
    return Path(f"{path}.json")


def read_metadata(path: str | os.PathLike) -> dict[str, Any] | None:
    """The recipe metadata embedded in a PNG or TIFF written by impasto, or ``None``."""
    with Image.open(path) as image:
        text = image.info.get(METADATA_KEY)
        if text is None and image.format == "PNG":
            image.load()
            text = getattr(image, "text", {}).get(METADATA_KEY)
        if text is None and image.format == "TIFF":
            text = image.tag_v2.get(270)
    return json.loads(text) if text else None
