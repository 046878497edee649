"""The page's job address, recent jobs, upload progress, cancel and the review, in headless Chromium
against real servers on 127.0.0.1 (the slow tier)."""
from __future__ import annotations

import io
import json
import subprocess
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from tests.browsing import (  # skips this module without Chromium
    ARTIFACTS,
)
from tests.helpers import (
    ROOT,
    encode,
    free_port,
    make_zip,
    server_command,
    server_env,
    stop_server,
)

pytestmark = pytest.mark.slow  # real servers and browsers: the slow tier

# The fast preset finds the big face but misses the one in the small copy at (600, 300), 80 px wide.
MISSED = (620, 298, 32, 40)  # a box over the small copy's face, in the group photo's pixels


@pytest.fixture
def context(browser):
    context = browser.new_context(locale="en-US", viewport={"width": 900, "height": 1000}, accept_downloads=True)
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    assert not page.errors, f"the page's scripts failed: {page.errors}"


def group_photo(astronaut) -> np.ndarray:
    """The astronaut, with a small copy of her beside her that the fast preset does not find."""
    canvas = np.full((512, 768, 3), 200, np.uint8)
    canvas[:, :512] = astronaut
    canvas[300:380, 600:680] = cv2.resize(astronaut, (80, 80))
    return canvas


def shoot(page, name: str, record_artifact, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"review-page-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    record_artifact(f"screenshot: {name}", path)
    return path


def start_job(page, paths, preset: str = "fast", review: bool = True) -> str:
    """Pick files, choose the options, start; return the job's id once the page is at its address."""
    page.set_input_files("#file-input", [str(p) for p in paths])
    page.check(f"input[name=preset][value={preset}]")
    page.set_checked("#review-option", review)
    page.click("#start")
    page.wait_for_url("**/jobs/*", timeout=60_000)
    return page.url.rsplit("/", 1)[1]


def wait_finished(page, timeout: float = 180_000) -> None:
    page.wait_for_selector("#again:visible", timeout=timeout)


def all_images_loaded(page, selector: str) -> None:
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.getAttribute('src') && i.complete && i.naturalWidth > 0)",
        arg=selector, timeout=30_000)


def open_editor(page, name: str) -> None:
    page.click(f"#grid button:has-text('{name}')")
    page.wait_for_selector("#editor:visible")
    wait_photo(page)


def wait_photo(page) -> None:
    page.wait_for_function("(() => { const i = document.getElementById('ed-img');"
                           " return i.getAttribute('src') && i.complete && i.naturalWidth > 0; })()", timeout=30_000)


def on_screen(page, x: float, y: float) -> tuple[float, float]:
    """Where a point of the photo (its pixels) is on the screen."""
    return tuple(page.evaluate("""([x, y]) => {
        const svg = document.getElementById('ed-svg'), r = svg.getBoundingClientRect(), vb = svg.viewBox.baseVal;
        return [r.left + x * r.width / vb.width, r.top + y * r.height / vb.height]; }""", [x, y]))


def drag(page, start, end) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()


def regions_in_editor(page) -> list[list[int]]:
    return page.evaluate("[...document.querySelectorAll('#ed-svg .region .line')].map(r => "
                         "['x', 'y', 'width', 'height'].map(k => Number(r.getAttribute(k))))")


def detail(base: str, job_id: str, index: int) -> dict:
    return requests.get(f"{base}/api/jobs/{job_id}/files/{index}", timeout=10).json()


def snapshot(base: str, job_id: str) -> dict:
    return requests.get(f"{base}/api/jobs/{job_id}", timeout=10).json()


