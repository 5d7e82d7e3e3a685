"""The studio as a hostile client sees it: Host and Origin tricks, cross-site writes, odd content
types, oversized and nested bodies, out-of-range settings, a flood of jobs, dropped connections.

Each probe asserts the status code and a one-line reason, and that the server still answers
afterwards. The engine is replaced by :class:`FakeStylizer` (it records what each run was given
and waits until cancelled) wherever a job has to exist, so the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
pytest.importorskip("httpx2", reason="httpx2 (for the TestClient) is not installed")

from fastapi.testclient import TestClient

from impasto.cancel import CancelToken
from impasto.errors import OutOfMemoryError
from impasto.web import create_app
from impasto.web import uploads as upload_module
from impasto.web.guard import XSRF_HEADER, cookie_name, is_loopback
from impasto.web.uploads import DECODE_SLOTS, UploadError, UploadStore

LOCAL = "http://127.0.0.1:8765"
TINY = {"preset": "fast", "max_size": 64, "steps": 1, "seed": 1}
STATIC = Path(__file__).resolve().parent.parent / "src" / "impasto" / "web" / "static"


class FakeStylizer:
    """Stands in for the engine: records each run's recipe and cancel token, then waits until the
    token is cancelled (or raises ``error`` at once). ``recipe`` is read-only, as the engine's is."""

    def __init__(self, error: BaseException | None = None):
        self.error = error
        self.runs: list[tuple[object, CancelToken]] = []
        self.started = threading.Event()

    @property
    def recipe(self):
        raise AssertionError("the studio must pass each job's recipe to run(), not read the stylizer's")

    def weights(self, recipe=None):
        return None

    def run(self, content, styles, *, recipe, cancel, callback=None, style_blend=None, masks=None,
            content_mask=None):
        self.runs.append((recipe, cancel))
        self.started.set()
        if self.error is not None:
            raise self.error
        while not cancel.cancelled:
            time.sleep(0.01)
        return SimpleNamespace(cancelled=True)


def png(side: int = 48, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", size, (200, 120, 40)).save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def browser(app, base_url: str = LOCAL) -> TestClient:
    """A client that opened the page with the token, as a browser does, and echoes the XSRF cookie."""
    client = TestClient(app, base_url=base_url)
    assert client.get("/", params={"token": app.state.token}).status_code == 200
    client.headers[XSRF_HEADER] = client.cookies[app.state.policy.xsrf_cookie]
    return client


def bearer(app) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.state.token}"}


def upload(client: TestClient, kind: str = "content", name: str = "photo.png", data: bytes | None = None) -> str:
    response = client.post(f"/api/uploads?kind={kind}", files={"file": (name, data or png(), "image/png")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def assert_refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, message


def assert_alive(client: TestClient) -> None:
    assert client.get("/api/info").status_code == 200


@pytest.fixture(scope="module")
def engine():
    return FakeStylizer()


@pytest.fixture(scope="module")
def app(engine):
    return create_app(max_output=1024, max_style_side=2048, max_queue=2, stylizer_factory=lambda: engine,
                      preview_interval=0.0)


@pytest.fixture(scope="module")
def client(app):
    with browser(app) as c:
        yield c


@pytest.fixture
def images(client):
    """Fresh uploads per test: the module's studio keeps at most 64, so older ones are evicted when
    later tests' uploads need room (unless a running job still pins them, which depends on timing)."""
    return {"content": upload(client), "style": upload(client, "style", "painting.png", png(seed=1)),
            "mask": upload(client, "mask", "mask.png", png(seed=2))}


def job_body(images, **changes) -> dict:
    return {"content": images["content"], "styles": [images["style"]], "settings": dict(TINY), **changes}


# -- 1. Host: DNS rebinding ------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1.evil.example:8765", "127.0.0.1.evil.example", "evil.example",
                                  "localhost.evil.example", "127.0.0.1@evil.example", "", "[::1", "0x7f.1"])
def test_a_host_that_is_not_loopback_is_refused_even_with_the_token(app, client, host):
    assert_refused(client.get("/api/results", headers={"host": host, **bearer(app)}), 403, "localhost")
    assert_alive(client)


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:1", "LOCALHOST", "[::1]:8765", "127.8.9.10"])
def test_localhost_and_loopback_addresses_are_answered(app, client, host):
    assert client.get("/api/results", headers={"host": host, **bearer(app)}).status_code == 200


