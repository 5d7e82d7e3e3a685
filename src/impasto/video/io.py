"""Getting frames in and out: probing, decoding and encoding videos and folders of frames.

A source is a video file or a folder of images (:func:`probe`, :func:`read_frames`); finished
frames are encoded into a video file with the source's audio (:func:`encode_video`). All video
work is done by the ffmpeg binary that ships with ``imageio-ffmpeg`` (:func:`ffmpeg_exe`), so
nothing needs to be installed on the system. :mod:`impasto.video` builds the frame loop on this.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageError, UsageError
from ..images import Fitting, LoadedImage, flatten, load_image, resize

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
FRAME_NAME = "frame_{:06d}.png"
DEFAULT_FPS = Fraction(25)


# ---------------------------------------------------------------------------------------------
# ffmpeg
# ---------------------------------------------------------------------------------------------
def ffmpeg_exe() -> str:
    """The ffmpeg binary that ships with ``imageio-ffmpeg``."""
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - a declared dependency
        raise ImageError("video needs the package imageio-ffmpeg (pip install imageio-ffmpeg)") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:  # pragma: no cover - a broken install
        raise ImageError(f"video: no ffmpeg binary found ({exc})") from None


def _run_ffmpeg(args: Sequence[str], what: str) -> subprocess.CompletedProcess:
    """Run ffmpeg with ``args``; raise :class:`ImageError` with its last error line if it fails."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise ImageError(f"{what}: ffmpeg failed ({_last_line(proc.stderr)})")
    return proc


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no message"


def _fps_fraction(value: float) -> Fraction:
    """A frame rate as a fraction: NTSC rates (29.97 …) become 30000/1001 and so on."""
    if value <= 0 or not math.isfinite(value):
        return DEFAULT_FPS
    ntsc = round(value * 1.001)
    if abs(value - ntsc / 1.001) < 0.005 and abs(value - round(value)) > 0.005:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(value).limit_denominator(1000)


def probe_streams(path: str | os.PathLike) -> dict[str, Any]:
    """What ffmpeg says about a media file: ``{"video": bool, "audio": bool, "fps": float | None}``."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = proc.stderr.decode("utf-8", "replace")
    streams = [line for line in text.splitlines() if line.strip().startswith("Stream #")]
    video = [s for s in streams if " Video: " in s]
    fps = None
    if video:
        match = re.search(r"([\d.]+) fps", video[0]) or re.search(r"([\d.]+) tbr", video[0])
        fps = float(match.group(1)) if match else None
    return {"video": bool(video), "audio": any(" Audio: " in s for s in streams), "fps": fps,
            "error": None if streams else _last_line(proc.stderr)}


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder, sorted naturally (``frame2`` before ``frame10``)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS
             and not p.name.startswith(".")]
    return sorted(files, key=_natural_key)


@dataclass
class VideoInfo:
    """A video source: ``kind`` is ``"video"`` (a file) or ``"frames"`` (a folder of images)."""

    path: Path
    kind: str
    fps: Fraction
    frames: int | None
    audio: bool
    files: list[Path] = field(default_factory=list)


def probe(source: str | os.PathLike, *, fps: float | Fraction | None = None) -> VideoInfo:
    """Describe a video file or a folder of frames (``fps`` sets a folder's rate, default 25; a
    video file keeps its own).

    Raises :class:`ImageError` when the source does not exist, is not a video ffmpeg can read, or
    is a folder without images.
    """
    path = Path(source)
    if not path.exists():
        raise ImageError(f"video {str(path)!r}: does not exist")
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise ImageError(f"video {str(path)!r}: the folder holds no frames "
                             f"({', '.join(FRAME_EXTENSIONS)})")
        rate = Fraction(fps).limit_denominator(1001) if fps else DEFAULT_FPS
        return VideoInfo(path=path, kind="frames", fps=rate, frames=len(files), audio=False, files=files)
    streams = probe_streams(path)
    if not streams["video"]:
        reason = streams["error"] or "it has no video stream"
        raise ImageError(f"video {str(path)!r}: cannot be read ({reason})")
    rate = _fps_fraction(streams["fps"] or 0.0)  # a video keeps its own rate (and so its audio in step)
    frames = None
    try:
        import imageio_ffmpeg

        frames = imageio_ffmpeg.count_frames_and_secs(str(path))[0] or None
    except (OSError, RuntimeError, ValueError):
        pass
    return VideoInfo(path=path, kind="video", fps=rate, frames=frames, audio=streams["audio"])


def read_frames(info: VideoInfo) -> Generator[np.ndarray, None, None]:
    """The frames of a source, one at a time: ``(H, W, 3)`` float32 RGB in [0, 1].

    A folder's frames are read with :func:`impasto.images.load_image` (transparency is
    composited on white); a video is decoded by ffmpeg.
    """
    if info.kind == "frames":
        for path in info.files:
            yield flatten(load_image(path, what="video frame"))
        return
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(info.path), pix_fmt="rgb24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise ImageError(f"video {str(info.path)!r}: cannot be decoded ({str(exc).splitlines()[0][:120]})") from None
    width, height = meta["size"]
    with closing(reader):
        for data in reader:
            yield np.frombuffer(data, np.uint8).reshape(height, width, 3).astype(np.float32) / 255.0


class FittedFrames:
    """A source's frames fitted to the output geometry of ``fitting``: ``(H, W, 3)`` float32 in [0, 1],
    all of ``size``. Each iteration decodes the source afresh, one frame at a time.

    Raises :class:`ImageError` when the source has no frames or they come out under 32 px.
    """

    def __init__(self, info: VideoInfo, fitting: Fitting):
        self.info, self.fitting = info, fitting
        frames = read_frames(info)
        with closing(frames):
            try:
                first = self.fitting.apply(LoadedImage(rgb=next(frames))).rgb
            except StopIteration:
                raise ImageError(f"video {str(info.path)!r}: has no frames") from None
        self.size = (first.shape[1], first.shape[0])  # (width, height)
        if min(self.size) < 32:
            raise ImageError(f"video {str(info.path)!r}: frames of {self.size[0]}x{self.size[1]} are too small; "
                             "each side needs at least 32 px")

    def fit(self, frame: np.ndarray) -> np.ndarray:
        """One decoded frame ``(H, W, 3)`` as the output's geometry wants it."""
        content = self.fitting.apply(LoadedImage(rgb=frame)).rgb
        return content if content.shape[:2] == (self.size[1], self.size[0]) else resize(content, self.size)

    def __iter__(self) -> Iterator[np.ndarray]:
        frames = read_frames(self.info)
        with closing(frames):
            yield from map(self.fit, frames)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def output_kind(output: str | os.PathLike) -> str:
    """``"video"`` for a video file name (by extension), ``"frames"`` for a folder."""
    path = Path(output)
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if path.is_dir() or str(output).endswith(("/", os.sep)) or not suffix:
        return "frames"
    raise UsageError(f"output {str(output)!r}: unknown extension {suffix!r}; use a video file "
                     f"({', '.join(VIDEO_EXTENSIONS)}) or a folder for PNG frames")


