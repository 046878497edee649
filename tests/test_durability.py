"""Nothing is lost: SIGKILL mid-job and restart, expiry, a torn journal, a results folder that cannot be written."""
from __future__ import annotations

import errno
import io
import json
import shutil
import signal
import threading
import time
import zipfile

import cv2
import pytest
import requests

from app import service
from app.folder import JobFolder
from app.pipeline.presets import build_detector
from tests.helpers import (
    encode,
    finish,
    post_job,
    result_zip,
    start_server,
    stop_server,
    wait_done,
)


@pytest.mark.slow  # a real server killed with SIGKILL
def test_sigkill_mid_job_then_restart_resumes(tmp_path, astronaut):
    data = tmp_path / "jobs"
    proc, base = start_server(data)
    photo = encode(cv2.resize(astronaut, (400, 400)))
    first = requests.post(base + "/api/jobs", files=[("images", ("early.jpg", photo))], timeout=60).json()
    assert wait_done(base, first)["state"] == "done"
    files = [("images", (f"p{i:02d}.jpg", photo)) for i in range(60)]
    job = requests.post(base + "/api/jobs", files=files, data={"preset": "thorough"}, timeout=60).json()
    deadline = time.monotonic() + 120
    while (snap := requests.get(base + job["status_url"], timeout=10).json())["processed"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert snap["state"] == "running" and snap["processed"] < 60, "the kill must land mid-job"

    proc, base = start_server(data)
    try:
        final = wait_done(base, job)
        assert (final["state"], final["processed"], final["failed"], final["faces"]) == ("done", 60, 0, 60)
        zf = zipfile.ZipFile(io.BytesIO(requests.get(base + job["result_url"], timeout=60).content))
        names = zf.namelist()
        assert sorted(names) == sorted([f"p{i:02d}.jpg" for i in range(60)] + ["report.json"])
        assert len(names) == len(set(names)), "a file appears twice"
        report = json.loads(zf.read("report.json"))
        assert [f["state"] for f in report["files"]] == ["done"] * 60
        assert all(len(f["regions"]) == 1 for f in report["files"])
        early = requests.get(base + first["result_url"], timeout=60)
        assert early.status_code == 200 and "early.jpg" in zipfile.ZipFile(io.BytesIO(early.content)).namelist()
        assert not list((data / job["id"] / "inputs").iterdir()), "originals must be gone once processed"
    finally:
        stop_server(proc)


def test_expired_jobs_are_deleted_and_a_restart_cleans_them(make_app, tmp_path, astronaut):
    app = make_app({"DATA_DIR": str(tmp_path), "RESULT_TTL": 3600})
    guard, client = app.extensions["faceguard"], app.test_client()
    job_id = finish(app, post_job(client, [("a.jpg", encode(astronaut))], preset="fast"))["id"]
    assert guard.expire(now=time.time() + 60) == []
    assert (tmp_path / job_id).is_dir()
    guard.shutdown()

    later = make_app({"DATA_DIR": str(tmp_path), "RESULT_TTL": 3600})  # a restart finds it, still fresh
    assert later.test_client().get(f"/api/jobs/{job_id}").get_json()["state"] == "done"
    later.extensions["faceguard"].shutdown()

    expired = make_app({"DATA_DIR": str(tmp_path), "RESULT_TTL": 0})  # expired while it was down
    assert not (tmp_path / job_id).exists()
    assert expired.test_client().get(f"/api/jobs/{job_id}").status_code == 404
    expired.extensions["faceguard"].shutdown()


def test_a_delete_as_soon_as_the_job_is_done_leaves_no_folder(make_app, tmp_path, astronaut, monkeypatch):
    """The job shows done before its last job.json is written; a delete then must wait for that write.

    The folder's removal is slowed (contents first, then a pause, then the folder itself, as rmtree does):
    had the write slipped into the pause, the folder would outlive its job.
    """
    saving, emptied = threading.Event(), threading.Event()
    real_save = service.Journal.save

    def slow_save(journal, job):
        if job.state.value == "done":
            saving.set()
            emptied.wait(1)  # lets a delete that does not wait empty the folder first
        real_save(journal, job)

    def slow_remove(folder):
        for child in folder.path.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        emptied.set()
        time.sleep(0.2)
        try:
            folder.path.rmdir()
        except OSError:  # what rmtree(ignore_errors=True) does with a folder written to meanwhile
            pass

    monkeypatch.setattr(service.Journal, "save", slow_save)
    monkeypatch.setattr(JobFolder, "remove", slow_remove)
    app = make_app({"DATA_DIR": str(tmp_path), "EXECUTOR": "thread",
                    "DETECTOR_FACTORY": lambda _options: (lambda image: [])})
    client = app.test_client()
    job_id = post_job(client, [("a.jpg", encode(astronaut))]).get_json()["id"]
    assert saving.wait(60), "the job never ended"
    assert client.get(f"/api/jobs/{job_id}").get_json()["state"] == "done"
    assert client.delete(f"/api/jobs/{job_id}").status_code == 204
    assert not (tmp_path / job_id).exists()
    app.extensions["faceguard"].shutdown()


def test_a_torn_journal_line_means_that_file_is_redone(make_app, tmp_path, astronaut):
    app = make_app({"DATA_DIR": str(tmp_path)})
    job_id = finish(app, post_job(app.test_client(), [("a.jpg", encode(astronaut)), ("b.jpg", encode(astronaut))],
                                  preset="fast"))["id"]
    app.extensions["faceguard"].shutdown()
    journal = app.extensions["faceguard"].journal
    manifest = json.loads((tmp_path / job_id / "job.json").read_text())
    manifest["state"] = "running"  # as written at creation, before the job ended
    for entry in manifest["files"]:
        entry.update(state="pending", regions=[], detections=[], width=None, height=None)
    (tmp_path / job_id / "job.json").write_text(json.dumps(manifest))
    lines = JobFolder(tmp_path / job_id).outcomes.read_text().splitlines()
    assert len(lines) == 2
    JobFolder(tmp_path / job_id).outcomes.write_text(lines[0] + "\n" + lines[1][:20])  # killed mid-write
    reloaded = journal.load(JobFolder(tmp_path / job_id))
    assert sorted(f.state.value for f in reloaded.files) == ["done", "pending"]
    assert sum(len(f.regions) for f in reloaded.files) == 1


def gated_app(make_app, tmp_path, gate: threading.Event):
    def factory(options):  # holds every image until the test opens the gate
        real = build_detector("fast")
        return lambda image: gate.wait(60) and real(image)
    return make_app({"DATA_DIR": str(tmp_path), "EXECUTOR": "thread", "DETECTOR_FACTORY": factory})


def test_unwritable_outputs_fail_each_file_with_a_clear_error(make_app, tmp_path, astronaut):
    gate = threading.Event()
    app = gated_app(make_app, tmp_path, gate)
    client = app.test_client()
    job_id = post_job(client, [("a.jpg", encode(astronaut)), ("b.jpg", encode(astronaut))]).get_json()["id"]
    JobFolder(tmp_path / job_id).outputs.rmdir()
    JobFolder(tmp_path / job_id).outputs.write_text("not a folder")  # as if the folder could not be written
    gate.set()
    snap = app.extensions["faceguard"].wait(job_id, 60)
    assert (snap["state"], snap["failed"]) == ("done", 2)
    assert all("could not be written" in f["error"] for f in snap["files"])
    assert sorted(result_zip(client, job_id).namelist()) == ["report.json"]  # nothing unredacted, nothing at all
    assert client.get("/").status_code == 200
    app.extensions["faceguard"].shutdown()


def test_a_full_disk_while_saving_results_fails_the_job(make_app, tmp_path, astronaut, monkeypatch):
    def full_disk(job):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(service, "write_result_zip", full_disk)
    app = make_app({"DATA_DIR": str(tmp_path)})
    client = app.test_client()
    snap = finish(app, post_job(client, [("a.jpg", encode(astronaut))], preset="fast"))
    assert snap["state"] == "failed" and "disk is full" in snap["error"]
    response = client.get(f"/api/jobs/{snap['id']}/result")
    assert response.status_code == 409 and "disk is full" in response.get_json()["error"]
    app.extensions["faceguard"].shutdown()
