"""The real server process on 127.0.0.1: upload, poll, download, delete over HTTP."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
import requests

from tests.helpers import encode, start_server, stop_server, wait_done


@pytest.fixture
def server(tmp_path):
    proc, base = start_server(tmp_path / "jobs")
    yield base, tmp_path / "jobs"
    stop_server(proc)


def test_upload_progress_download_delete(server, astronaut):
    base, jobs = server
    files = [("images", (f"{i}.jpg", encode(astronaut), "image/jpeg")) for i in range(6)]
    response = requests.post(base + "/api/jobs", files=files, data={"method": "blur"}, timeout=60)
    assert response.status_code == 202
    job = response.json()
    snap = wait_done(base, job)
    assert (snap["state"], snap["processed"], snap["total"], snap["faces"]) == ("done", 6, 6, 6)
    download = requests.get(base + job["result_url"], timeout=60)
    assert download.headers["Content-Type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(download.content))
    assert sorted(zf.namelist()) == ["0.jpg", "1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg", "report.json"]
    assert all(f["state"] == "done" for f in json.loads(zf.read("report.json"))["files"])
    assert not list((jobs / job["id"] / "inputs").iterdir()), "originals must go once processed"
    assert requests.delete(base + job["status_url"], timeout=10).status_code == 204
    assert not (jobs / job["id"]).exists()
    gone = requests.get(base + job["status_url"], timeout=10)
    assert gone.status_code == 404 and "error" in gone.json()
