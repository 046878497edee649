"""Review and correct through the API: regions, originals, re-rendering, approve, cancel, the CLI's --regions."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from app.pipeline.detect import FaceBox
from tests.helpers import encode, finish, post_job, result_zip

FACE = (190, 60, 100, 120)  # x, y, w, h: the astronaut's face
FALSE = (380, 380, 60, 60)  # a patch of her suit: what a detector might wrongly report
MISSED = (20, 300, 80, 80)  # a region the "detector" did not find (a person draws it)


def finds_face_and_suit(_options):
    """A detector that reports the face and one false region (which detector is not the point here)."""
    return lambda image: [FaceBox(*FACE, 0.95, "fake"), FaceBox(*FALSE, 0.4, "fake")]


def detail(pixels: np.ndarray, box) -> float:
    x, y, w, h = box
    return cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(pixels[y:y + h, x:x + w]), cv2.COLOR_BGR2GRAY),
                         cv2.CV_64F).var()


@pytest.fixture
def review_app(make_app):
    return make_app({"DETECTOR_FACTORY": finds_face_and_suit, "BOX_PADDING": 0.0})


def reviewed_job(app, client, astronaut) -> dict:
    snap = finish(app, post_job(client, [("portrait.png", encode(astronaut, ".png"))], review="1"))
    assert snap["state"] == "done" and snap["review"]["originals"] is True and snap["options"]["review"] is True
    return snap


def test_a_person_removes_a_false_region_adds_a_missed_one_and_approves(review_app, astronaut):
    client = review_app.test_client()
    job = reviewed_job(review_app, client, astronaut)
    base = f"/api/jobs/{job['id']}/files/0"
    detail_doc = client.get(base).get_json()
    assert detail_doc["reviewable"] and (detail_doc["width"], detail_doc["height"]) == (512, 512)
    assert [(r["box"], r["source"]) for r in detail_doc["regions"]] == [(list(FACE), "auto"), (list(FALSE), "auto")]
    original = client.get(base + "/original")
    assert original.status_code == 200 and original.headers["Cache-Control"] == "no-store"
    shown = cv2.imdecode(np.frombuffer(original.data, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(shown.astype(int) - astronaut).mean() < 3  # the upright original, untouched
    response = client.put(base + "/regions", json={"regions": [list(FACE), list(MISSED)]})
    assert response.status_code == 200, response.get_json()
    assert [(r["box"], r["source"], r["engine"]) for r in response.get_json()["regions"]] == \
        [(list(FACE), "auto", "fake"), (list(MISSED), "manual", "manual")]
    assert [r["box"] for r in response.get_json()["removed"]] == [list(FALSE)]
    redacted = cv2.imdecode(np.frombuffer(client.get(base + "/redacted").data, np.uint8), cv2.IMREAD_COLOR)
    assert detail(redacted, MISSED) < 0.2 * detail(astronaut, MISSED)  # the drawn region is hidden now
    assert np.abs(redacted[FALSE[1]:FALSE[1] + FALSE[3], FALSE[0]:FALSE[0] + FALSE[2]].astype(int)
                  - astronaut[FALSE[1]:FALSE[1] + FALSE[3], FALSE[0]:FALSE[0] + FALSE[2]]).mean() < 3  # restored
    assert client.post(f"/api/jobs/{job['id']}/approve").get_json()["review"]["originals"] is False
    assert client.get(base + "/original").status_code == 404
    assert client.put(base + "/regions", json={"regions": []}).status_code == 409  # originals gone
    archive = result_zip(client, job["id"])
    report = json.loads(archive.read("report.json"))["files"][0]
    assert [(d["box"], d["source"]) for d in report["detections"]] == [(list(FACE), "auto"), (list(MISSED), "manual")]
    assert [r["box"] for r in report["removed"]] == [list(FALSE)]
    zipped = cv2.imdecode(np.frombuffer(archive.read("portrait.png"), np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(zipped.astype(int) - redacted).mean() < 4  # the zip holds the reviewed photo (shown as JPEG)
    assert not list((review_app.extensions["faceguard"].folder(job["id"]).inputs).iterdir())


@pytest.mark.parametrize("body, status", [
    ({"regions": [[1, 2, 3]]}, 400), ({"regions": [[0, 0, 600, 10]]}, 400), ({"regions": [[0, 0, 0, 5]]}, 400),
    ({"regions": [["a", 0, 5, 5]]}, 400), ({"boxes": []}, 400), (None, 400)])
def test_malformed_boxes_are_refused(review_app, astronaut, body, status):
    client = review_app.test_client()
    job = reviewed_job(review_app, client, astronaut)
    response = client.put(f"/api/jobs/{job['id']}/files/0/regions", json=body)
    assert response.status_code == status and "error" in response.get_json()


def test_without_review_the_originals_go_at_once(make_app, astronaut):
    app = make_app({"DETECTOR_FACTORY": finds_face_and_suit})
    client = app.test_client()
    job = finish(app, post_job(client, [("a.png", encode(astronaut, ".png"))]))
    assert job["review"] == {"originals": False, "until": None}
    assert client.get(f"/api/jobs/{job['id']}/files/0").get_json()["reviewable"] is False
    assert client.get(f"/api/jobs/{job['id']}/files/0/original").status_code == 404
    assert client.put(f"/api/jobs/{job['id']}/files/0/regions", json={"regions": []}).status_code == 409
    assert client.get(f"/api/jobs/{job['id']}/files/9").status_code == 404


def test_the_originals_go_when_the_review_time_is_over_and_survive_a_restart_until_then(make_app, tmp_path, astronaut):
    settings = {"DETECTOR_FACTORY": finds_face_and_suit, "REVIEW_TTL": 600}
    app = make_app(settings)
    job = reviewed_job(app, app.test_client(), astronaut)
    app.extensions["faceguard"].shutdown()
    later = make_app(settings)  # a restart: the review goes on
    assert later.test_client().get(f"/api/jobs/{job['id']}/files/0/original").status_code == 200
    later.extensions["faceguard"].expire(now=time.time() + 601)
    assert later.test_client().get(f"/api/jobs/{job['id']}").get_json()["review"]["originals"] is False
    assert later.test_client().get(f"/api/jobs/{job['id']}/files/0/original").status_code == 404


def test_cancel_stops_a_running_job_and_keeps_what_was_done(make_app, astronaut):
    gate, seen = threading.Event(), []

    def held(_options):
        def detect(image):
            seen.append(1)
            gate.wait(60)
            return []
        return detect

    app = make_app({"WORKERS": 1, "DETECTOR_FACTORY": held})
    client = app.test_client()
    small = encode(cv2.resize(astronaut, (64, 64)))
    job = post_job(client, [(f"{i}.jpg", small) for i in range(6)]).get_json()
    deadline = time.monotonic() + 60
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    gate.set()
    snap = app.extensions["faceguard"].wait(job["id"], 60)
    states = [f["state"] for f in snap["files"]]
    assert snap["state"] == "cancelled" and states.count("cancelled") >= 4 and "pending" not in states
    assert snap["done"] == states.count("done") >= 1  # the photo that was running is kept
    names = sorted(n for n in result_zip(client, job["id"]).namelist() if n != "report.json")
    assert names == sorted(f["name"] for f in snap["files"] if f["state"] == "done")
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 409  # already ended


def test_the_cli_redacts_exactly_the_regions_of_an_edited_report(tmp_path, astronaut, monkeypatch):
    from app import cli
    from app.batch import BatchService

    monkeypatch.setattr(cli, "BatchService", lambda *a, **k: BatchService(*a, **{**k, "kind": "thread",
                                                                               "detector_factory": finds_face_and_suit}))
    source = tmp_path / "in"
    source.mkdir()
    cv2.imwrite(str(source / "a.png"), astronaut)
    assert main([str(source), "-o", str(tmp_path / "first")]) == 0
    report = json.loads((tmp_path / "first" / "report.json").read_text())
    file = report["files"][0]
    kept = [d for d in file["detections"] if d["score"] > 0.5]  # the face; the suit's region goes
    file["detections"] = list(kept)
    file["detections"].append({"box": list(MISSED), "engine": "manual", "score": 1.0, "source": "manual"})
    (tmp_path / "edited.json").write_text(json.dumps(report))
    assert main([str(source), "-o", str(tmp_path / "second"), "--regions", str(tmp_path / "edited.json")]) == 0
    again = json.loads((tmp_path / "second" / "report.json").read_text())["files"][0]
    assert sorted(d["box"] for d in again["detections"]) == sorted([kept[0]["box"], list(MISSED)])
    out = cv2.imread(str(tmp_path / "second" / "a.png"))
    assert detail(out, MISSED) < 0.2 * detail(astronaut, MISSED)
    x, y, w, h = FALSE
    assert np.array_equal(out[y:y + h, x:x + w], astronaut[y:y + h, x:x + w])  # PNG: exactly the original


def _edited_run(tmp_path, monkeypatch, image, name: str, detections: list) -> tuple[int, dict | None, Path]:
    """Run the CLI on one photo with a hand-written report's regions; return its exit code, file entry and output."""
    from app import cli
    from app.batch import BatchService

    monkeypatch.setattr(cli, "BatchService", lambda *a, **k: BatchService(
        *a, **{**k, "kind": "thread", "detector_factory": finds_face_and_suit}))
    source = tmp_path / "in"
    source.mkdir(exist_ok=True)
    cv2.imwrite(str(source / name), image)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({"files": [{"name": name, "state": "done", "detections": detections}]}))
    code = main([str(source), "-o", str(tmp_path / "out"), "--regions", str(edited)])
    report = tmp_path / "out" / "report.json"
    entry = json.loads(report.read_text())["files"][0] if report.exists() else None
    return code, entry, tmp_path / "out" / name


