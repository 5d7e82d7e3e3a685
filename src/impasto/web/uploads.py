"""Uploaded images: checked by decoding, kept in memory under unguessable ids.

An upload is accepted only when Pillow decodes it completely: the file name and the type the
client claims are never trusted. Its encoded bytes are kept (smaller than decoded pixels) and
decoded again when a job starts. The store is bounded in count and bytes, and the uploads of
queued and running jobs count in it: a job *pins* its uploads (:meth:`UploadStore.pin`) until it
ends, so they are never evicted from under it and never live outside the budget.

Decoding is what costs memory (a 6300x6300 PNG is 120 MB of pixels), so at most
:data:`DECODE_SLOTS` images decode at once in the whole process, JPEGs decode at about the size
that is needed (Pillow's draft mode: 1/2, 1/4 or 1/8 scale), and the memory is handed back to
the system afterwards (:func:`release_memory`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import hashlib
import io
import secrets
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError
from ..images import MIN_SIDE, LoadedImage, load_image

#: Roles an upload can play; masks are greyscale images, one per style.
KINDS = ("content", "style", "mask")
THUMB_SIDE = 320
#: Images decoded at once in this process (uploads being checked and jobs loading theirs).
DECODE_SLOTS = 2
_decoding = threading.BoundedSemaphore(DECODE_SLOTS)


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
    sha256: str = ""
    created: float = field(default_factory=time.time)

    def describe(self) -> dict:
        """What the API tells the page about this upload."""
        return {"id": self.id, "kind": self.kind, "filename": self.filename, "width": self.width,
                "height": self.height, "format": self.format, "bytes": len(self.data),
                "thumbnail": f"/api/uploads/{self.id}/thumb.jpg"}

    def load(self, what: str, max_pixels: int, long_side: int | None = None) -> LoadedImage:
        """Decode again for the engine (EXIF orientation, ICC profile and alpha handled).

        With ``long_side``, an ordinary 8-bit image larger than that is shrunk first (Lanczos),
        so a 40-megapixel photo for a 512 px picture never becomes a 480 MB float array (a JPEG
        is even decoded at a reduced scale). The image is named by its file name only: that is
        what a result's metadata records, with the sha256 of the uploaded bytes.
        """
        with _decoding:
            try:
                loaded = self._load(what, max_pixels, long_side)
            finally:
                release_memory()
        return dataclasses.replace(loaded, path=self.filename, sha256=self.sha256)

    def _load(self, what: str, max_pixels: int, long_side: int | None) -> LoadedImage:
        image = decode(self.data, what, max_pixels, draft_side=long_side)
        if long_side is not None and max(image.size) > long_side and image.mode in ("P", "PA", "1"):
            image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
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


def decode(data: bytes, label: str, max_pixels: int, draft_side: int | None = None) -> Image.Image:
    """Decode ``data`` fully or raise :class:`UploadError` with a one-line message.

    The pixel count is checked from the header before any pixel is decoded, so a small file
    that would expand to a huge image (a "decompression bomb") costs nothing. With
    ``draft_side``, a JPEG is decoded at the smallest of 1/1, 1/2, 1/4 or 1/8 scale whose sides
    are still at least ``draft_side`` (all of its data is still read, so corruption still shows).
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
            if draft_side is not None and image.format == "JPEG":
                image.draft(None, (draft_side, draft_side))
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
    """A JPEG no larger than ``side`` on its long side, upright, transparency over white.

    ``image`` is shrunk in place (it is the caller's throwaway decode): turning and converting
    happen on the small picture, so no full-size copy is ever made of an ordinary image.
    """
    if image.mode not in _SHRINKABLE or "transparency" in image.info:  # palette, 16-bit, …: convert first
        image = image.convert("RGBA" if image.mode in ("P", "PA") or "transparency" in image.info else "RGB")
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not make a readable image unreadable
        pass
    if image.mode in ("RGBA", "LA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    elif image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def release_memory() -> None:
    """Hand freed memory back to the system.

    Pillow frees a decoded image at once, but glibc keeps large freed blocks in its per-thread
    arenas; ``malloc_trim`` returns them (measured after four concurrent 6300x6300 PNG uploads:
    563 MB resident without it, 360 MB with it, 397 MB before the uploads). Elsewhere than glibc
    this does nothing.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, Windows, musl)
        return None


_malloc_trim = _find_malloc_trim()


#: Modes Pillow shrinks with Lanczos directly (palettes and 16-bit modes are converted first).
_SHRINKABLE = ("RGB", "RGBA", "L", "LA", "CMYK")


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 = upright; 5–8 turn the image a quarter)."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:
        return 1


class UploadStore:
    """Accepted uploads by id, oldest evicted first beyond ``max_count`` or ``max_bytes``.

    Uploads a job has pinned (:meth:`pin`) count in both limits but are never evicted; when only
    pinned ones are left, a new upload is refused (503) until a job ends.
    """

    def __init__(self, *, max_bytes_each: int, max_pixels: int, max_count: int = 64,
                 max_bytes: int = 512 * 1024 * 1024):
        self.max_bytes_each = max_bytes_each
        self.max_pixels = max_pixels
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Upload] = OrderedDict()
        self._pins: dict[str, int] = {}
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
        with _decoding:
            try:
                upload = self._check(data, kind, name, label)
            finally:
                release_memory()
        with self._lock:
            self._items[upload.id] = upload
            self._evict()
            if upload.id not in self._items:
                raise UploadError(f"{label}: the studio's upload memory ({_megabytes(self.max_bytes)}, "
                                  f"{self.max_count} images) is held by queued jobs; try again when one ends", 503)
        return upload

    def _check(self, data: bytes, kind: str, name: str, label: str) -> Upload:
        """Decode ``data`` (a JPEG at about the thumbnail's size) and describe it, or refuse it."""
        image = decode(data, label, self.max_pixels, draft_side=THUMB_SIDE)
        width, height = Image.open(io.BytesIO(data)).size  # the file's size, not the draft's
        if _orientation(image) in (5, 6, 7, 8):  # shown upright, as the engine will see it
            width, height = height, width
        if kind != "mask" and min(width, height) < MIN_SIDE:
            raise UploadError(f"{label}: {width}x{height} is too small; each side needs at least {MIN_SIDE} px")
        file_format = image.format or "?"
        try:
            thumb = thumbnail(image)
        except (OSError, ValueError) as exc:
            raise UploadError(f"{label}: cannot be converted to RGB ({str(exc)[:80]})", 415) from None
        return Upload(id=secrets.token_urlsafe(16), kind=kind, filename=name, data=data, width=width,
                      height=height, format=file_format, thumbnail=thumb, sha256=hashlib.sha256(data).hexdigest())

    def get(self, upload_id: str) -> Upload | None:
        with self._lock:
            return self._items.get(upload_id)

    def pin(self, uploads: Iterable[Upload]) -> None:
        """Keep ``uploads`` (a job's) until :meth:`unpin`; they still count in the budget."""
        with self._lock:
            for upload in uploads:
                self._items.setdefault(upload.id, upload)
                self._pins[upload.id] = self._pins.get(upload.id, 0) + 1

    def unpin(self, uploads: Iterable[Upload]) -> None:
        """A job has ended: its uploads may be evicted again (oldest first, when room is needed)."""
        with self._lock:
            for upload in uploads:
                count = self._pins.get(upload.id, 0) - 1
                if count > 0:
                    self._pins[upload.id] = count
                else:
                    self._pins.pop(upload.id, None)
            self._evict()

    def held_bytes(self) -> int:
        """Bytes of every upload kept, pinned ones included."""
        with self._lock:
            return sum(len(u.data) for u in self._items.values())

    def _evict(self) -> None:
        """Drop the oldest unpinned uploads until both limits hold (or only pinned ones are left)."""
        total = sum(len(u.data) for u in self._items.values())
        for upload_id in list(self._items):
            if len(self._items) <= self.max_count and total <= self.max_bytes:
                return
            if upload_id not in self._pins:
                total -= len(self._items.pop(upload_id).data)


def _megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB"