def detail_of_sharpness(pixels: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def decode(payload: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)


def test_review_draw_delete_save_approve_download(server, page, tmp_path, astronaut, record_artifact):
    group = group_photo(astronaut)
    (tmp_path / "group.jpg").write_bytes(encode(group, ".jpg"))
    (tmp_path / "trip.zip").write_bytes(make_zip({"day1/beach.png": encode(astronaut, ".png"),
                                                  "day1/notes.txt": b"not a photo"}))
    page.goto(server + "/")
    job_id = start_job(page, [tmp_path / "group.jpg", tmp_path / "trip.zip"])
    page.wait_for_selector("#approve:visible", timeout=180_000)
    counts = page.inner_text("#counts")
    assert counts == "2 photos redacted · 1 file skipped (not a photo) · 2 faces hidden", counts
    assert detail(server, job_id, 0)["regions"][0]["box"][0] < 512, "the detector missed the small face"
    assert page.evaluate("document.activeElement.id") == "approve", "focus moves to the next step"
    all_images_loaded(page, "#grid img")
    assert page.locator("#grid li").count() == 2, "every photo, zip members too; not the skipped file"
    assert page.inner_text("#filter-edited") == "Edited (0)"
    before_thumb = page.get_attribute("#grid li:first-child img", "src")
    shoot(page, "1-grid-en", record_artifact)

    # The group photo: the fast preset missed the small face. Draw a box over it.
    open_editor(page, "group.jpg")
    assert page.inner_text("#ed-pos") == "1 / 2" and page.get_attribute("#ed-view", "aria-pressed") == "false"
    assert "/original" in page.get_attribute("#ed-img", "src"), "regions are drawn over the original"
    assert len(regions_in_editor(page)) == 1
    assert "centerface" in page.text_content("#ed-svg .region .tag")
    x, y, w, h = MISSED
    drag(page, on_screen(page, x, y), on_screen(page, x + w, y + h))
    drawn = regions_in_editor(page)
    assert len(drawn) == 2 and all(abs(a - b) <= 2 for a, b in zip(drawn[1], MISSED)), drawn
    assert "added by you" in page.inner_text("#ed-info") and page.is_enabled("#ed-save")
    shoot(page, "2-editor-drawn-en", record_artifact, full_page=False)
    page.click("#ed-save")
    page.wait_for_selector("#editor-error.notice:has-text('Saved group.jpg')")
    sources = [r["source"] for r in detail(server, job_id, 0)["regions"]]
    assert sorted(sources) == ["auto", "manual"]

    # The zip's photo: zoom by buttons, keys and wheel; see the redacted output; delete its one region.
    page.keyboard.press("j")  # the next photo (nothing unsaved here)
    page.wait_for_function("document.getElementById('ed-name').textContent === 'day1/beach.png'")
    wait_photo(page)
    fitted = page.inner_text("#ed-zoom")
    page.click("#ed-zoom-in")
    assert page.inner_text("#ed-zoom") != fitted
    page.keyboard.press("0")
    assert page.inner_text("#ed-zoom") == fitted
    page.keyboard.press("+")
    page.keyboard.press("-")
    assert page.inner_text("#ed-zoom") == fitted
    page.mouse.move(450, 500)
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"document.getElementById('ed-zoom').textContent !== '{fitted}'")
    page.keyboard.press("0")
    page.click("#ed-view")
    assert "/redacted" in page.get_attribute("#ed-img", "src")
    wait_photo(page)
    page.click("#ed-view")
    box = detail(server, job_id, 1)["regions"][0]["box"]
    page.mouse.click(*on_screen(page, box[0] + box[2] / 2, box[1] + box[3] / 2))
    assert page.inner_text("#ed-info").startswith("Box 1 of 1")
    page.keyboard.press("Delete")
    assert regions_in_editor(page) == []
    page.keyboard.press("Control+z")
    assert len(regions_in_editor(page)) == 1
    page.keyboard.press("Control+Shift+z")
    assert regions_in_editor(page) == [] and page.inner_text("#ed-info") == "0 boxes · unsaved changes"
    page.keyboard.press("Escape")  # back to the grid, saving first
    page.wait_for_selector("#editor", state="hidden")
    assert detail(server, job_id, 1)["regions"] == []
    page.wait_for_function("document.getElementById('filter-edited').textContent === 'Edited (2)'")
    assert page.get_attribute("#grid li:first-child img", "src") != before_thumb, "the thumbnail was renewed"
    all_images_loaded(page, "#grid img")
    page.check("input[name=filter][value=edited]")
    assert page.locator("#grid li:visible").count() == 2
    page.check("input[name=filter][value=none]")
    assert page.locator("#grid li:visible").count() == 1  # beach.png has no region now
    shoot(page, "3-grid-edited-en", record_artifact)
    page.reload()  # the review goes on where it was
    page.wait_for_function("document.getElementById('filter-edited').textContent === 'Edited (2)'")

    # Approve and download: the zip holds the reviewed photos, and report.json says what was edited.
    with page.expect_download() as info:
        page.click("#approve")
    page.wait_for_selector("#review", state="hidden")
    assert "originals were deleted" in page.inner_text("#job-error")
    assert snapshot(server, job_id)["review"]["originals"] is False
    all_images_loaded(page, ".preview img")
    shoot(page, "4-approved-en", record_artifact)
    zf = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes()))
    out_group, out_beach = decode(zf.read("group.jpg")), decode(zf.read("day1/beach.png"))
    cut = np.s_[y:y + h, x:x + w]
    assert detail_of_sharpness(out_group[cut]) < detail_of_sharpness(group[cut]) / 4, "the drawn box is redacted"
    assert np.abs(out_beach.astype(int) - astronaut.astype(int)).max() <= 2, "the deleted region is not redacted"
    report = {f["name"]: f for f in json.loads(zf.read("report.json"))["files"]}
    assert sorted(d["source"] for d in report["group.jpg"]["detections"]) == ["auto", "manual"]
    assert report["day1/beach.png"]["detections"] == []
    assert [d["source"] for d in report["day1/beach.png"]["removed"]] == ["auto"]


