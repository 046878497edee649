"""The real server process on 127.0.0.1: upload, poll, download, delete over HTTP."""
from __future__ import annotations

import io
import json
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.helpers import encode, start_server, stop_server, wait_done

pytestmark = pytest.mark.slow  # real servers and browsers: the slow tier


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


def test_oversize_upload_gets_413_and_the_server_stays_up(tmp_path, astronaut):
    proc, base = start_server(tmp_path / "jobs", MAX_CONTENT_LENGTH=200_000)
    try:
        files = [("images", (f"{i}.jpg", encode(astronaut), "image/jpeg")) for i in range(10)]
        response = requests.post(base + "/api/jobs", files=files, timeout=60)
        assert response.status_code == 413
        assert "larger than this server accepts" in response.json()["error"] and "MAX_CONTENT_LENGTH" in response.json()["error"]
        assert [p.name for p in (tmp_path / "jobs").iterdir()] == [".server.lock"]  # no job folder left
        small = requests.post(base + "/api/jobs", files=files[:1], data={"preset": "fast"}, timeout=60)
        assert small.status_code == 202 and wait_done(base, small.json())["state"] == "done"
    finally:
        stop_server(proc)


def test_twenty_concurrent_jobs(server, astronaut):
    base, _ = server
    photo = encode(astronaut)
    files = [("images", (f"{i:02d}.jpg", photo, "image/jpeg")) for i in range(20)]

    def one_job(_):
        job = requests.post(base + "/api/jobs", files=files, data={"preset": "fast"}, timeout=120).json()
        seen = []
        while True:
            snap = requests.get(base + job["status_url"], timeout=30).json()
            assert snap["processed"] <= snap["total"] == 20
            assert snap["processed"] == sum(f["state"] != "pending" for f in snap["files"])
            seen.append(snap["processed"])
            if snap["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        assert seen == sorted(seen), "progress went backwards"
        names = zipfile.ZipFile(io.BytesIO(requests.get(base + job["result_url"], timeout=60).content)).namelist()
        return snap, sorted(names)

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one_job, range(20)))
    expected = sorted([f"{i:02d}.jpg" for i in range(20)] + ["report.json"])
    for snap, names in results:
        assert (snap["state"], snap["processed"], snap["failed"], snap["faces"]) == ("done", 20, 0, 20)
        assert names == expected


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.2)
    return False


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_worker_processes_end_with_the_server(tmp_path, how):
    proc, _ = start_server(tmp_path / "jobs")
    deadline = time.monotonic() + 60
    while len(workers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(workers) >= 2, "the server starts its worker processes at start-up"
    getattr(proc, how)()  # `kill` gives the server no chance to stop them: they notice on their own
    proc.wait(30)
    assert _gone(workers, 15), f"worker processes outlived the server: {workers}"
