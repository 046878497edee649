"""The real server process on 127.0.0.1: upload, poll, download, delete over HTTP."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from tests.helpers import encode

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """Start run.py as its own process; yield its base URL; stop it."""
    port = free_port()
    env = {**os.environ, "FACEGUARD_DATA_DIR": str(tmp_path / "jobs"), "FACEGUARD_WORKERS": "2"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/", timeout=1)
            break
        except requests.ConnectionError:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the server did not start within 60 s")
    yield base, tmp_path / "jobs"
    proc.terminate()
    proc.wait(10)


def wait_done(base: str, job: dict, timeout: float = 120) -> dict:
    """Poll the status URL as the page does, until the job ends."""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        snap = requests.get(base + job["status_url"], timeout=10).json()
        seen.append(snap["processed"])
        if snap["state"] in ("done", "failed"):
            assert seen == sorted(seen), "progress went backwards"
            return snap
        time.sleep(0.1)
    pytest.fail(f"job did not finish in {timeout} s: {snap}")


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