def test_is_loopback_asks_ipaddress_not_the_spelling():
    assert is_loopback("127.0.0.1") and is_loopback("127.255.0.9") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("127.0.0.1.evil.example") and not is_loopback("127.evil") and not is_loopback("10.0.0.1")


def test_allowed_hosts_add_names_and_a_star_allows_every_name():
    named = create_app(allowed_hosts=["Studio.LAN"], stylizer_factory=FakeStylizer)
    studio = TestClient(named, base_url="http://studio.lan:8000", headers=bearer(named))
    assert studio.get("/api/info").status_code == 200
    other = TestClient(named, base_url="http://other.lan:8000", headers=bearer(named))
    assert other.get("/api/info").status_code == 403
    everyone = create_app(allowed_hosts=["*"], stylizer_factory=FakeStylizer)
    anywhere = TestClient(everyone, base_url="http://192.0.2.7:8000")
    assert anywhere.get("/api/info").status_code == 401  # the token still guards it
    assert anywhere.get("/api/info", headers=bearer(everyone)).status_code == 200


def test_a_rebound_page_cannot_start_or_cancel_jobs(app, client, images):
    evil = "127.0.0.1.evil.example:8765"
    headers = {"host": evil, "origin": f"http://{evil}"}
    assert client.post("/api/jobs", json=job_body(images), headers=headers).status_code == 403
    assert client.post("/api/jobs/anything/cancel", headers=headers).status_code == 403
    assert_alive(client)


# -- 1. The token, on loopback too ------------------------------------------------------------------
def test_loopback_needs_the_token_and_the_page_trades_it_for_a_cookie(app):
    stranger = TestClient(app, base_url=LOCAL)
    assert_refused(stranger.get("/api/info"), 401, "token")
    page = stranger.get("/")
    assert page.status_code == 401 and "text/html" in page.headers["content-type"]
    assert "token" in page.text and "<script" not in page.text
    opened = browser(app)
    assert opened.get("/api/info").status_code == 200 and opened.get("/static/app.js").status_code == 200


# -- 2. Cross-site writes: Origin and XSRF ----------------------------------------------------------
@pytest.mark.parametrize("origin", ["null", "http://evil.example", "http://127.0.0.1:9999", "https://localhost:8765"])
def test_a_foreign_or_null_origin_is_refused(client, images, origin):
    assert_refused(client.post("/api/jobs", json=job_body(images), headers={"origin": origin}), 403, "cross-site")
    assert_refused(client.post("/api/jobs/x/cancel", headers={"origin": origin}), 403, "cross-site")
    assert_refused(client.get("/api/results", headers={"origin": origin}), 403, "cross-site")
    assert_alive(client)


def test_the_page_own_origin_passes(client):
    assert client.post("/api/jobs/x/cancel", headers={"origin": LOCAL}).status_code == 404


def test_every_state_changing_request_needs_the_xsrf_header(app, client, images):
    cookie_only = browser(app)
    del cookie_only.headers[XSRF_HEADER]
    for method, path, extra in (("POST", "/api/jobs", {"json": job_body(images)}),
                                ("POST", "/api/jobs/x/cancel", {}),
                                ("POST", "/api/uploads?kind=style", {"files": {"file": ("a.png", png())}}),
                                ("DELETE", "/api/results/x", {}), ("PUT", "/api/jobs", {"json": {}})):
        assert_refused(cookie_only.request(method, path, **extra), 403, "XSRF")
    wrong = cookie_only.post("/api/jobs/x/cancel", headers={XSRF_HEADER: "guess"})
    assert_refused(wrong, 403, "XSRF")
    # A cookie planted by another site (header and cookie agree) lacks this server's signature.
    planted = TestClient(app, base_url=LOCAL, headers={XSRF_HEADER: "abc.def"},
                         cookies={cookie_name(app.state.token): app.state.token,
                                  app.state.policy.xsrf_cookie: "abc.def"})
    assert_refused(planted.post("/api/jobs/x/cancel"), 403, "XSRF")
    assert client.post("/api/jobs/x/cancel").status_code == 404  # with the header: past the guard
    assert_alive(client)


