"""The page in a real headless Chromium, against a real server on 127.0.0.1."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import cv2
import pytest

from tests.browsing import (  # skips this module without Chromium
    ARTIFACTS,
)
from tests.helpers import encode, make_zip, start_server, stop_server

pytestmark = pytest.mark.slow  # real servers and browsers: the slow tier


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US", viewport={"width": 900, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def photos(tmp_path, astronaut) -> list[Path]:
    group = cv2.hconcat([cv2.resize(astronaut, (300, 300))] * 3)
    paths = [tmp_path / "portrait.jpg", tmp_path / "合照.jpg", tmp_path / "trip.zip"]
    paths[0].write_bytes(encode(astronaut))
    paths[1].write_bytes(encode(group))
    paths[2].write_bytes(make_zip({"day1/beach.png": encode(astronaut, ".png"), "day1/broken.jpg": b"not a photo",
                                   "__MACOSX/day1/._beach.png": b"\0\5\26\7"}))  # as Finder zips a folder
    return paths


def test_upload_progress_previews_download(server, page, tmp_path, astronaut, record_artifact):
    page.goto(server + "/")
    page.set_input_files("#file-input", [str(p) for p in photos(tmp_path, astronaut)])
    assert page.locator("#picked li").count() == 3
    assert "合照.jpg" in page.locator("#picked").inner_text()
    page.uncheck("#review-option")  # straight to the result: before/after previews, no review
    page.click("#start")
    page.wait_for_selector("#download:visible", timeout=120_000)
    assert page.get_attribute("#bar", "aria-valuenow") == "100"
    assert page.inner_text("#job-title") == "Done"
    # a failed photo is never counted as done
    assert page.inner_text("#counts") == ("3 photos redacted · 1 could not be processed · "
                                          "1 desktop or archive metadata file left out · 5 faces hidden")
    broken = page.locator("li.file.failed")
    assert broken.count() == 1 and "day1/broken.jpg" in broken.inner_text()
    assert "not a readable image" in broken.locator(".why").inner_text()
    metadata = page.locator("li.file.skipped.metadata")  # listed, in the muted colour, not the alarming one
    assert metadata.count() == 1 and "__MACOSX/day1/._beach.png" in metadata.inner_text()
    assert metadata.locator(".why").evaluate("e => getComputedStyle(e).color") != \
        broken.locator(".why").evaluate("e => getComputedStyle(e).color")
    # before/after for photos picked directly, after only for zip members; every image really loads
    page.wait_for_function("[...document.querySelectorAll('.preview img')].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator(".preview img").count() == 2 + 2 + 1
    with page.expect_download() as info:
        page.click("#download")
    zf = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes()))
    assert sorted(zf.namelist()) == sorted(["portrait.jpg", "合照.jpg", "day1/beach.png", "report.json"])
    report = json.loads(zf.read("report.json"))
    assert {f["name"]: f["faces"] for f in report["files"] if f["state"] == "done"} == \
        {"portrait.jpg": 1, "合照.jpg": 3, "day1/beach.png": 1}
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser-finished-job.png"
    page.screenshot(path=str(shot), full_page=True)
    record_artifact("screenshot of the finished page", shot)
    page.click("#delete")
    page.wait_for_selector("#pick:visible")
    assert "deleted" in page.inner_text("#pick-error")


def test_language_switch_and_chinese_browser(server, browser, page):
    page.goto(server + "/")
    assert page.inner_text("h1") == "Face Privacy Guard"
    page.click("#lang")
    assert page.inner_text("h1") == "人脸隐私卫士" and page.inner_text("#start") == "遮住人脸"
    page.click("#lang")
    assert page.inner_text("#start") == "Hide the faces"
    context = browser.new_context(locale="zh-CN")
    chinese = context.new_page()
    chinese.goto(server + "/")
    assert chinese.inner_text("h1") == "人脸隐私卫士"  # follows the browser's language
    context.close()


def test_an_upload_with_no_photos_explains_itself(server, page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    page.goto(server + "/")
    page.set_input_files("#file-input", [str(notes)])
    page.click("#start")
    page.wait_for_selector("#pick-error:visible")
    assert "Nothing you chose is a photo" in page.inner_text("#pick-error")
    assert page.is_enabled("#start"), "the person can fix the choice and try again"


def test_oversize_upload_is_refused_in_plain_words(tmp_path, page, astronaut):
    proc, base = start_server(tmp_path / "jobs", MAX_CONTENT_LENGTH=50_000)
    try:
        big = tmp_path / "big.png"
        big.write_bytes(encode(astronaut, ".png"))
        page.goto(base + "/")
        page.set_input_files("#file-input", [str(big)])
        page.click("#start")
        page.wait_for_selector("#pick-error:visible")
        assert "more than the server accepts" in page.inner_text("#pick-error")
        page.click("#lang")
        assert "超过服务器上限" in page.inner_text("#pick-error")
    finally:
        stop_server(proc)


def test_a_dead_server_is_reported(server, page, tmp_path, astronaut):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(encode(astronaut))
    page.goto(server + "/")
    page.set_input_files("#file-input", [str(photo)])
    page.route("**/api/jobs", lambda route: route.abort())  # the server is gone
    page.click("#start")
    page.wait_for_selector("#pick-error:visible")
    assert "Could not reach the Face Privacy Guard server" in page.inner_text("#pick-error")
    assert page.is_enabled("#start") and page.locator("#picked li").count() == 1


def test_keyboard_and_phone_sized_window(server, browser, tmp_path, astronaut):
    context = browser.new_context(locale="en-US", viewport={"width": 360, "height": 740})
    page = context.new_page()
    page.on("filechooser", lambda chooser: None)  # turns chooser interception on before any key is pressed
    page.goto(server + "/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling"
    page.keyboard.press("Tab")  # the title (a link to the start page) and the language switch come first
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "file-input"  # the real input, inside the drop zone
    assert page.evaluate("getComputedStyle(document.getElementById('drop')).borderColor") == "rgb(36, 86, 214)"
    photo = tmp_path / "p.jpg"
    photo.write_bytes(encode(astronaut))
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(photo))
    assert page.locator("#picked li").count() == 1
    page.uncheck("#review-option")
    page.focus("#start")
    page.keyboard.press("Enter")
    page.wait_for_selector("#download:visible", timeout=60_000)
    assert page.evaluate("document.activeElement.id") == "download", "focus moves to the result"
    context.close()


TOKEN = "browser-test-Token_0123456789"


@pytest.fixture
def guarded(tmp_path):
    """A server that asks for a token on 127.0.0.1 too, as FACEGUARD_TOKEN makes it."""
    proc, base = start_server(tmp_path / "jobs", TOKEN=TOKEN)
    yield base
    stop_server(proc)


def test_a_token_in_the_address_runs_a_job(guarded, page, tmp_path, astronaut):
    page.goto(guarded + f"/#token={TOKEN}")
    page.wait_for_selector("#pick:visible")
    assert page.evaluate("location.hash") == "", "the token leaves the address bar"
    assert page.is_hidden("#access")
    page.set_input_files("#file-input", [str(p) for p in photos(tmp_path, astronaut)])
    page.click("#start")  # with the review (the default)
    page.wait_for_selector("#approve:visible", timeout=120_000)
    assert page.inner_text("#job-title") == "Done" and "3 photos redacted" in page.inner_text("#counts")
    # thumbnails and the original are <img> tags: the browser sends the page's cookie, not a header
    page.wait_for_function("[...document.querySelectorAll('#grid img')].every(i => i.src && i.complete && i.naturalWidth > 0)")
    assert page.locator("#grid img").count() == 3
    page.click("#grid li:first-child button")
    page.wait_for_function("(() => { const i = document.getElementById('ed-img');"
                           " return i.src.endsWith('/original') && i.complete && i.naturalWidth > 0; })()")
    page.keyboard.press("Escape")
    with page.expect_download() as info:
        page.click("#approve")  # an API call with the header, then the download with the cookie
    assert "report.json" in zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes())).namelist()
    page.reload()  # the tab keeps the token: no second question, and the job's address shows the job
    page.wait_for_selector("#download:visible")
    assert page.is_hidden("#access") and page.is_hidden("#approve"), "approved: the review is over"


def test_without_the_token_the_page_asks_for_it(guarded, page, tmp_path, astronaut, record_artifact):
    page.goto(guarded + "/")
    page.wait_for_selector("#access:visible")
    assert page.is_hidden("#pick") and page.evaluate("document.activeElement.id") == "token-input"
    ARTIFACTS.mkdir(exist_ok=True)
    for lang, heading in (("en", "This server asks for its access token"), ("zh", "此服务器需要访问令牌")):
        if lang == "zh":
            page.click("#lang")
        assert page.inner_text("#access-title") == heading
        shot = ARTIFACTS / f"browser-token-prompt-{lang}.png"
        page.screenshot(path=str(shot), full_page=True)
        record_artifact(f"screenshot of the token prompt ({lang})", shot)
    page.fill("#token-input", "not-the-token")
    page.press("#token-input", "Enter")
    page.wait_for_selector("#access-error:visible")
    assert "这不是此服务器的访问令牌" in page.inner_text("#access-error")
    page.click("#lang")
    assert "not this server's access token" in page.inner_text("#access-error")
    shot = ARTIFACTS / "browser-token-wrong-en.png"
    page.screenshot(path=str(shot), full_page=True)
    record_artifact("screenshot of a wrong token", shot)
    page.fill("#token-input", TOKEN)
    page.click("#token-submit")
    page.wait_for_selector("#pick:visible")
    assert page.is_hidden("#access") and page.is_hidden("#access-error")
    # A token the server stops taking (a restart makes a new one): asked again, the photos still chosen.
    photo = tmp_path / "p.jpg"
    photo.write_bytes(encode(astronaut))
    page.set_input_files("#file-input", [str(photo)])
    page.route("**/api/jobs", lambda route: route.fulfill(status=401, json={"error": "token"}))
    page.click("#start")
    page.wait_for_selector("#access:visible")
    assert "no longer accepts the access token" in page.inner_text("#access-error")
    page.unroute("**/api/jobs")
    page.fill("#token-input", TOKEN)
    page.click("#token-submit")
    page.wait_for_selector("#pick:visible")
    assert page.locator("#picked li").count() == 1 and page.is_enabled("#start")
    page.evaluate("sessionStorage.setItem('fg-token', 'stale')")
    page.reload()
    page.wait_for_selector("#access:visible")
    assert "no longer accepts the access token" in page.inner_text("#access-error")


def test_before_and_after_are_matched_by_index_not_by_name(server, page, tmp_path, astronaut):
    """Two IMG_0001.jpg from different folders: each "before" is its own photo (the server renames one)."""
    square, wide = tmp_path / "a" / "IMG_0001.jpg", tmp_path / "b" / "IMG_0001.jpg"
    for path, pixels in ((square, astronaut), (wide, cv2.resize(astronaut, (900, 300)))):
        path.parent.mkdir()
        path.write_bytes(encode(pixels))
    page.goto(server + "/")
    page.set_input_files("#file-input", [str(square), str(wide)])
    page.uncheck("#review-option")
    page.click("#start")
    page.wait_for_selector("#download:visible", timeout=120_000)
    page.wait_for_function("[...document.querySelectorAll('.preview img')].every(i => i.complete && i.naturalWidth > 0)")
    shapes = page.evaluate("""[...document.querySelectorAll('li.file')].map(li => [
        li.querySelector('.name').textContent,
        ...[...li.querySelectorAll('.preview img')].map(i => +(i.naturalWidth / i.naturalHeight).toFixed(1))])""")
    assert shapes == [["IMG_0001.jpg", 1.0, 1.0], ["IMG_0001 (2).jpg", 3.0, 3.0]]
