"""``impasto rerun`` and :func:`impasto.rerun`: painting again what an output records."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import impasto
from impasto import cli
from impasto.images import read_metadata
from impasto.recipe import Recipe
from impasto.reruns import Recording, RerunWarning, rebuild_recipe

QUICK = ["--max-size", "64", "--steps", "2", "--min-size", "64", "--seed", "1", "--device", "cpu"]


def run_cli(args, capsys):
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).copy()


def write_png(array: np.ndarray, path: Path) -> Path:
    Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def painted_tree(tmp_path_factory, astronaut_small, stripes_style):
    """A folder with inputs/ (a photo, two paintings, their masks, a content mask) and out/painted.png
    painted from them by the CLI."""
    root = tmp_path_factory.mktemp("painted")
    (root / "inputs").mkdir()
    (root / "out").mkdir()
    content = write_png(astronaut_small, root / "inputs" / "photo.png")
    first = write_png(stripes_style, root / "inputs" / "stripes.png")
    second = write_png(astronaut_small[::-1, ::-1], root / "inputs" / "flipped.png")
    left = np.zeros((48, 48), np.float32)
    left[:, :24] = 1
    masks = [write_png(left, root / "inputs" / "left.png"), write_png(1 - left, root / "inputs" / "right.png")]
    content_mask = write_png(np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48), root / "inputs" / "cm.png")
    code = cli.main([str(a) for a in ["stylize", content, first, second, "-o", root / "out" / "painted.png",
                                      "--style-weights", "0.7,0.3", "--masks", *masks, "--content-mask",
                                      content_mask, *QUICK, "--quiet"]])
    assert code == 0
    return root


@pytest.fixture
def tree(painted_tree, tmp_path) -> Path:
    """A copy of the painted tree this test may change (recorded paths still point at the original)."""
    copy = tmp_path / "tree"
    shutil.copytree(painted_tree, copy)
    return copy


def test_rerun_reproduces_the_picture_exactly(painted_tree, capsys):
    painted = painted_tree / "out" / "painted.png"
    code, out, err = run_cli(["rerun", painted], capsys)
    rerun = painted_tree / "out" / "painted-rerun.png"
    assert code == 0, err
    assert err == "" and "wrote" in out and "seed 1" in out
    assert np.array_equal(pixels(rerun), pixels(painted))
    before, after = read_metadata(painted), read_metadata(rerun)
    assert after["recipe"] == before["recipe"] and after["style_blend"] == before["style_blend"]
    assert after["styles"] == before["styles"] and len(after["styles"]) == 2
    assert after["mask_inputs"] == before["mask_inputs"] and len(after["mask_inputs"]) == 2
    assert after["content_mask_input"] == before["content_mask_input"] is not None
    assert after["rerun_of"]["path"] == str(painted) and len(after["rerun_of"]["sha256"]) == 64
    # Refuses to overwrite without --force, as stylize does.
    code, _, err = run_cli(["rerun", painted, "--quiet"], capsys)
    assert code == 1 and "already exists" in one_line(err) and "--force" in err


def test_an_override_changes_the_recipe_and_is_recorded(painted_tree, tmp_path, capsys):
    painted = painted_tree / "out" / "painted.png"
    out = tmp_path / "longer.png"
    code, _, err = run_cli(["rerun", painted, "-o", out, "--steps", "3", "--quiet"], capsys)
    assert code == 0, err
    before, after = read_metadata(painted)["recipe"], read_metadata(out)["recipe"]
    assert after["steps"] == 3 and read_metadata(out)["steps"] == 3
    assert {k: v for k, v in after.items() if k != "steps"} == {k: v for k, v in before.items() if k != "steps"}
    assert not np.array_equal(pixels(out), pixels(painted))
    code, _, err = run_cli(["rerun", painted, "-o", tmp_path / "bad.png", "--steps", "0"], capsys)
    assert code == 2 and one_line(err).startswith("impasto: error: --steps:")


def test_a_moved_input_is_an_error_naming_the_flag_and_found_with_it(tree, capsys):
    painted = tree / "out" / "painted.png"
    moved = tree / "elsewhere"
    moved.mkdir()
    (tree / "inputs" / "photo.png").rename(moved / "renamed.png")
    # The recorded (absolute) paths point into the original tree: point them at this copy's inputs.
    meta = read_metadata(painted)
    meta["content"]["path"] = str(tree / "inputs" / "photo.png")
    meta["styles"] = [{**s, "path": str(tree / "inputs" / Path(s["path"]).name)} for s in meta["styles"]]
    record = tree / "out" / "moved.png.json"
    record.write_text(json.dumps(meta))
    code, _, err = run_cli(["rerun", record, "--quiet"], capsys)
    line = one_line(err)
    assert code == 1 and "content image" in line and "photo.png" in line and "--content" in line
    assert not (tree / "out" / "moved-rerun.png").exists()
    code, _, err = run_cli(["rerun", record, "--content", moved / "renamed.png"], capsys)
    assert code == 0 and "warning" not in err, err
    assert np.array_equal(pixels(tree / "out" / "moved-rerun.png"), pixels(painted))
    code, _, err = run_cli(["rerun", record, "--content", moved / "gone.png", "-o", tree / "x.png"], capsys)
    assert code == 1 and "--content" in one_line(err) and "does not exist" in err


def test_an_altered_input_warns_once_naming_the_file(painted_tree, tree, capsys):
    painted = painted_tree / "out" / "painted.png"
    stripes = tree / "inputs" / "stripes.png"
    array = pixels(stripes)
    array[0, 0] = 255 - array[0, 0]
    Image.fromarray(array).save(stripes)
    styles = [stripes, painted_tree / "inputs" / "flipped.png"]
    code, _, err = run_cli(["rerun", painted, "-o", tree / "again.png", "--style", *styles], capsys)
    assert code == 0
    warning = one_line(err)
    assert warning.startswith("impasto: warning: style image 1") and str(stripes) in warning and "sha256" in warning
    code, _, err = run_cli(["rerun", painted, "-o", tree / "x.png", "--style", stripes], capsys)
    assert code == 2 and "--style" in one_line(err) and "2 style image" in err


def test_inputs_are_found_by_relative_path_and_by_name(tmp_path, monkeypatch, astronaut_small, stripes_style, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    write_png(astronaut_small, tmp_path / "photo.png")
    write_png(stripes_style, tmp_path / "style.png")
    assert run_cli(["stylize", "photo.png", "style.png", "-o", "out/p.png", *QUICK, "--quiet"], capsys)[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "photo.png" is now in the folder above the painted file's
    code, _, err = run_cli(["rerun", "../out/p.png", "--quiet"], capsys)
    assert code == 0, err
    assert np.array_equal(pixels(tmp_path / "out" / "p-rerun.png"), pixels(tmp_path / "out" / "p.png"))
    shutil.move(tmp_path / "out", elsewhere / "moved")  # and now next to it, by name
    for name in ("photo.png", "style.png"):
        shutil.move(tmp_path / name, elsewhere / "moved" / name)
    code, _, err = run_cli(["rerun", "moved/p.png", "-o", "by-name.png"], capsys)
    assert code == 0 and "warning" not in err, err
    assert np.array_equal(pixels("by-name.png"), pixels("moved/p.png"))


def test_a_jpeg_reruns_from_its_sidecar(image_files, tmp_path, capsys):
    content, style = image_files
    painted = tmp_path / "painted.jpg"
    assert run_cli(["stylize", content, style, "-o", painted, *QUICK, "--quiet"], capsys)[0] == 0
    assert read_metadata(painted) is None  # JPEG carries no record: only painted.jpg.json has it
    code, _, err = run_cli(["rerun", painted, "--quiet"], capsys)
    assert code == 0, err
    assert np.array_equal(pixels(tmp_path / "painted-rerun.jpg"), pixels(painted))
    code, _, err = run_cli(["rerun", f"{painted}.json", "-o", tmp_path / "from-json.jpg", "--quiet"], capsys)
    assert code == 0, err
    assert np.array_equal(pixels(tmp_path / "from-json.jpg"), pixels(painted))
    Path(f"{painted}.json").unlink()
    code, _, err = run_cli(["rerun", painted, "-o", tmp_path / "none.png"], capsys)
    assert code == 1 and "records no impasto recipe" in one_line(err)


def test_unknown_recipe_keys_are_refused_by_name(painted_tree, tmp_path, capsys):
    meta = read_metadata(painted_tree / "out" / "painted.png")
    meta["recipe"]["brush_wetness"] = 0.5
    meta["impasto"] = "9.0"
    record = tmp_path / "future.png.json"
    record.write_text(json.dumps(meta))
    code, _, err = run_cli(["rerun", record], capsys)
    line = one_line(err)
    assert code == 1 and "brush_wetness" in line and "impasto 9.0" in line
    assert not (tmp_path / "future-rerun.png").exists()


def test_other_weights_warn(painted_tree, tmp_path, capsys):
    meta = read_metadata(painted_tree / "out" / "painted.png")
    meta["weights"]["sha256"] = "0" * 64
    record = tmp_path / "painted.png.json"
    record.write_text(json.dumps(meta))
    code, _, err = run_cli(["rerun", record, "--steps", "1"], capsys)
    assert code == 0
    assert "built-in weights" in one_line(err) and "--weights" in err


def test_python_api(painted_tree, tmp_path):
    painted = painted_tree / "out" / "painted.png"
    result = impasto.rerun(painted, tmp_path / "api.png")
    assert isinstance(result, impasto.Result) and result.recipe.seed == 1
    assert np.array_equal(pixels(tmp_path / "api.png"), pixels(painted))
    with pytest.warns(RerunWarning, match="content image"):
        impasto.rerun(painted, content=painted_tree / "inputs" / "flipped.png", steps=1)


def test_a_preset_override_keeps_the_recorded_changes():
    recorded = Recipe.from_preset("fast", max_size=64, seed=5, style_weight=9.0)
    recording = Recording(Path("p.png.json"), Path("p.png"), {"recipe": recorded.to_dict()})
    recipe, notes = rebuild_recipe(recording, {"preset": "quality", "steps": 4})
    assert notes == []
    assert (recipe.preset, recipe.steps, recipe.max_size, recipe.seed) == ("quality", 4, 64, 5)
    assert recipe.style_weight == 9.0
    assert recipe.step_decay == Recipe.from_preset("quality").step_decay  # the preset's, not fast's
    assert rebuild_recipe(recording)[0] == recorded
    older = Recording(Path("old.json"), Path("old.json"), {"recipe": {"preset": "fast", "seed": 2}})
    recipe, notes = rebuild_recipe(older)  # an older record lacks fields: today's defaults, said once
    assert recipe.seed == 2 and len(notes) == 1 and "max_size" in notes[0] and "defaults" in notes[0]


# ---------------------------------------------------------------------------------------------
# The web studio's downloads
# ---------------------------------------------------------------------------------------------
def test_a_studio_download_reruns_with_its_uploads(tmp_path, astronaut_small, stripes_style, capsys):
    pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
    pytest.importorskip("httpx2", reason="httpx2 (for the TestClient) is not installed")
    from fastapi.testclient import TestClient

    from impasto.web import create_app
    from impasto.web.guard import XSRF_HEADER

    # A photo larger than twice the output: the studio shrinks it before the engine, and so must the rerun.
    big = np.asarray(Image.fromarray((astronaut_small * 255).astype(np.uint8)).resize((160, 150)))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    Image.fromarray(big).save(uploads / "my photo.png")
    write_png(stripes_style, uploads / "stripes.png")
    app = create_app(max_upload_mb=1, max_pixels=2_000_000, max_output=1024, preview_interval=0.0)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/", params={"token": app.state.token}).status_code == 200
        client.headers[XSRF_HEADER] = client.cookies[app.state.policy.xsrf_cookie]
        ids = [client.post(f"/api/uploads?kind={kind}",
                           files={"file": (path.name, path.read_bytes(), "image/png")}).json()["id"]
               for kind, path in (("content", uploads / "my photo.png"), ("style", uploads / "stripes.png"))]
        job = client.post("/api/jobs", json={"content": ids[0], "styles": ids[1:], "settings": {
            "preset": "fast", "max_size": 64, "steps": 2, "seed": 3}}).json()
        deadline = time.monotonic() + 60
        while (state := client.get(f"/api/jobs/{job['id']}").json())["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        assert state["state"] == "done", state
        download = client.get(state["result"]["image"]).content
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    painted = downloads / "impasto-fast-abc123.png"
    painted.write_bytes(download)
    assert read_metadata(io.BytesIO(download))["content"]["path"] == "my photo.png"

    code, _, err = run_cli(["rerun", painted, "--content", uploads / "my photo.png", "--style",
                            uploads / "stripes.png", "--quiet"], capsys)
    assert code == 0, err
    assert np.array_equal(pixels(downloads / "impasto-fast-abc123-rerun.png"), pixels(painted))
    for path in uploads.iterdir():  # the uploads saved next to the download: found by name
        shutil.copy(path, downloads / path.name)
    code, _, err = run_cli(["rerun", painted, "-o", downloads / "by-name.png"], capsys)
    assert code == 0 and "warning" not in err, err
    assert np.array_equal(pixels(downloads / "by-name.png"), pixels(painted))
    assert "studio" in read_metadata(downloads / "by-name.png")  # a rerun of the rerun decodes the same way
