"""Every endpoint and every error status of the JSON API, through the Flask test client."""
from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from tests.helpers import encode, finish, make_zip, post_job, result_zip


def test_page_is_served_with_its_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and b"Face Privacy Guard" in page.data
    for asset in ("/static/app.js", "/static/app.css"):
        with client.get(asset) as response:  # a file response holds the file open until closed
            assert response.status_code == 200
    assert b"http://" not in page.data and b"https://" not in page.data  # no CDN


def test_upload_poll_download(app, client, astronaut):
    response = post_job(client, [("合照.jpg", encode(astronaut)), ("broken.jpg", b"\xff\xd8\xff garbage")])
    body = response.get_json()
    assert set(body) == {"id", "status_url", "result_url"} and len(body["id"]) >= 32
    snapshot = finish(app, response)
    assert snapshot["state"] == "done"
    assert (snapshot["total"], snapshot["processed"], snapshot["failed"], snapshot["faces"]) == (2, 2, 1, 1)
    polled = client.get(body["status_url"]).get_json()
    assert polled["files"] == [
        {"name": "合照.jpg", "state": "done", "faces": 1, "error": None, "code": None},
        {"name": "broken.jpg", "state": "failed", "faces": 0, "error": polled["files"][1]["error"], "code": "unreadable"},
    ]
    assert "not a readable image" in polled["files"][1]["error"]
    zf = result_zip(client, body["id"])
    assert sorted(zf.namelist()) == ["report.json", "合照.jpg"]  # no output for the failed file
    report = json.loads(zf.read("report.json"))
    done, failed = report["files"]
    assert (done["name"], done["state"], done["width"], done["height"]) == ("合照.jpg", "done", 512, 512)
    assert len(done["regions"]) == 1 and len(done["regions"][0]) == 4
    assert (failed["state"], failed["regions"]) == ("failed", []) and failed["error"]
    out = cv2.imdecode(np.frombuffer(zf.read("合照.jpg"), np.uint8), cv2.IMREAD_COLOR)
    x, y, w, h = done["regions"][0]
    assert np.abs(out[y:y + h, x:x + w].astype(int) - astronaut[y:y + h, x:x + w]).mean() > 8


@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
def test_methods_and_outline_are_recorded(app, client, astronaut, method):
    snapshot = finish(app, post_job(client, [("a.png", encode(astronaut, ".png"))], method=method, boxes="1",
                                    preset="fast"))
    assert snapshot["options"] == {"method": method, "boxes": True, "preset": "fast",
                                   "engines": ["centerface", "mediapipe"], "review": False}
    report = json.loads(result_zip(client, snapshot["id"]).read("report.json"))
    assert (report["method"], report["boxes"], report["preset"]) == (method, True, "fast")
    assert report["files"][0]["detections"][0]["engine"] == "centerface+mediapipe"
    assert 0.03 < report["files"][0]["redacted_share"] < 0.15  # one face of a 512x512 portrait


def test_zip_keeps_folders_unicode_and_same_names(app, client, astronaut):
    jpg = encode(astronaut)
    archive = make_zip({"trip/day1/a.jpg": jpg, "trip/day2/a.jpg": jpg, "家族/合照.jpg": jpg,
                        "notes.txt": b"not a photo", "__MACOSX/trip/._a.jpg": b"junk"})
    snapshot = finish(app, post_job(client, [("photos.zip", archive), ("a.jpg", jpg), ("a.jpg", jpg)]))
    assert (snapshot["total"], snapshot["failed"], snapshot["skipped"]) == (5, 0, 2)
    zf = result_zip(client, snapshot["id"])
    assert sorted(zf.namelist()) == sorted(["trip/day1/a.jpg", "trip/day2/a.jpg", "家族/合照.jpg",
                                            "a.jpg", "a (2).jpg", "report.json"])
    report = json.loads(zf.read("report.json"))
    assert {f["name"]: f["state"] for f in report["files"]}["notes.txt"] == "skipped"


def test_zip_slip_members_are_refused(app, client, astronaut, tmp_path):
    archive = make_zip({"../evil.jpg": encode(astronaut), "/abs.jpg": encode(astronaut), "ok.jpg": encode(astronaut)})
    snapshot = finish(app, post_job(client, [("x.zip", archive)]))
    states = {f["name"]: (f["state"], f["error"]) for f in snapshot["files"]}
    assert states["ok.jpg"][0] == "done"
    assert [s for s, _ in states.values()].count("failed") == 2
    assert all("Unsafe path" in e for s, e in states.values() if s == "failed")
    assert not list(tmp_path.rglob("evil.jpg")) and not list(tmp_path.rglob("abs.jpg"))


