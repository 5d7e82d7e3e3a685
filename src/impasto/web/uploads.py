"""Uploaded images: checked by decoding, kept in memory under unguessable ids.

An upload is accepted only when Pillow decodes it completely: the file name and the type the
client claims are never trusted. Its encoded bytes are kept (smaller than decoded pixels) and
decoded again when a job starts. The store is bounded in count and bytes; a job holds its
:class:`Upload` objects directly, so evicting one from the store never breaks a queued job.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError
from ..images import MIN_SIDE, LoadedImage, load_image

#: Roles an upload can play; masks are greyscale images, one per style.
KINDS = ("content", "style", "mask")
THUMB_SIDE = 320


class UploadError(Exception):
    """A rejected upload: ``status`` is the HTTP status the API answers with (400/413/415/422)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    """One accepted image file."""

    id: str
    kind: str
    filename: str
    data: bytes
    width: int
    height: int
    format: str
    thumbnail: bytes
    created: float = field(default_factory=time.time)

    def describe(self) -> dict:
        """What the API tells the page about this upload."""
        return {"id": self.id, "kind": self.kind, "filename": self.filename, "width": self.width,
                "height": self.height, "format": self.format, "bytes": len(self.data),
                "thumbnail": f"/api/uploads/{self.id}/thumb.jpg"}

    def load(self, what: str, max_pixels: int, long_side: int | None = None) -> LoadedImage:
        """Decode again for the engine (EXIF orientation, ICC profile and alpha handled).

        With ``long_side``, an ordinary 8-bit image larger than that is shrunk first (Lanczos),
        so a 40-megapixel photo for a 512 px picture never becomes a 480 MB float array.
        """
        image = decode(self.data, what, max_pixels)
        if long_side is not None and max(image.size) > long_side and image.mode in _SHRINKABLE:
            if _orientation(image) != 1:
                try:
                    image = ImageOps.exif_transpose(image)
                except Exception:  # a broken EXIF block: keep the pixels as stored
                    pass
            image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
        try:
            return load_image(image, what=what, max_pixels=max_pixels, min_side=1 if self.kind == "mask" else MIN_SIDE)
        except ImageError as exc:
            raise UploadError(str(exc), 422) from None


def clean_filename(name: str | None) -> str:
    """A short, printable version of a client-supplied file name (display only, never a path)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable()).strip()
    if len(base) > 60:
        base = base[:40] + "…" + base[-15:]
    return base or "upload"


def decode(data: bytes, label: str, max_pixels: int) -> Image.Image:
    """Decode ``data`` fully or raise :class:`UploadError` with a one-line message.

    The pixel count is checked from the header before any pixel is decoded, so a small file
    that would expand to a huge image (a "decompression bomb") costs nothing.
    """
    if not data:
        raise UploadError(f"{label}: the file is empty", 400)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise UploadError(f"{label}: {width}x{height} has too many pixels; the limit is "
                                  f"{max_pixels / 1e6:g} megapixels", 413)
            image.load()
    except UploadError:
        raise
    except Image.DecompressionBombError:
        raise UploadError(f"{label}: has too many pixels; the limit is {max_pixels / 1e6:g} megapixels", 413) from None
    except UnidentifiedImageError:
        raise UploadError(f"{label}: not an image (or a format that cannot be read)", 415) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        first = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise UploadError(f"{label}: truncated or corrupt image ({first})", 415) from None
    return image


def thumbnail(image: Image.Image, side: int = THUMB_SIDE) -> bytes:
    """A JPEG no larger than ``side`` on its long side, upright, transparency over white."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not make a readable image unreadable
        pass
    if image.mode in ("RGBA", "LA", "PA", "P") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    elif image.mode != "RGB":
        image = image.convert("RGB")
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


_SHRINKABLE = ("RGB", "RGBA", "L", "LA", "CMYK")


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 = upright; 5–8 turn the image a quarter)."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:
        return 1


class UploadStore:
    """Accepted uploads by id, oldest evicted first beyond ``max_count`` or ``max_bytes``."""

    def __init__(self, *, max_bytes_each: int, max_pixels: int, max_count: int = 64,
                 max_bytes: int = 512 * 1024 * 1024):
        self.max_bytes_each = max_bytes_each
        self.max_pixels = max_pixels
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Upload] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, data: bytes, kind: str, filename: str | None) -> Upload:
        """Check and keep one file; raises :class:`UploadError`."""
        if kind not in KINDS:
            raise UploadError(f"unknown upload kind {kind!r}; use {', '.join(KINDS)}", 400)
        name = clean_filename(filename)
        label = f"{name!r}"
        if len(data) > self.max_bytes_each:
            raise UploadError(f"{label}: {_megabytes(len(data))} is too large; the limit is "
                              f"{_megabytes(self.max_bytes_each)}", 413)
        image = decode(data, label, self.max_pixels)
        width, height = image.size
        if _orientation(image) in (5, 6, 7, 8):  # shown upright, as the engine will see it
            width, height = height, width
        if kind != "mask" and min(width, height) < MIN_SIDE:
            raise UploadError(f"{label}: {width}x{height} is too small; each side needs at least {MIN_SIDE} px")
        try:
            thumb = thumbnail(image)
        except (OSError, ValueError) as exc:
            raise UploadError(f"{label}: cannot be converted to RGB ({str(exc)[:80]})", 415) from None
        upload = Upload(id=secrets.token_urlsafe(16), kind=kind, filename=name, data=data, width=width,
                        height=height, format=image.format or "?", thumbnail=thumb)
        with self._lock:
            self._items[upload.id] = upload
            self._evict()
        return upload

    def get(self, upload_id: str) -> Upload | None:
        with self._lock:
            return self._items.get(upload_id)

    def _evict(self) -> None:
        total = sum(len(u.data) for u in self._items.values())
        while self._items and (len(self._items) > self.max_count or total > self.max_bytes):
            _, old = self._items.popitem(last=False)
            total -= len(old.data)


def _megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB"