def test_scripts_with_the_bearer_token_need_no_xsrf(app):
    script = TestClient(app, base_url=LOCAL, headers=bearer(app))
    assert script.post("/api/jobs/x/cancel").status_code == 404


def test_without_a_token_the_host_origin_and_xsrf_checks_still_hold(images):
    app = create_app(no_token=True, stylizer_factory=FakeStylizer)
    anyone = TestClient(app, base_url=LOCAL)
    assert anyone.get("/api/info").status_code == 200
    assert_refused(anyone.post("/api/jobs/x/cancel"), 403, "XSRF")
    assert TestClient(app, base_url="http://evil.example").get("/api/info").status_code == 403
    page = TestClient(app, base_url=LOCAL)
    page.get("/")
    page.headers[XSRF_HEADER] = page.cookies[app.state.policy.xsrf_cookie]
    assert page.post("/api/jobs/x/cancel").status_code == 404


# -- 2. Content types; 5. bodies ----------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None, "application/jsonp", "text/json"])
def test_json_endpoints_want_application_json(client, images, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/jobs", content=json.dumps(job_body(images)).encode(), headers=headers)
    assert_refused(response, 415, "application/json")
    assert_alive(client)


def test_application_json_with_a_charset_is_json(client):
    response = client.post("/api/jobs", content=b"[]", headers={"content-type": "application/json; charset=utf-8"})
    assert_refused(response, 422, "JSON object")


BAD_BODIES = {
    "100,000 deep": (b"[" * 100_000 + b"]" * 100_000, 413, "too large"),
    "10,000 deep": (b"[" * 10_000 + b"]" * 10_000, 400, "nested too deeply"),
    "deep inside settings": (b'{"settings": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001, 400, "nested too deeply"),
    "70 KB": (b'{"content": "' + b"x" * 70_000 + b'"}', 413, "64 KB"),
    "not JSON": (b"{content: 1", 400, "not JSON"),
    "not UTF-8": (b'{"content": "\xff\xfe"}', 400, "not JSON"),
    "a 5000-digit number": (b'{"content": ' + b"9" * 5000 + b"}", 400, "not JSON"),
    "a list": (b"[1, 2]", 422, "JSON object"),
    "a string": (b'"hello"', 422, "JSON object"),
    "empty": (b"", 400, "not JSON"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_json_bodies_get_a_4xx_with_one_line(client, case):
    body, status, words = BAD_BODIES[case]
    assert_refused(client.post("/api/jobs", content=body, headers={"content-type": "application/json"}), status, words)
    assert_alive(client)


def test_a_declared_length_over_the_limit_is_refused_before_reading(client):
    response = client.post("/api/jobs", content=b"{}", headers={"content-type": "application/json",
                                                                  "content-length": str(10**9)})
    assert_refused(response, 413, "too large")


# -- 5., 11., 13. Fields of the wrong shape ------------------------------------------------------------
@pytest.mark.parametrize(("changes", "words"), [
    ({"masks": 123}, "masks: expected a list"),
    ({"masks": "x"}, "masks: expected a list"),
    ({"masks": {"0": "id"}}, "masks: expected a list"),
    ({"masks": True}, "masks: expected a list"),
    ({"masks": [123]}, "mask 1: expected an upload id"),
    ({"masks": [["id"]]}, "mask 1: expected an upload id"),
    ({"content_mask": 5}, "content_mask: expected an upload id"),
    ({"content": {"id": "x"}}, "content: expected an upload id"),
    ({"styles": "abc"}, "styles: upload at least one painting"),
    ({"styles": [{"id": 1}]}, "style 1: expected an upload id"),
    ({"settings": []}, "settings: expected a JSON object"),
    ({"settings": "fast"}, "settings: expected a JSON object"),
    ({"settings": {"preset": ["fast"]}}, "Preset (preset)"),
    ({"settings": {"preset": {"x": 1}}}, "Preset (preset)"),
    ({"settings": {"style_blend": "1,2"}}, "Blend (style_blend)"),
    ({"settings": {"style_blend": [[1]]}}, "Blend (style_blend)"),
    ({"settings": {"style_blend": [1e308, 1e308]}}, "Blend (style_blend)"),
    ({"settings": {"style_weight": [1]}}, "Style strength (style_weight)"),
    ({"settings": {"style_weight": 10**300}}, "Style strength (style_weight)"),
    ({"settings": {"steps": "10"}}, "Steps (steps)"),
    ({"settings": {"max_size": True}}, "Output size (max_size)"),
    ({"settings": {"1": 2}}, "unknown setting"),
    ({"x" * 10_000: 1}, "unknown field"),
])
def test_fields_of_the_wrong_shape_get_a_422(client, images, changes, words):
    body = job_body(images)
    body.update(changes)
    response = client.post("/api/jobs", json=body)
    assert_refused(response, 422, words)
    assert len(response.json()["error"]) < 300
    assert_alive(client)


def test_non_finite_numbers_are_refused(client, images):
    for value in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        body = json.dumps(job_body(images)).replace('"seed": 1', '"seed": 1, "style_weight": __').encode()
        response = client.post("/api/jobs", content=body.replace(b"__", value),
                               headers={"content-type": "application/json"})
        assert_refused(response, 422, "Style strength (style_weight)")


# -- 3., 6. Every number bounded, named as the page names it -------------------------------------------
@pytest.mark.parametrize(("setting", "value", "words"), [
    ("max_size", 5000, "Output size (max_size): 5000 is out of range: use 64 to 1024 px"),
    ("max_size", 10, "Output size (max_size): 10 is out of range"),
    ("style_scale", 30, "Style scale (style_scale): 30 is out of range: use 0.25 to 4"),
    ("style_scale", 100, "Style scale (style_scale)"),
    ("style_scale", 0.1, "Style scale (style_scale)"),
    ("steps", 0, "Steps (steps): 0 is out of range: use 1 to 10,000"),
    ("steps", 1_000_000, "Steps (steps)"),
    ("seed", 2**63, "Seed (seed): 9,223,372,036,854,775,808 is out of range: use 0 to 9,223,372,036,854,775,807"),
    ("seed", 2**64 + 5, "Seed (seed)"),
    ("seed", -1, "Seed (seed): -1 is out of range"),
    ("seed", 1.5, "Seed (seed): 1.5 is not a whole number"),
    ("style_weight", 1e9, "Style strength (style_weight)"),
    ("content_weight", -1, "Content strength (content_weight)"),
    ("preserve_color", "sepia", "Colours (preserve_color)"),
])
def test_out_of_range_settings_get_a_422_naming_the_control_and_its_range(client, images, setting, value, words):
    response = client.post("/api/jobs", json=job_body(images, settings={**TINY, setting: value}))
    assert_refused(response, 422, words)
    assert response.json()["field"] == setting
    assert_alive(client)


def test_the_painting_at_its_scale_has_a_pixel_budget(client, images):
    # 1024 px × style scale 4 would show the painting 4096 px wide; this server allows 2048.
    response = client.post("/api/jobs", json=job_body(images, settings={**TINY, "max_size": 1024, "style_scale": 4}))
    assert_refused(response, 422, "Style scale (style_scale)", "4096 px", "2048 px budget")
    assert response.json()["field"] == "style_scale"


# -- 10. The queue is capped; queued uploads count in the budget --------------------------------------
def test_the_queue_is_capped_with_a_429_naming_the_limit(client, images, engine):
    started = [client.post("/api/jobs", json=job_body(images)) for _ in range(3)]  # 1 runs, 2 wait
    assert [r.status_code for r in started] == [201, 201, 201], [r.text for r in started]
    assert engine.started.wait(10)
    deadline = time.monotonic() + 10
    while client.get(f"/api/jobs/{started[0].json()['id']}").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    full = client.post("/api/jobs", json=job_body(images))
    assert_refused(full, 429, "queue is full", "2 jobs")
    assert full.json()["limit"] == 2
    assert client.post(f"/api/jobs/{started[2].json()['id']}/cancel").json()["state"] == "cancelled"
    again = client.post("/api/jobs", json=job_body(images))
    assert again.status_code == 201
    for job in (started[0], started[1], again):
        client.post(f"/api/jobs/{job.json()['id']}/cancel")
    assert_alive(client)


def test_uploads_of_waiting_jobs_stay_and_count_in_the_budget():
    engine = FakeStylizer()
    app = create_app(stylizer_factory=lambda: engine, max_queue=4)
    with browser(app) as studio:
        app.state.uploads.max_count = 2
        photo, painting = upload(studio), upload(studio, "style", "painting.png", png(seed=1))
        job = studio.post("/api/jobs", json={"content": photo, "styles": [painting], "settings": TINY}).json()
        refused = studio.post("/api/uploads?kind=style", files={"file": ("third.png", png(seed=3), "image/png")})
        assert_refused(refused, 503, "held by queued jobs")
        assert studio.get(f"/api/uploads/{photo}").status_code == 200  # never evicted from under the job
        studio.post(f"/api/jobs/{job['id']}/cancel")
        deadline = time.monotonic() + 10
        while studio.get(f"/api/jobs/{job['id']}").json()["state"] != "cancelled":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert studio.post("/api/uploads?kind=style", files={"file": ("third.png", png(seed=3))}).status_code == 201
        assert studio.get(f"/api/uploads/{photo}").status_code == 404  # the oldest went, once free


def test_upload_store_pins():
    data = png()
    store = UploadStore(max_bytes_each=len(data), max_pixels=10_000, max_bytes=2 * len(data))
    first, second = store.add(data, "content", "a.png"), store.add(data, "style", "b.png")
    store.pin([first, second])
    with pytest.raises(UploadError) as refused:
        store.add(data, "style", "c.png")
    assert refused.value.status == 503 and store.held_bytes() == 2 * len(data)
    store.unpin([first])
    third = store.add(data, "style", "c.png")
    assert store.get(first.id) is None and store.get(second.id) is second and store.get(third.id) is third


# -- 4. Decoding: bounded in parallel, JPEGs at the size needed ----------------------------------------
def test_at_most_two_images_decode_at_once(monkeypatch):
    active, peak, lock = [0], [0], threading.Lock()
    real_decode = upload_module.decode

    def slow_decode(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        try:
            return real_decode(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(upload_module, "decode", slow_decode)
    store = UploadStore(max_bytes_each=10**6, max_pixels=10**6)
    threads = [threading.Thread(target=store.add, args=(png(seed=i), "style", f"{i}.png")) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == DECODE_SLOTS == 2


def test_jpegs_decode_at_about_the_size_needed():
    data = jpeg((2000, 1500))
    assert upload_module.decode(data, "x", 10**7, draft_side=300).size == (500, 375)  # 1/4 scale
    assert upload_module.decode(png(64), "x", 10**7, draft_side=16).size == (64, 64)  # PNGs have no draft
    store = UploadStore(max_bytes_each=10**6, max_pixels=10**7)
    item = store.add(data, "content", "/home/someone/holiday.jpg")
    assert (item.width, item.height, item.filename) == (2000, 1500, "holiday.jpg")  # the file's own size
    loaded = item.load("content image", 10**7, long_side=300)
    assert max(loaded.size) == 300
    assert (loaded.path, loaded.sha256) == ("holiday.jpg", item.sha256)  # its file name only, never a path


def test_thumbnails_stay_upright_without_full_size_copies():
    store = UploadStore(max_bytes_each=10**6, max_pixels=10**7)
    item = store.add(jpeg((600, 400), orientation=6), "content", "turned.jpg")
    assert (item.width, item.height) == (400, 600)
    assert Image.open(io.BytesIO(item.thumbnail)).size == (213, 320)


# -- 7. Out of memory, 12. a token and a recipe per run ------------------------------------------------
ALLOCATION_FAILURE = RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate "
                                  "memory: you tried to allocate 123456789012 bytes. Error code 12")


@pytest.mark.parametrize("error", [ALLOCATION_FAILURE, MemoryError(),
                                   OutOfMemoryError("out of memory painting 64x64; lower max_size")])
def test_out_of_memory_says_what_to_lower_not_internals(error):
    app = create_app(stylizer_factory=lambda: FakeStylizer(error=error))
    with browser(app) as studio:
        photo, painting = upload(studio), upload(studio, "style")
        job = studio.post("/api/jobs", json={"content": photo, "styles": [painting], "settings": TINY}).json()
        deadline = time.monotonic() + 10
        while (final := studio.get(f"/api/jobs/{job['id']}").json())["state"] not in ("done", "failed", "cancelled"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert final["state"] == "failed"
    assert final["error"].startswith("out of memory") and "output size" in final["error"]
    assert "style scale" in final["error"]
    assert not re.search(r"alloc_cpu|RuntimeError|internal error|max_size", final["error"])


def test_each_job_gets_its_recipe_and_its_own_cancel_token(client, images, engine):
    engine.runs.clear()
    first = client.post("/api/jobs", json=job_body(images, settings={**TINY, "seed": 11})).json()
    second = client.post("/api/jobs", json=job_body(images, settings={**TINY, "seed": 22})).json()
    deadline = time.monotonic() + 10
    while not engine.runs:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    client.post(f"/api/jobs/{first['id']}/cancel")
    while len(engine.runs) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (recipe_1, token_1), (recipe_2, token_2) = engine.runs
    assert (recipe_1.seed, recipe_2.seed) == (11, 22)
    assert token_1 is not token_2 and token_1.cancelled and not token_2.cancelled
    client.post(f"/api/jobs/{second['id']}/cancel")
    assert token_2.cancelled


def test_a_job_cancelled_before_it_starts_never_reaches_the_engine(client, images, engine):
    blocker = client.post("/api/jobs", json=job_body(images)).json()
    waiting = client.post("/api/jobs", json=job_body(images)).json()
    engine.runs.clear()
    client.post(f"/api/jobs/{waiting['id']}/cancel")
    client.post(f"/api/jobs/{blocker['id']}/cancel")
    assert client.get(f"/api/jobs/{waiting['id']}").json()["state"] == "cancelled"
    time.sleep(0.1)
    assert all(token.cancelled for _, token in engine.runs) and len(engine.runs) <= 1


# -- 9. Headers -------------------------------------------------------------------------------------------
def test_security_headers(app, client):
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    for response in (page, client.get("/static/app.js"), client.get("/api/info"),
                     TestClient(app, base_url=LOCAL).get("/api/info")):  # refusals too
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "content-security-policy" in response.headers
    for path in ("/api/info", "/api/results", "/api/jobs/nope"):
        assert client.get(path).headers["cache-control"] == "no-store"


def test_the_page_has_no_inline_script_handlers_or_styles():
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all('src="/static/' in attributes and not body.strip() for attributes, body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html) and "javascript:" not in html and " style=" not in html
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "eval(" not in script and "X-XSRF-Token" in script


# -- 11. A client that goes away -----------------------------------------------------------------------
def _asgi(app, method: str, path: str, headers: dict[str, str], messages: list[dict], fail_sending: bool = False):
    """Call ``app`` as a server would, with ``messages`` as what the client sends."""
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "server": ("127.0.0.1", 8765), "client": ("127.0.0.1", 5555),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    pending = list(messages)

    async def receive():
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)

    async def send(message):
        if fail_sending and message["type"] == "http.response.body":
            raise OSError("the client closed the connection")

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))


def test_a_dropped_client_is_logged_in_one_line(app, client, images, caplog):
    job = client.post("/api/jobs", json=job_body(images)).json()
    client.post(f"/api/jobs/{job['id']}/cancel")
    headers = {"host": "127.0.0.1:8765", "authorization": f"Bearer {app.state.token}",
               "content-type": "multipart/form-data; boundary=x", "content-length": "100000"}
    with caplog.at_level(logging.INFO):
        # An upload whose sender goes away half-way, and an event stream whose reader has gone.
        _asgi(app, "POST", "/api/uploads", headers, [{"type": "http.request", "body": b"--x\r\n", "more_body": True},
                                                      {"type": "http.disconnect"}])
        _asgi(app, "GET", f"/api/jobs/{job['id']}/events", headers, [], fail_sending=True)
    went_away = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(went_away) == 2 and all(r.exc_info is None for r in went_away)
    assert "Traceback" not in caplog.text and "Exception in ASGI" not in caplog.text
    assert_alive(client)