def test_review_from_the_keyboard_only(server, page, tmp_path, astronaut, record_artifact):
    (tmp_path / "portrait.jpg").write_bytes(encode(astronaut))
    (tmp_path / "second.jpg").write_bytes(encode(cv2.flip(astronaut, 1)))
    page.goto(server + "/")
    job_id = start_job(page, [tmp_path / "portrait.jpg", tmp_path / "second.jpg"], preset="balanced")
    page.wait_for_selector("#approve:visible", timeout=180_000)
    all_images_loaded(page, "#grid img")
    # From the focused Approve button, Tab reaches the grid's first photo through the filters.
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('card')"):
            break
    assert page.evaluate("document.activeElement.dataset.index") == "0"
    page.keyboard.press("Enter")
    page.wait_for_selector("#editor:visible")
    wait_photo(page)
    assert page.evaluate("document.activeElement.id") == "ed-stage"
    page.keyboard.press("Tab")  # the first region
    assert page.evaluate("document.activeElement.dataset.index") == "0"
    assert page.inner_text("#ed-info").startswith("Box 1 of 1")
    page.keyboard.press("Delete")
    page.keyboard.press("a")  # a new box in the middle of the view, chosen
    added = regions_in_editor(page)[0]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    moved = regions_in_editor(page)[0]
    assert moved[0] > added[0] and moved[3] > added[3] and moved[1] == added[1]
    shoot(page, "5-keyboard-editor-en", record_artifact, full_page=False)
    page.keyboard.press("Control+s")
    page.wait_for_selector("#editor-error.notice")
    assert [r["source"] for r in detail(server, job_id, 0)["regions"]] == ["manual"]
    page.keyboard.press("Escape")  # leaves the chosen box
    page.keyboard.press("ArrowRight")  # then the arrows go to the next photo
    page.wait_for_function("document.getElementById('ed-pos').textContent === '2 / 2'")
    page.keyboard.press("k")
    page.wait_for_function("document.getElementById('ed-pos').textContent === '1 / 2'")
    page.keyboard.press("Escape")
    page.wait_for_selector("#editor", state="hidden")
    assert page.evaluate("document.activeElement.dataset.index") == "0", "focus returns to the photo"
    page.focus("#approve")
    with page.expect_download():
        page.keyboard.press("Enter")
    assert snapshot(server, job_id)["review"]["originals"] is False


def serve_on(data_dir: Path, port: int) -> subprocess.Popen:
    """A server on a given port (start_server picks a free one): a restart keeps the page's origin."""
    log = data_dir.parent / f"server-{port}-{time.monotonic_ns()}.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(server_command("--port", str(port)), cwd=ROOT, env=server_env(data_dir),
                                stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except (requests.ConnectionError, requests.Timeout):
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
    stop_server(proc)
    pytest.fail("the server did not start")