def _video_codec_args(suffix: str) -> list[str]:
    if suffix == ".gif":
        return ["-vf", "split[a][b];[a]palettegen[p];[b][p]paletteuse"]
    if suffix == ".webm":
        return ["-c:v", "libvpx-vp9", "-crf", "30", "-b:v", "0", "-pix_fmt", "yuv420p"]
    extra = ["-movflags", "+faststart"] if suffix in (".mp4", ".m4v", ".mov") else []
    return ["-c:v", "libx264", "-crf", "18", "-preset", "medium", "-pix_fmt", "yuv420p", *extra]


def encode_video(frames: Sequence[str | os.PathLike], output: str | os.PathLike, fps: Fraction, *,
                 audio_from: str | os.PathLike | None = None) -> bool:
    """Encode PNG ``frames`` into ``output`` at ``fps``, with ``audio_from``'s audio if it has any.

    H.264 (yuv420p, CRF 18) for .mp4/.m4v/.mov/.mkv/.avi, VP9 for .webm, a palette GIF for .gif.
    Odd sizes are padded by repeating the last row/column (yuv420p needs even sides). Audio is
    copied as it is where the container takes it, re-encoded (AAC, Opus for .webm) otherwise, and
    cut to the video's length. The file is written next to ``output`` and renamed into place.
    Returns whether audio was written. Raises :class:`ImageError` if ffmpeg fails.
    """
    out = Path(output)
    suffix = out.suffix.lower()
    if not frames:
        raise ImageError(f"output {str(out)!r}: no frames to encode")
    first = load_image(frames[0], what="stylized frame")
    width, height = first.size
    even = (width + width % 2, height + height % 2) if suffix != ".gif" else (width, height)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if str(out.parent) else "."))
    try:
        silent = tmp_dir / f"video{suffix}"
        args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-f", "rawvideo",
                "-pix_fmt", "rgb24", "-s", f"{even[0]}x{even[1]}", "-r", str(fps), "-i", "-", "-an",
                *_video_codec_args(suffix), "-r", str(fps), str(silent)]
        with open(tmp_dir / "ffmpeg.log", "wb") as log:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
            assert proc.stdin is not None  # stdin=PIPE
            try:
                for path in frames:
                    rgb = flatten(load_image(path, what="stylized frame"))
                    if rgb.shape[:2] != (height, width):
                        rgb = resize(rgb, (width, height))
                    pixels = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
                    if even != (width, height):
                        pixels = np.pad(pixels, ((0, even[1] - height), (0, even[0] - width), (0, 0)), mode="edge")
                    proc.stdin.write(pixels.tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            code = proc.wait()
        if code != 0:
            raise ImageError(f"output {str(out)!r}: ffmpeg could not encode the video "
                             f"({_last_line((tmp_dir / 'ffmpeg.log').read_bytes())})")
        with_audio = False
        final = silent
        if audio_from is not None and suffix != ".gif" and probe_streams(audio_from)["audio"]:
            muxed = tmp_dir / f"muxed{suffix}"
            duration = f"{float(len(frames) / fps):.6f}"  # cut longer audio; -shortest can drop the last frame
            base = ["-i", str(silent), "-i", str(audio_from), "-map", "0:v:0", "-map", "1:a?", "-c:v", "copy",
                    "-t", duration]
            try:
                _run_ffmpeg([*base, "-c:a", "copy", str(muxed)], f"output {str(out)!r}")
            except ImageError:  # the container does not take the source's audio codec as it is
                codec = ["-c:a", "libopus", "-b:a", "128k"] if suffix == ".webm" else ["-c:a", "aac", "-b:a", "192k"]
                _run_ffmpeg([*base, *codec, str(muxed)], f"output {str(out)!r}: muxing the audio")
            final, with_audio = muxed, True
        try:
            os.replace(final, out)
        except OSError as exc:
            raise ImageError(f"output {str(out)!r}: cannot be written ({exc.strerror or exc})") from None
        return with_audio
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
