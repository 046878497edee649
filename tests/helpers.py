"""Helpers the tests share: encoding photos, building zips, driving jobs through the API."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def encode(pixels: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buf = cv2.imencode(ext, pixels)
    assert ok
    return buf.tobytes()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def post_job(client, files: list[tuple[str, bytes]], **fields):
    """POST /api/jobs with (name, bytes) files in the 'images' field."""
    form = {"images": [(io.BytesIO(payload), name) for name, payload in files], **fields}
    return client.post("/api/jobs", data=form, content_type="multipart/form-data")


def finish(app, response) -> dict:
    """Wait for a job created by `response` to end, and return its last snapshot."""
    assert response.status_code == 202, response.get_json()
    snapshot = app.extensions["faceguard"].wait(response.get_json()["id"], timeout=120)
    assert snapshot and snapshot["state"] in ("done", "failed"), snapshot
    return snapshot


def result_zip(client, job_id: str) -> zipfile.ZipFile:
    with client.get(f"/api/jobs/{job_id}/result") as response:  # a file response holds the file until closed
        assert response.status_code == 200, response.get_json()
        assert response.mimetype == "application/zip"
        return zipfile.ZipFile(io.BytesIO(response.data))


def jpeg_with_exif(pixels_bgr: np.ndarray, orientation: int) -> bytes:
    """A JPEG carrying an EXIF orientation, a GPS position and camera make/model."""
    from PIL import Image

    img = Image.fromarray(cv2.cvtColor(pixels_bgr, cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "FaceGuardTestCam"  # Make
    exif[0x0110] = "Model-X"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (51.0, 30.0, 0.0), "W", (0.0, 7.0, 0.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(*args: str, cli: bool = False) -> list[str]:
    """The command that serves the app: run.py, or `faceguard serve` (as python -m app.cli, from ROOT)."""
    head = [sys.executable, "-m", "app.cli", "serve"] if cli else [sys.executable, str(ROOT / "run.py")]
    return [*head, *args]


def server_env(data_dir, **settings) -> dict[str, str]:
    """The environment of a test server: its data folder, two workers, FACEGUARD_<NAME> settings."""
    env = {k: v for k, v in os.environ.items() if k != "FACEGUARD_TOKEN"}
    return {**env, "FACEGUARD_DATA_DIR": str(data_dir), "FACEGUARD_WORKERS": "2",
            **{f"FACEGUARD_{k}": str(v) for k, v in settings.items()}}


def start_server(data_dir, *args: str, cli: bool = False, **settings) -> tuple[subprocess.Popen, str]:
    """Start a server as its own process on a free port; return it and its base URL on 127.0.0.1.

    `args` go to the command (e.g. "--host", "0.0.0.0"); the server's output is in `proc.log`.
    """
    port = free_port()
    log = Path(data_dir).parent / f"server-{port}.log"  # a file, never a pipe nobody reads
    with open(log, "wb") as sink:
        proc = subprocess.Popen(server_command("--port", str(port), *args, cli=cli), cwd=ROOT,
                                env=server_env(data_dir, **settings), stdout=sink, stderr=subprocess.STDOUT)
    proc.log = log
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/", timeout=1)
            return proc, base
        except (requests.ConnectionError, requests.Timeout):
            assert proc.poll() is None, log.read_text(errors="replace")
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the server did not start within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
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
