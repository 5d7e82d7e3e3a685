"""The studio end to end in a real browser: Debian's chromium driven by Playwright.

`impasto.web.serve` runs in a child process on a free port; the page uploads two images, paints a
small `fast` picture while its preview changes, shows the result in the gallery, reports a bad
upload, and cancels a second job; a studio with ``--models`` paints with a trained model. Screenshots
go to ``test-output/web/``.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI") == "true":  # .ci/run installs it: never skip silently there
    pytest.fail("no system chromium although CI=true: .ci/run should have installed it", pytrace=False)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system chromium (apt-get install chromium; .ci/run does)")

SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "web"
SIZE = 96
STEPS = 6


@pytest.fixture(scope="module")
def server():
    """`impasto.web.serve` in a child process on a free port; yields its address."""
    yield from _serve("max_output=1024")


@pytest.fixture(scope="module")
def model_server(tmp_path_factory):
    """The same with ``models=``: a folder holding a tiny model and a file that is not one."""
    import torch

    from impasto.feedforward import Architecture, ModelInfo, TransformNet, save_model
    from impasto.recipe import Recipe

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    info = ModelInfo(architecture=Architecture(4, 1), recipe=Recipe.from_preset("fast"), style_name="starry.jpg",
                     style_sha256="ab" * 32, size=64, steps=40)
    save_model(folder / "starry.impasto", TransformNet(info.architecture).eval(), info)
    (folder / "junk.impasto").write_text("not a model\n")
    yield from _serve(f"max_output=1024, models={str(folder)!r}")


def _serve(options: str):
    """`impasto.web.serve` with keyword ``options`` in a child process on a free port; yields its address."""
    code = f"from impasto.web import serve; serve('127.0.0.1', 0, {options})"
    child = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        first = child.stdout.readline().strip()  # "impasto studio: http://127.0.0.1:PORT/"
        assert first.startswith("impasto studio: http://127.0.0.1:"), first + child.stdout.read()
        yield first.split(": ", 1)[1]
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A photo (scikit-image's astronaut), a painting (impasto's brush strokes) and a fake image."""
    from skimage import data

    from impasto.texture import brush_strokes

    folder = tmp_path_factory.mktemp("studio")
    photo = folder / "astronaut.jpg"
    Image.fromarray(data.astronaut()).resize((320, 320), Image.Resampling.LANCZOS).save(photo, quality=92)
    painting = folder / "brush-strokes.png"
    Image.fromarray((brush_strokes((256, 256), seed=3) * 255).astype(np.uint8)).save(painting)
    fake = folder / "holiday.jpg"
    fake.write_text("this is a text file wearing an image's name\n")
    return photo, painting, fake


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield chromium
        chromium.close()