def slow_photos(tmp_path, astronaut, count: int) -> list[Path]:
    big = cv2.resize(cv2.hconcat([astronaut, cv2.flip(astronaut, 1)]), (2400, 1200))
    paths = []
    for i in range(count):
        path = tmp_path / f"photo-{i:02d}.jpg"
        path.write_bytes(encode(np.roll(big, 40 * i, axis=1)))
        paths.append(path)
    return paths


def wait_processed(base: str, job_id: str, at_least: int = 1) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        snap = snapshot(base, job_id)
        if snap["processed"] >= at_least:
            return snap
        time.sleep(0.1)
    pytest.fail("no photo was processed in time")


def test_a_job_is_found_again_after_a_reload_a_closed_tab_and_a_restart(tmp_path, context, astronaut, record_artifact):
    data_dir = tmp_path / "jobs"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve_on(data_dir, port)
    try:
        page = context.new_page()
        page.goto(base + "/")
        job_id = start_job(page, slow_photos(tmp_path, astronaut, 12), preset="balanced", review=False)
        assert page.url == f"{base}/jobs/{job_id}"
        wait_processed(base, job_id)
        page.reload()  # mid-job: the address finds the job
        page.wait_for_selector("#job:visible")
        page.wait_for_function("/photos processed/.test(document.getElementById('counts').textContent)")
        assert page.is_visible("#cancel")
        # The server stops mid-job and comes back on the same folder and port: the page waits, then goes on.
        assert snapshot(base, job_id)["state"] == "running", "the job must still be running here"
        stop_server(proc)
        page.wait_for_selector("#job-error:has-text('trying again')", timeout=20_000)
        shoot(page, "6-server-restarting-en", record_artifact)
        proc = serve_on(data_dir, port)
        wait_finished(page)
        assert page.inner_text("#job-title") == "Done" and page.is_hidden("#job-error")
        assert "12 photos redacted" in page.inner_text("#counts")
        page.close()
        # A closed tab: the start page lists the job; its link opens it.
        again = context.new_page()
        again.goto(base + "/")
        again.wait_for_selector("#recent:visible")
        assert "photo-00.jpg and 11 more" in again.inner_text("#recent-list")
        assert "done · 12 photos redacted" in again.inner_text("#recent-list")
        again.click("#recent-list a")
        again.wait_for_selector("#download:visible")
        assert again.url == f"{base}/jobs/{job_id}"
    finally:
        stop_server(proc)


def test_cancel_keeps_what_was_done(server, page, tmp_path, astronaut, record_artifact):
    page.goto(server + "/")
    job_id = start_job(page, slow_photos(tmp_path, astronaut, 10), preset="balanced", review=False)
    # Once the upload is over, the note under Cancel says what cancelling a running job keeps.
    page.wait_for_selector("#cancel-row:visible:has-text('already redacted stay in the result')", timeout=30_000)
    assert page.is_enabled("#cancel")
    wait_processed(server, job_id)
    page.click("#cancel")
    page.wait_for_selector("#download:visible", timeout=120_000)
    assert page.inner_text("#job-title") == "Cancelled"
    snap = snapshot(server, job_id)
    done, cancelled = snap["done"], snap["cancelled"]
    assert done >= 1 and cancelled >= 1 and done + cancelled == 10
    counts = page.inner_text("#counts")
    assert f"{done} photo{'s' if done > 1 else ''} redacted" in counts
    assert f"{cancelled} photo{'s' if cancelled > 1 else ''} not processed (cancelled)" in counts
    assert page.locator("li.file.cancelled").count() == cancelled
    shoot(page, "7-cancelled-en", record_artifact)
    with page.expect_download() as info:
        page.click("#download")
    names = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes())).namelist()
    assert len([n for n in names if n.endswith(".jpg")]) == done