@pytest.mark.parametrize("name", ["a.png", "a.jpg"])  # a JPEG is redacted in its blocks, a PNG in its pixels
def test_a_region_grown_past_the_photos_edge_is_clipped_and_still_hides_the_face(tmp_path, monkeypatch, astronaut,
                                                                                name):
    grown = [-20, -40.5, 330, 260.2]  # left of and above the photo, in fractions of a pixel
    code, entry, out = _edited_run(tmp_path, monkeypatch, astronaut, name,
                                   [{"box": grown, "engine": "manual", "score": 1.0, "source": "manual"}])
    assert code == 0 and entry["state"] == "done"
    assert [d["box"] for d in entry["detections"]] == [[0, 0, 310, 220]]  # clipped, whole pixels
    original = cv2.imread(str(tmp_path / "in" / name))
    assert detail(cv2.imread(str(out)), FACE) < 0.1 * detail(original, FACE)


def test_a_region_wholly_outside_the_photo_fails_it_and_a_malformed_box_stops_the_run(tmp_path, monkeypatch,
                                                                                        astronaut):
    code, entry, out = _edited_run(tmp_path, monkeypatch, astronaut, "a.png", [{"box": [600, 10, 50, 50]}])
    assert code == 1 and entry["state"] == "failed" and entry["code"] == "regions"
    assert "512x512" in entry["error"] and not out.exists()
    (tmp_path / "out").rename(tmp_path / "out-first")
    for box in ([10, 10, 0, 50], [10, 10, "50", 50], [10, 10, 50], [10, float("nan"), 5, 5]):
        code, entry, out = _edited_run(tmp_path, monkeypatch, astronaut, "a.png", [{"box": box}])
        assert code == 2 and entry is None and not (tmp_path / "out").exists()  # refused before any work
