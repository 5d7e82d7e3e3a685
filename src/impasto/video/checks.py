"""Checks made before a video run does any work: its options, its styles, and where its output
and frame cache go (:func:`plan_target`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .. import flow as flows
from ..errors import ImageError, UsageError, field_error
from .framecache import FrameCache
from .io import VideoInfo, output_kind


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_options(*, max_frames: Any, fps: Any, flow_method: str, segment_frames: Any, segmented: bool) -> None:
    """Refuse option values a run cannot use, naming the option (:class:`UsageError` with ``field``)."""
    if max_frames is not None and (not _whole_number(max_frames) or max_frames < 1):
        raise field_error("max_frames", f"{max_frames!r} must be a whole number of at least 1")
    if fps is not None and (not isinstance(fps, (int, float, Fraction)) or not fps > 0 or not math.isfinite(fps)):
        raise field_error("fps", f"{fps!r} must be a positive number")
    if flow_method not in flows.FLOW_METHODS:
        raise UsageError(f"flow method: unknown {flow_method!r}; choose from {', '.join(flows.FLOW_METHODS)}")
    if segment_frames is not None:
        if not _whole_number(segment_frames) or segment_frames < 1:
            raise field_error("segment_frames", f"{segment_frames!r} must be a whole number of at least 1")
        if not segmented:
            raise field_error("segment_frames", "applies to a video painted in segments: give an executor "
                                                "(on the command line: --segments or --ray)")


@dataclass
class Target:
    """Where a video job's frames go: the output, its frame cache, and what may be replaced."""

    kind: str  # "video" (a file) or "frames" (a folder, its own cache)
    path: Path
    cache: FrameCache
    keep_cache: bool
    preview: dict[str, Any] | None  # the manifest's record of a preview the output still is


def plan_target(output: str | os.PathLike, info: VideoInfo, cache_dir: str | os.PathLike | None, overwrite: bool,
                keep_cache: bool | None) -> Target:
    """Check the output before any work and find its cache (a folder output is its own)."""
    kind = output_kind(output)
    out = Path(output)
    if _same_path(out, info.path):
        raise UsageError(f"output {str(out)!r}: is the input; choose another name")
    preview = None
    if kind == "frames":
        if cache_dir is not None and not _same_path(Path(cache_dir), out):
            raise UsageError(f"cache {str(cache_dir)!r}: a folder output keeps its own frames; "
                             "leave the cache folder out")
        cache = FrameCache(out)
        if out.is_dir() and not overwrite and cache.manifest() is None and any(out.iterdir()):
            raise UsageError(f"output {str(out)!r}: the folder is not empty and holds no impasto video; "
                             "choose an empty folder or use --force")
    else:
        cache = FrameCache(cache_dir if cache_dir is not None else f"{out}.frames")
        if out.is_dir():
            raise UsageError(f"output {str(out)!r}: is a folder; a video file name was expected")
        preview = cache.preview_record(out)
        if out.exists() and not overwrite and preview is None:
            raise UsageError(f"output {str(out)!r}: already exists (overwrite it with --force)")
        if not out.parent.is_dir():
            raise ImageError(f"output {str(out)!r}: the folder {str(out.parent)!r} does not exist")
    keep = keep_cache if keep_cache is not None else cache_dir is not None or kind == "frames"
    return Target(kind=kind, path=out, cache=cache, keep_cache=keep, preview=preview)


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