def test_recent_jobs_drop_what_the_server_forgot(server, page, tmp_path, astronaut):
    (tmp_path / "a.jpg").write_bytes(encode(astronaut))
    ids = []
    for _ in range(2):
        page.goto(server + "/")
        ids.append(start_job(page, [tmp_path / "a.jpg"], review=False))
        wait_finished(page)
    page.click("#again")
    page.wait_for_selector("#recent:visible")
    assert page.evaluate("JSON.parse(localStorage.getItem('fg-jobs'))") == ids[::-1]
    assert page.locator("#recent-list li").count() == 2
    assert requests.delete(f"{server}/api/jobs/{ids[0]}", timeout=10).status_code == 204
    page.reload()
    page.wait_for_selector("#recent:visible")
    assert page.locator("#recent-list li").count() == 1
    assert page.evaluate("JSON.parse(localStorage.getItem('fg-jobs'))") == [ids[1]]
    page.goto(f"{server}/jobs/{ids[0]}")  # an old address: said plainly, with the way out
    page.wait_for_selector("#job-error:has-text('no longer exists')")
    assert page.inner_text("#job-title") == "This job is gone" and page.is_visible("#again")


def test_upload_progress_in_bytes_and_stopping_it(server, page, tmp_path, record_artifact):
    noise = np.random.default_rng(1).integers(0, 255, (1500, 1500, 3), np.uint8)
    photo = tmp_path / "noise.png"
    photo.write_bytes(encode(noise, ".png"))  # about 6.5 MB: at 2 MB/s the upload takes a few seconds
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 2_000_000})
    page.goto(server + "/")
    page.set_input_files("#file-input", [str(photo)])
    page.click("#start")
    page.wait_for_function("/^[1-9][0-9.]* MB of 6\\.[0-9] MB sent$/.test(document.getElementById('counts').textContent)",
                           timeout=20_000)
    assert page.inner_text("#job-title") == "Uploading…"
    assert 0 < int(page.get_attribute("#bar", "aria-valuenow")) < 100
    assert "nothing is kept" in page.inner_text("#cancel-row")
    shoot(page, "0-uploading-en", record_artifact)
    page.click("#cancel")
    page.wait_for_selector("#pick:visible")
    assert "The upload was stopped" in page.inner_text("#pick-error")
    assert page.locator("#picked li").count() == 1 and page.is_enabled("#start")
    assert page.url == server + "/"


def make_job(base: str, files: list[tuple[str, bytes]], **fields) -> str:
    """A job started through the API (as the page would), finished."""
    response = requests.post(base + "/api/jobs", files=[("images", (name, payload)) for name, payload in files],
                             data={"preset": "fast", **fields}, timeout=60)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 180
    while snapshot(base, job_id)["state"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.2)
    return job_id


def no_sideways_scrolling(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_screen_at_360_px_in_both_languages(server, browser, tmp_path, astronaut, scheme, record_artifact):
    job_id = make_job(server, [("group.jpg", encode(group_photo(astronaut))),
                               ("a-rather-long-file-name-from-a-phone-IMG_20240612_183455.jpg", encode(astronaut)),
                               ("trip.zip", make_zip({"day1/broken.jpg": b"not a photo", "day1/notes.txt": b"hi"}))],
                      review="1")
    for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
        context = browser.new_context(locale=locale, viewport={"width": 360, "height": 740}, color_scheme=scheme)
        context.add_init_script(f"localStorage.setItem('fg-jobs', JSON.stringify(['{job_id}']))")
        page = context.new_page()
        page.goto(server + "/")
        page.wait_for_selector("#recent:visible")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(17, 21, 29)" if scheme == "dark" else "rgb(245, 247, 251)")
        assert no_sideways_scrolling(page)
        shoot(page, f"360-start-{lang}-{scheme}", record_artifact)
        page.click("#recent-list a")
        page.wait_for_selector("#approve:visible")
        all_images_loaded(page, "#grid img")
        assert no_sideways_scrolling(page)
        shoot(page, f"360-review-{lang}-{scheme}", record_artifact)
        open_editor(page, "group.jpg")
        page.keyboard.press("Tab")  # choose the first box
        assert page.evaluate("(() => { const bar = document.querySelector('.ed-bar');"
                             " return bar.scrollWidth <= bar.clientWidth; })()"), "the toolbar wraps, never overflows"
        assert page.evaluate("document.getElementById('ed-stage').clientHeight") >= 300, "room for the photo"
        shoot(page, f"360-editor-{lang}-{scheme}", record_artifact, full_page=False)
        page.click(".ed-keys summary")
        assert page.evaluate("document.querySelector('.ed-foot').scrollWidth <= window.innerWidth")
        shoot(page, f"360-editor-keys-{lang}-{scheme}", record_artifact, full_page=False)
        context.close()
