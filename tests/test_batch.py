"""The batch service under the job service: worker processes on real photos, a worker that dies, a deleted job."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.batch import BatchService
from app.jobs import FileEntry, Job
from app.pipeline.process import Options
from app.service import JobService
from tests.helpers import encode


def _crash_on_red(image: np.ndarray) -> list:
    if image[:, :, 2].mean() > 200 > 50 > image[:, :, :2].mean():
        os._exit(1)  # as the kernel's OOM killer or a crashing library would end the worker
    return []


def crash_on_red(_options: Options):
    """A detector factory (importable, so worker processes can use it) whose detector dies on red photos."""
    return _crash_on_red


def make_job(folder: Path, photos: dict[str, bytes], job_id: str = "job") -> Job:
    (folder / "inputs").mkdir(parents=True)
    entries = []
    for index, (name, data) in enumerate(photos.items()):
        source = folder / "inputs" / f"{index}{Path(name).suffix}"
        source.write_bytes(data)
        entries.append(FileEntry(index, name, source, folder / "outputs" / f"{index}{Path(name).suffix}"))
    return Job(job_id, folder, entries, {})


def jobs_on(batch: BatchService, options: Options = Options()) -> JobService:
    """Jobs run on `batch` with fixed options, kept in memory only, with nothing to publish at the end."""
    return JobService(batch, options_for=lambda _job: options, publish=lambda _job: None, durable=False)


def run(service: BatchService, job: Job, options: Options = Options()) -> dict:
    jobs = jobs_on(service, options)
    jobs.start(job)
    snapshot = jobs.wait(job.id, 180)
    assert snapshot["state"] == "done", snapshot
    return {f["name"]: f for f in snapshot["files"]}


@pytest.mark.slow  # worker processes
def test_worker_processes_redact_real_photos(tmp_path, astronaut):
    service = BatchService(2, kind="process")
    try:
        photos = {f"{i}.jpg": encode(astronaut) for i in range(3)} | {"broken.jpg": b"not a photo"}
        files = run(service, make_job(tmp_path, photos), Options(preset="balanced"))
        assert [files[f"{i}.jpg"]["faces"] for i in range(3)] == [1, 1, 1]
        assert files["broken.jpg"]["state"] == "failed" and "not a readable image" in files["broken.jpg"]["error"]
        out = cv2.imread(str(tmp_path / "outputs" / "0.jpg"))
        face = (slice(80, 170), slice(185, 265))  # the astronaut's face (as in test_process)
        assert np.abs(out[face].astype(int) - astronaut[face]).mean() > 8
        assert cv2.Laplacian(out[face], cv2.CV_64F).var() < 0.05 * cv2.Laplacian(astronaut[face], cv2.CV_64F).var()
    finally:
        service.shutdown()


@pytest.mark.slow  # worker processes
def test_a_worker_process_that_dies_fails_only_its_photo(tmp_path):
    grey, red = np.full((64, 64, 3), 128, np.uint8), np.zeros((64, 64, 3), np.uint8)
    red[:, :, 2] = 255
    photos = {"a.png": encode(grey, ".png"), "red.png": encode(red, ".png"),
              **{f"{c}.png": encode(grey, ".png") for c in "bcde"}}
    service = BatchService(2, kind="process", detector_factory=crash_on_red)
    try:
        files = run(service, make_job(tmp_path / "one", photos))
        assert files.pop("red.png")["error"].startswith("The worker processing this photo stopped unexpectedly")
        assert {f["state"] for f in files.values()} == {"done"}
        assert not (tmp_path / "one" / "outputs" / "1.png").exists()  # nothing written for it
        again = run(service, make_job(tmp_path / "two", {"a.png": encode(grey, ".png")}, "two"))
        assert again["a.png"]["state"] == "done"  # the service carries on with a new pool
    finally:
        service.shutdown()


def test_files_of_a_deleted_job_never_start_and_leave_nothing(tmp_path):
    gate, seen = threading.Event(), []

    def gated(_options):
        def detect(image):
            seen.append(image.shape)
            gate.wait(60)
            return []
        return detect

    service = BatchService(1, kind="thread", detector_factory=gated)
    jobs = jobs_on(service)
    grey = encode(np.full((32, 32, 3), 128, np.uint8), ".png")
    job = make_job(tmp_path / "job", {f"{i}.png": grey for i in range(20)})
    jobs.start(job)
    deadline = time.monotonic() + 60
    while not seen and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    assert jobs.delete(job.id)  # forgets the job and drops its waiting files; then its folder goes
    for path in sorted(job.directory.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    job.directory.rmdir()
    gate.set()
    service.shutdown(wait=True)
    assert len(seen) <= 2  # the one running and the one ready behind it; the other 18 never started
    assert not job.directory.exists()  # not re-created by a file that finished after the delete
