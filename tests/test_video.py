"""Video stylization end to end on a small synthetic clip: temporal consistency, audio, resume."""

import dataclasses
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from impasto import flow
from impasto.cancel import CancelToken
from impasto.errors import ImageError, UsageError
from impasto.recipe import Recipe
from impasto.video import (
    FrameCache,
    FrameReporter,
    VideoStylizer,
    _fps_fraction,
    ffmpeg_exe,
    frame_files,
    framecache,
    later_frame_recipe,
    probe,
    probe_streams,
    read_frames,
    stylize_video,
)

FRAMES, SIZE, FPS = 16, 64, 12


def synthetic_clip(count: int = FRAMES, size: int = SIZE) -> list[np.ndarray]:
    """A textured scene panning by (2, 1) px per frame with a square crossing it by (−3, 2) px."""
    rng = np.random.default_rng(0)
    side = size + 4 * count + 40
    coarse = cv2.resize(rng.random((side // 8, side // 8, 3)).astype(np.float32), (side, side),
                        interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.random((side, side, 3)).astype(np.float32), (0, 0), 1.2)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    rings = 0.5 + 0.5 * np.sin(np.hypot(x - side / 2, y - side / 2) / 5.0)
    scene = np.clip(0.55 * coarse + 0.25 * fine + 0.2 * rings[..., None], 0, 1)
    box = size // 4
    yy, xx = np.mgrid[0:box, 0:box]
    square = np.stack([(xx // 4 + yy // 4) % 2 * 0.8 + 0.1, np.full((box, box), 0.2), 0.9 - 0.6 * yy / box], 2)
    frames = []
    for t in range(count):
        frame = scene[20 + t:20 + t + size, 20 + 2 * t:20 + 2 * t + size].copy()
        left, top = size // 2 + size // 6 - box // 2 - 3 * t, size // 3 - box // 2 + 2 * t
        x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + box, size), min(top + box, size)
        if x1 > x0 and y1 > y0:
            frame[y0:y1, x0:x1] = square[y0 - top:y1 - top, x0 - left:x1 - left]
        frames.append(frame.astype(np.float32))
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: int = FPS, audio: bool = True) -> Path:
    """An H.264 .mp4 of ``frames`` with a 440 Hz tone (made by the bundled ffmpeg)."""
    height, width = frames[0].shape[:2]
    args = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{width}x{height}", "-r", str(fps), "-i", "-"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=22050:duration={len(frames) / fps + 0.5}",
                 "-c:a", "aac", "-shortest"]
    args += ["-c:v", "libx264", "-crf", "8", "-pix_fmt", "yuv420p", str(path)]
    data = b"".join((np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8).tobytes() for f in frames)
    subprocess.run(args, input=data, check=True)
    return path


def write_frames(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):  # names that sort wrongly as plain text: 1, 10, 11, 2, …
        Image.fromarray((frame * 255 + 0.5).astype(np.uint8)).save(folder / f"shot{i + 1}.png")
    return folder


def recipe(**changes) -> Recipe:
    return Recipe.from_preset("fast", max_size=SIZE, device="cpu", seed=0, **changes)


@pytest.fixture(scope="module")
def clip():
    return synthetic_clip()


@pytest.fixture(scope="module")
def source_video(tmp_path_factory, clip):
    return write_video(tmp_path_factory.mktemp("src") / "clip.mp4", clip)


@pytest.fixture(scope="module")
def style():
    from impasto.texture import brush_strokes

    return brush_strokes((128, 128), seed=0)


@pytest.fixture(scope="module")
def job():
    return VideoStylizer(recipe())  # one network for every test here


@pytest.fixture(scope="module")
def temporal_run(tmp_path_factory, source_video, style, job):
    out = tmp_path_factory.mktemp("temporal") / "painted.mp4"
    progress = []
    result = stylize_video(source_video, out, style, recipe(), stylizer=job, on_frame=progress.append,
                           cache_dir=out.parent / "cache")
    return out, result, progress


@pytest.fixture(scope="module")
def independent_run(tmp_path_factory, clip, style, job):
    frames = write_frames(tmp_path_factory.mktemp("frames") / "in", clip)
    out = frames.parent / "out"
    result = stylize_video(frames, out, style, recipe(), temporal=False, stylizer=job, fps=FPS)
    return out, result


def _decoded(path: Path) -> list[np.ndarray]:
    return list(read_frames(probe(path)))


def test_temporal_video_flickers_less_than_independent_frames(temporal_run, independent_run, clip):
    out, result, _ = temporal_run
    folder, independent = independent_run
    assert result.frames == independent.frames == FRAMES and result.computed == FRAMES
    assert len(result.warping_errors) == FRAMES - 1
    assert result.flicker < independent.flicker / 2, (result.flicker, independent.flicker)
    # the same measure, recomputed from the files with impasto.flow alone
    temporal_frames = [FrameCache(result.cache_dir).load(i) for i in range(1, FRAMES + 1)]
    independent_frames = [np.asarray(Image.open(p), np.float32) / 255 for p in frame_files(folder)]
    steady, flickery = flow.flicker(temporal_frames, clip), flow.flicker(independent_frames, clip)
    assert steady < flickery / 2, (steady, flickery)
    # still painted, not smeared: about as far from the photo, and as detailed, as independent frames
    def detail(image):
        return float(np.abs(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())
    last_change = np.abs(temporal_frames[-1] - clip[-1]).mean()
    assert last_change > 0.5 * np.abs(independent_frames[-1] - clip[-1]).mean()
    assert detail(temporal_frames[-1]) > 0.7 * detail(independent_frames[-1])


def test_output_video_keeps_frame_rate_size_and_audio(temporal_run):
    out, result, _ = temporal_run
    streams = probe_streams(out)
    assert streams["video"] and streams["audio"] and result.audio
    assert streams["fps"] == pytest.approx(FPS) and result.fps == FPS
    decoded = _decoded(out)
    assert len(decoded) == FRAMES and decoded[0].shape == (SIZE, SIZE, 3)
    # the encoded video shows the cached frames (up to H.264's loss)
    cached = FrameCache(result.cache_dir).load(FRAMES)
    assert np.abs(decoded[-1] - cached).mean() < 0.06
    assert result.cache_dir.is_dir()  # an explicit cache folder is kept


def test_progress_per_frame_with_eta(temporal_run):
    _, result, progress = temporal_run
    assert [p.index for p in progress] == list(range(1, FRAMES + 1))
    assert all(p.total == FRAMES and not p.cached for p in progress)
    assert progress[0].warping_error is None and all(p.warping_error is not None for p in progress[1:])
    assert all(p.eta is not None and p.eta >= 0 for p in progress) and progress[-1].eta == 0
    assert progress[1].losses["temporal"] >= 0 and "temporal" not in progress[0].losses
    assert progress[0].steps == recipe().steps and progress[1].steps == later_frame_recipe(recipe()).steps
    assert result.seconds_per_frame > 0


def test_folder_in_folder_out(independent_run):
    folder, result = independent_run
    assert result.output == folder and result.fps == FPS and not result.audio
    names = sorted(p.name for p in folder.glob("frame_*.png"))
    assert names == [f"frame_{i:06d}.png" for i in range(1, FRAMES + 1)]
    assert (folder / "impasto-video.json").is_file()


def test_resume_after_interruption(tmp_path, source_video, style, job, temporal_run):
    out = tmp_path / "resumed.mp4"
    cache = tmp_path / "cache"

    class Stop(Exception):
        pass

    def interrupt(p):
        if p.index == 3:
            raise Stop

    with pytest.raises(Stop):
        stylize_video(source_video, out, style, recipe(), stylizer=job, max_frames=6, cache_dir=cache,
                      on_frame=interrupt)
    assert not out.exists() and FrameCache(cache).completed() == 3
    seen, messages = [], []
    result = stylize_video(source_video, out, style, recipe(), stylizer=job, max_frames=6, cache_dir=cache,
                           on_frame=seen.append, on_message=messages.append)
    assert [p.cached for p in seen] == [True] * 3 + [False] * 3
    assert result.reused == 3 and result.computed == 3 and result.frames == 6 and out.is_file()
    assert any("resuming" in m for m in messages)
    assert len(_decoded(out)) == 6 and result.audio
    # the resumed frames are those of an uninterrupted run with the same settings
    uninterrupted = FrameCache(temporal_run[1].cache_dir)
    for i in range(1, 7):
        assert np.abs(FrameCache(cache).load(i) - uninterrupted.load(i)).max() <= 2 / 255


def test_cancel_keeps_finished_frames_and_other_settings_start_afresh(tmp_path, source_video, style, job):
    out = tmp_path / "out.mp4"

    def cancel_after_two(p):
        if p.index == 2:
            job.cancel()

    result = stylize_video(source_video, out, style, recipe(), stylizer=job, on_frame=cancel_after_two)
    assert result.cancelled and result.output is None and result.frames == 2 and not out.exists()
    cache = FrameCache(f"{out}.frames")
    assert cache.completed() == 2
    manifest = json.loads(cache.manifest_path.read_text())
    assert manifest["frames_done"] == 2 and manifest["settings"]["temporal"] is True

    messages = []
    result = stylize_video(source_video, out, style, recipe(temporal_weight=50.0), stylizer=job, max_frames=1,
                           on_message=messages.append)
    assert result.computed == 1 and result.reused == 0 and out.is_file()
    assert any("other settings" in m for m in messages)
    assert result.partial and cache.completed() == 1  # a preview keeps its frames for the full run


def test_errors(tmp_path, source_video, style):
    with pytest.raises(ImageError, match="does not exist"):
        stylize_video(tmp_path / "missing.mp4", tmp_path / "o.mp4", style, recipe())
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(ImageError, match="cannot be read"):
        stylize_video(tmp_path / "bad.mp4", tmp_path / "o.mp4", style, recipe())
    with pytest.raises(UsageError, match="unknown extension"):
        stylize_video(source_video, tmp_path / "o.xyz", style, recipe())
    (tmp_path / "exists.mp4").write_bytes(b"")
    with pytest.raises(UsageError, match="already exists"):
        stylize_video(source_video, tmp_path / "exists.mp4", style, recipe())
    with pytest.raises(UsageError, match="is the input"):
        stylize_video(source_video, source_video, style, recipe(), overwrite=True)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(UsageError, match="not empty"):
        stylize_video(source_video, foreign, style, recipe())
    with pytest.raises(UsageError, match="max_frames") as refused:
        stylize_video(source_video, tmp_path / "o.mp4", style, recipe(), max_frames=0)
    assert refused.value.field == "max_frames"  # so the command line can name --max-frames
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no frames"):
        stylize_video(tmp_path / "empty", tmp_path / "o.mp4", style, recipe())


def test_helpers(tmp_path):
    for name in ("f10.png", "f2.png", "f1.png", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in frame_files(tmp_path)] == ["f1.png", "f2.png", "f10.png"]
    assert _fps_fraction(29.97) == Fraction(30000, 1001) and _fps_fraction(25.0) == 25
    assert _fps_fraction(23.98) == Fraction(24000, 1001) and _fps_fraction(12.5) == Fraction(25, 2)
    later = later_frame_recipe(Recipe.from_preset("balanced"))
    assert later.min_size is None and later.steps == 12
    reporter = FrameReporter(quiet=True)
    reporter.close()


# ---------------------------------------------------------------------------------------------
# Per-run state, steps from the recipe, the frame cache's key, --max-frames previews
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_video(tmp_path_factory, clip):
    return write_video(tmp_path_factory.mktemp("short") / "short.mp4", clip[:3], audio=False)


def quick(**changes) -> Recipe:
    """One step per frame: these tests are about the bookkeeping, not the painting."""
    return Recipe.from_preset("fast", **{"max_size": SIZE, "device": "cpu", "seed": 0, "steps": 1, "later_steps": 1,
                                         **changes})


def test_later_frames_take_their_steps_from_the_recipe():
    assert later_frame_recipe(Recipe.from_preset("quality")).steps == 40
    assert later_frame_recipe(Recipe.from_preset("quality", steps=5)).steps == 4  # 40 × 5/56, not 40
    assert later_frame_recipe(Recipe.from_preset("fast", later_steps=3)).steps == 3


def test_runs_leave_the_stylizers_and_their_recipes_alone(tmp_path, short_video, style, job):
    default, engine_default = job.recipe, job.stylizer.recipe
    asked = quick(seed=None, style_weight=2.0)
    result = stylize_video(short_video, tmp_path / "out", style, asked, stylizer=job, max_frames=1)
    assert job.recipe is default and job.stylizer.recipe is engine_default
    assert asked.seed is None and result.recipe.seed is not None and result.recipe.style_weight == 2.0
    with pytest.raises(AttributeError):
        job.recipe = asked  # read-only: the default of runs given no recipe


def test_cancel_before_the_run_and_a_token_per_video(tmp_path, short_video, style, job):
    job.cancel()  # before the run: that run stops before its first frame
    result = stylize_video(short_video, tmp_path / "a.mp4", style, quick(), stylizer=job)
    assert result.cancelled and result.frames == 0 and result.computed == 0
    assert not job.cancelled  # the next video gets a fresh token

    token = CancelToken()
    result = stylize_video(short_video, tmp_path / "b.mp4", style, quick(), stylizer=job, cancel=token,
                           on_frame=lambda p: token.cancel())
    assert result.cancelled and result.frames == 1 and not (tmp_path / "b.mp4").exists()


def test_the_cache_key_leaves_out_the_fields_marked_pixel_neutral(monkeypatch):
    base = recipe()
    key = framecache.recipe_key(base)
    assert "seed" not in key and "device" not in key and key["style_weight"] == base.style_weight
    marked = next(f for f in dataclasses.fields(Recipe) if f.name == "style_weight")
    monkeypatch.setattr(marked, "metadata", {"pixel_neutral": True})
    assert "style_weight" not in framecache.recipe_key(base)  # the mark, not a list kept by hand


def test_a_run_with_another_seed_starts_afresh(tmp_path, short_video, style, job):
    out = tmp_path / "frames"
    stylize_video(short_video, out, style, quick(seed=1), stylizer=job, max_frames=1)
    messages = []
    result = stylize_video(short_video, out, style, quick(seed=2), stylizer=job, max_frames=1,
                           on_message=messages.append)
    assert result.reused == 0 and result.recipe.seed == 2
    assert any("seed 1, not 2" in m for m in messages), messages


def test_max_frames_writes_a_preview_that_the_full_run_continues(tmp_path, short_video, style, job):
    out = tmp_path / "out.mp4"
    messages = []
    preview = stylize_video(short_video, out, style, quick(seed=None), stylizer=job, max_frames=2,
                            on_message=messages.append)
    assert preview.partial and preview.frames == 2 and len(_decoded(out)) == 2
    cache = FrameCache(f"{out}.frames")
    assert cache.completed() == 2 and any("without --max-frames" in m for m in messages)

    full = stylize_video(short_video, out, style, quick(seed=None), stylizer=job)  # replaces its preview
    assert not full.partial and full.reused == 2 and full.computed == 1 and len(_decoded(out)) == 3
    assert full.recipe.seed == preview.recipe.seed  # the seed the preview drew
    assert not cache.folder.exists()  # the whole video is written: the default cache goes
    with pytest.raises(UsageError, match="already exists"):  # the whole video is no preview
        stylize_video(short_video, out, style, quick(seed=None), stylizer=job, max_frames=1)


def test_a_preview_is_only_replaced_by_its_continuation(tmp_path, short_video, style, job):
    out = tmp_path / "out.mp4"
    stylize_video(short_video, out, style, quick(), stylizer=job, max_frames=1)
    with pytest.raises(UsageError, match="other settings; overwrite it with --force"):
        stylize_video(short_video, out, style, quick(style_weight=3.0), stylizer=job)
    assert FrameCache(f"{out}.frames").completed() == 1  # refused before anything was removed
    out.write_bytes(out.read_bytes() + b"edited")
    with pytest.raises(UsageError, match="already exists"):
        stylize_video(short_video, out, style, quick(), stylizer=job)