def test_errors_are_json_with_the_right_status(client, astronaut):
    cases = [
        (client.post("/api/jobs", data={}, content_type="multipart/form-data"), 400, "No files"),
        (post_job(client, [("a.jpg", encode(astronaut))], method="smudge"), 400, "Unknown method"),
        (post_job(client, [("a.jpg", encode(astronaut))], boxes="maybe"), 400, "boxes"),
        (post_job(client, [("a.jpg", encode(astronaut))], preset="sloppy"), 400, "Unknown preset"),
        (post_job(client, [("notes.txt", b"hello")]), 415, "Nothing in the upload"),
        (post_job(client, [("empty.zip", make_zip({}))]), 415, "Nothing in the upload"),
        (client.get("/api/jobs/" + "0" * 32), 404, "No such job"),
        (client.get("/api/jobs/" + "0" * 32 + "/result"), 404, "No such job"),
        (client.delete("/api/jobs/" + "0" * 32), 404, "No such job"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.data
        assert words in response.get_json()["error"]


def test_too_large_upload_is_413(make_app, tmp_path):
    app = make_app({"DATA_DIR": str(tmp_path), "MAX_CONTENT_LENGTH": 10_000, "EXECUTOR": "thread"})
    response = post_job(app.test_client(), [("big.jpg", b"\0" * 20_000)])
    assert response.status_code == 413 and "larger than this server accepts" in response.get_json()["error"]
    assert list(tmp_path.iterdir()) == []
    app.extensions["faceguard"].shutdown()


def test_result_is_409_until_done_and_delete_removes_everything(make_app, tmp_path, astronaut):
    gate = threading.Event()

    def gated_detector(_options):  # holds every image until the test opens the gate
        return lambda image: gate.wait(60) and []

    app = make_app({"DATA_DIR": str(tmp_path), "WORKERS": 1, "EXECUTOR": "thread",
                      "DETECTOR_FACTORY": gated_detector})
    client = app.test_client()
    job_id = post_job(client, [("a.jpg", encode(astronaut))]).get_json()["id"]
    response = client.get(f"/api/jobs/{job_id}/result")
    assert response.status_code == 409 and "still" in response.get_json()["error"]
    assert client.get(f"/api/jobs/{job_id}").get_json()["state"] in ("queued", "running")
    gate.set()
    assert app.extensions["faceguard"].wait(job_id, 60)["state"] == "done"
    assert client.get(f"/api/jobs/{job_id}/result").status_code == 200
    assert (tmp_path / job_id).is_dir()
    assert client.delete(f"/api/jobs/{job_id}").status_code == 204
    assert not (tmp_path / job_id).exists()
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    app.extensions["faceguard"].shutdown()


def test_exif_gps_is_gone_and_orientation_applied(app, client, astronaut):
    import io

    from PIL import Image

    from tests.helpers import jpeg_with_exif

    landscape = cv2.resize(astronaut, (400, 300))
    sideways = cv2.rotate(landscape, cv2.ROTATE_90_COUNTERCLOCKWISE)  # stored turned; EXIF 6 turns it back
    snapshot = finish(app, post_job(client, [("phone.jpg", jpeg_with_exif(sideways, 6))]))
    data = result_zip(client, snapshot["id"]).read("phone.jpg")
    assert b"Exif" not in data and b"FaceGuardTestCam" not in data
    image = Image.open(io.BytesIO(data))
    assert image.size == (400, 300) and not image.getexif()
    assert snapshot["faces"] == 1  # the face is found because the photo was turned upright first


def test_two_apps_are_independent(make_app, tmp_path):
    one = make_app({"DATA_DIR": str(tmp_path / "1"), "EXECUTOR": "thread"})
    two = make_app({"DATA_DIR": str(tmp_path / "2"), "EXECUTOR": "thread"})
    assert one.extensions["faceguard"].registry is not two.extensions["faceguard"].registry
    for a in (one, two):
        a.extensions["faceguard"].shutdown()


def test_preview_of_a_redacted_photo(app, client, astronaut):
    big = cv2.resize(astronaut, (1024, 1024))
    snap = finish(app, post_job(client, [("big.png", encode(big, ".png")), ("bad.jpg", b"nope")], preset="fast"))
    response = client.get(f"/api/jobs/{snap['id']}/files/0/preview")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    thumb = cv2.imdecode(np.frombuffer(response.data, np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape == (480, 480, 3)
    face = cv2.resize(astronaut, (480, 480))[90:190, 170:260]  # the face, at preview scale
    assert np.abs(thumb[90:190, 170:260].astype(int) - face).mean() > 8  # the preview is redacted too
    for path in (f"/api/jobs/{snap['id']}/files/1/preview", f"/api/jobs/{snap['id']}/files/9/preview",
                 "/api/jobs/" + "0" * 32 + "/files/0/preview"):
        assert client.get(path).status_code == 404


def test_a_job_behind_another_shows_queued_until_its_turn(make_app, astronaut):
    gate = threading.Event()

    def held(_options):  # every photo waits at the gate: the first job holds the only worker
        return lambda image: gate.wait(60) and []

    app = make_app({"WORKERS": 1, "DETECTOR_FACTORY": held})
    client = app.test_client()
    small = encode(cv2.resize(astronaut, (64, 64)))
    first = post_job(client, [(f"{i}.jpg", small) for i in range(3)]).get_json()
    second = post_job(client, [("later.jpg", small)]).get_json()
    assert client.get(first["status_url"]).get_json()["state"] == "running"
    assert client.get(second["status_url"]).get_json()["state"] == "queued"  # its photo has not reached a worker
    gate.set()
    assert app.extensions["faceguard"].wait(second["id"], 60)["state"] == "done"
    assert app.extensions["faceguard"].wait(first["id"], 60)["state"] == "done"