def text(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def test_paint_watch_download_and_cancel_in_a_browser(server, images, browser):
    photo, painting, fake = images
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    # The Content-Security-Policy allows no inline script or style: the page must need none.
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(server)
    page.wait_for_selector("#presets button[data-preset=fast]")
    assert page.title() == "impasto studio"
    assert text(page, "#device-pill") in ("CPU", "Apple GPU") or text(page, "#device-pill").startswith("GPU")

    # A file that is not an image gets a clear message beside its drop zone.
    page.set_input_files("#content-file", str(fake))
    page.wait_for_function("() => document.querySelector('#content-error').textContent.length > 0")
    assert "not an image" in text(page, "#content-error")

    page.set_input_files("#content-file", str(photo))
    page.set_input_files("#style-file", str(painting))
    page.wait_for_selector("#content-drop.filled")
    page.wait_for_selector(".style-item")
    assert text(page, "#content-error") == ""
    assert "320×320" in text(page, "#content-dims")
    page.click("#presets button[data-preset=fast]")
    page.eval_on_selector("#max-size", f"e => {{ e.value = {SIZE}; e.dispatchEvent(new Event('input')); }}")
    assert text(page, "#max-size-out") == f"{SIZE} px"
    page.click(".advanced summary")
    page.fill("#steps", str(STEPS))

    # Paint: the progress advances and the live preview changes.
    page.click("#start-btn")
    page.wait_for_function("() => document.querySelector('#picture').src.includes('/preview?v=')", timeout=60_000)
    first_preview = page.eval_on_selector("#picture", "e => e.src")
    first_width = page.eval_on_selector("#bar-fill", "e => parseFloat(e.style.width)")
    page.wait_for_function(
        f"() => {{ const s = document.querySelector('#picture').src;"
        f" return s !== {first_preview!r} && (s.includes('/preview?v=') || s.includes('/api/results/')); }}",
        timeout=60_000)
    page.wait_for_timeout(300)  # let CSS transitions settle
    page.screenshot(path=str(SHOTS / "studio-running.png"))
    page.wait_for_function("() => document.querySelector('#phase').textContent === 'Done'", timeout=60_000)
    assert page.eval_on_selector("#bar-fill", "e => parseFloat(e.style.width)") == 100 > first_width
    assert "/api/results/" in page.get_attribute("#picture", "src")
    page.wait_for_selector("#gallery button")  # the gallery reloads just after the result shows
    assert page.locator("#gallery button").count() == 1
    assert f"{SIZE}×{SIZE}" in text(page, "#result-meta")
    assert f"{STEPS} steps" in text(page, "#stats")

    # The download is a PNG of the chosen size with the recipe inside.
    href = page.eval_on_selector("#download-btn", "e => e.href")  # absolute
    download = page.request.get(href)
    assert download.ok and download.headers["content-type"] == "image/png"
    from impasto.images import read_metadata

    picture = Image.open(io.BytesIO(download.body()))
    assert picture.size == (SIZE, SIZE)
    assert read_metadata(io.BytesIO(download.body()))["recipe"]["preset"] == "fast"
    page.click("#recipe-btn")
    page.wait_for_selector("#recipe:not([hidden])")
    assert "style weight" in text(page, "#recipe")
    page.click("#recipe-btn")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "studio-done.png"))

    # A second, long job: cancelled while it runs.
    page.click("#presets button[data-preset=balanced]")  # changes the form; re-opening restores it
    page.fill("#steps", "5000")
    page.eval_on_selector("#max-size", f"e => {{ e.value = {SIZE}; e.dispatchEvent(new Event('input')); }}")
    page.click("#start-btn")
    page.wait_for_function("() => document.querySelector('#phase').textContent.startsWith('Painting ·')",
                           timeout=60_000)
    assert page.is_enabled("#cancel-btn") and not page.is_enabled("#start-btn")

    def late_reply(route):  # the cancel request's reply ("still running") arrives after the job ended
        reply = route.fetch()
        time.sleep(2)
        route.fulfill(response=reply)

    page.route("**/cancel", late_reply)
    page.click("#cancel-btn")
    page.wait_for_function("() => document.querySelector('#phase').textContent === 'Cancelled'", timeout=30_000)
    page.wait_for_timeout(2500)
    assert text(page, "#phase") == "Cancelled", "a late reply brought the cancelled job back"
    assert "stopped at step" in text(page, "#stats")
    page.unroute("**/cancel")
    assert page.is_enabled("#start-btn")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "studio-cancelled.png"))

    # Re-opening the first picture from the gallery brings its settings back.
    page.click("#gallery button")
    assert page.get_attribute("#presets button[data-preset=fast]", "aria-checked") == "true"
    assert page.input_value("#max-size") == str(SIZE)
    assert page.input_value("#steps") == str(STEPS)
    assert "/api/results/" in page.get_attribute("#picture", "src")
    assert problems == []
    page.close()


def test_paint_with_a_trained_model_in_a_browser(model_server, images, browser):
    photo, _, _ = images
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(model_server)
    page.wait_for_selector("#painting-source:not([hidden])")
    page.click("#painting-source button[data-source=model]")
    page.wait_for_selector("#model-select option[value='starry.impasto']", state="attached")
    assert not page.is_visible("#presets") and not page.is_visible("#style-strength") and not page.is_visible("#steps")
    assert page.is_visible("#model-select") and page.is_visible("#max-size")
    options = page.eval_on_selector_all("#model-select option", "os => os.map(o => [o.value, o.disabled])")
    assert options == [["junk.impasto", True], ["starry.impasto", False]]
    assert page.input_value("#model-select") == "starry.impasto"
    assert "junk.impasto" in text(page, "#model-desc") and "starry.jpg" in text(page, "#model-desc")

    page.set_input_files("#content-file", str(photo))
    page.wait_for_selector("#content-drop.filled")
    page.eval_on_selector("#max-size", f"e => {{ e.value = {SIZE}; e.dispatchEvent(new Event('input')); }}")
    page.click("#start-btn")
    page.wait_for_function("() => document.querySelector('#phase').textContent === 'Done'", timeout=60_000)
    assert "starry.impasto" in text(page, "#result-meta") and "painted by the model" in text(page, "#stats")
    assert text(page, "#start-hint") == "Ready when you are."
    download = page.request.get(page.eval_on_selector("#download-btn", "e => e.href"))
    from impasto.images import read_metadata

    assert Image.open(io.BytesIO(download.body())).size == (SIZE, SIZE)
    assert read_metadata(io.BytesIO(download.body()))["model"]["path"] == "starry.impasto"
    page.click("#recipe-btn")
    page.wait_for_selector("#recipe:not([hidden])")
    assert "starry.jpg" in text(page, "#recipe")
    page.wait_for_timeout(300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "studio-model.png"))
    # Re-opened from the gallery with style images chosen, the picture brings its model back.
    page.click("#painting-source button[data-source=upload]")
    assert page.is_visible("#presets")
    page.click("#gallery button")
    assert page.is_visible("#model-select") and not page.is_visible("#presets")
    assert page.input_value("#max-size") == str(SIZE)
    assert problems == []
    page.close()
