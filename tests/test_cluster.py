"""A real Dask cluster on 127.0.0.1 (a scheduler, two worker processes): the server and the CLI on it, workers dying."""
from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from app.batch import BatchService
from tests.helpers import (
    ROOT,
    encode,
    free_port,
    post_job,
    result_zip,
    start_server,
    stop_server,
    wait_done,
)
from tests.test_batch import crash_on_red, make_job, run

distributed = pytest.importorskip("distributed", reason="needs the cluster extra: pip install -e '.[cluster]'")

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

DASK = [sys.executable, "-m", "dask"]  # the `dask` command of this interpreter's environment
WORKERS = 2


class LoopbackCluster:
    """A `dask scheduler` and `dask worker`s on 127.0.0.1, each in a process group of its own, logging to files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        # This checkout's `app`, not the one an editable install points to: workers import app.worker.redact.
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        self.procs: list[subprocess.Popen] = []
        self.workers: dict[str, subprocess.Popen] = {}
        self.client: distributed.Client | None = None

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "wb") as sink:
            proc = subprocess.Popen([*DASK, *args], cwd=ROOT, env=self.env, stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]

    def start(self, timeout: float = 60) -> None:
        """Start the scheduler (it closes itself after 10 idle minutes, should this process die) and connect."""
        scheduler = self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                "--no-dashboard", "--idle-timeout", "600")
        deadline = time.monotonic() + timeout
        while True:
            assert scheduler.poll() is None, self.log("scheduler")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"no scheduler within {timeout} s:\n{self.log('scheduler')}"
                time.sleep(0.2)
        self.client = distributed.Client(self.address, timeout="30s", set_as_default=False)

    def add_worker(self) -> str:
        """Start one worker process (one task thread, no memory limit) under a new name; return the name."""
        name = f"worker-{len(self.workers) + 1}"
        self.workers[name] = self._spawn(name, "worker", self.address, "--name", name, "--nthreads", "1",
                                         "--nworkers", "1", "--memory-limit", "0", "--no-dashboard",
                                         "--death-timeout", "60", "--local-directory", str(self.folder / name))
        return name

    def running(self) -> dict[str, str]:
        """The workers the scheduler knows now: name -> address."""
        return {w["name"]: address for address, w in self.client.scheduler_info(n_workers=-1)["workers"].items()}

    def ensure(self, count: int = WORKERS, timeout: float = 180) -> None:
        """Start workers until `count` of them live, and wait until the scheduler sees them all."""
        alive = [name for name, proc in self.workers.items() if proc.poll() is None]
        for _ in range(count - len(alive)):
            self.add_worker()
        try:
            self.client.wait_for_workers(count, timeout=timeout)
        except TimeoutError:
            logs = "\n".join(f"--- {name}\n{self.log(name)}" for name in self.workers)
            pytest.fail(f"the scheduler did not see {count} workers within {timeout} s:\n{logs}")

    def busy(self) -> str:
        """The name of a worker holding tasks now."""
        names = {address: name for name, address in self.running().items()}
        holding = [names[address] for address, keys in self.client.processing().items() if keys and address in names]
        assert holding, "no worker is processing anything"
        return holding[0]

    def kill(self, name: str, timeout: float = 30) -> None:
        """SIGKILL a worker (its nanny and its worker process), and wait until the scheduler has dropped it."""
        proc = self.workers[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while name in self.running():
            assert time.monotonic() < deadline, f"the scheduler still lists {name} {timeout} s after it was killed"
            time.sleep(0.1)

    def stop(self) -> None:
        """End every process this cluster started: SIGTERM each group, SIGKILL whatever is left after 15 s."""
        if self.client is not None:
            self.client.close(timeout=10)
        for proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # the group too: a nanny's worker process may outlive it
            proc.wait(10)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:  # the whole group is gone already
        pass


@pytest.fixture(scope="module")
def loopback(tmp_path_factory) -> Iterator[LoopbackCluster]:
    cluster = LoopbackCluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.start()
        cluster.ensure(WORKERS)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(loopback: LoopbackCluster) -> LoopbackCluster:
    """The module's cluster with two live workers (a test before may have killed one)."""
    loopback.ensure(WORKERS)
    return loopback


def variants(astronaut: np.ndarray) -> dict[str, bytes]:
    """The astronaut as she is, turned, resized, as a PNG, and one broken file."""
    return {"astronaut.jpg": encode(astronaut),
            "turned.jpg": encode(cv2.rotate(astronaut, cv2.ROTATE_90_CLOCKWISE)),
            "upside-down.png": encode(cv2.rotate(astronaut, cv2.ROTATE_180), ".png"),
            "small.jpg": encode(cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)),
            "large.jpg": encode(cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)),
            "broken.jpg": b"\xff\xd8\xff garbage"}


def submit(base: str, photos: dict[str, bytes], **fields: str) -> dict:
    files = [("images", (name, data, "application/octet-stream")) for name, data in photos.items()]
    response = requests.post(base + "/api/jobs", files=files, data=fields, timeout=120)
    assert response.status_code == 202, response.text
    return response.json()


def download(base: str, job: dict) -> zipfile.ZipFile:
    response = requests.get(base + job["result_url"], timeout=60)
    assert response.status_code == 200, response.text
    return zipfile.ZipFile(io.BytesIO(response.content))


def outcomes(zf: zipfile.ZipFile) -> dict[str, tuple]:
    """Each file of report.json: name -> (state, code, regions)."""
    return {f["name"]: (f["state"], f["code"], f["regions"]) for f in json.loads(zf.read("report.json"))["files"]}


def test_the_cluster_counts_every_worker_from_a_tasks_callback(cluster):
    """The batch service sizes its in-flight files from a task's done callback, on the Dask client's thread.

    There Client.scheduler_info() returns the client's cached copy, refreshed with totals only:
    counting its (empty) worker list held a cluster of any size to two photos in flight.
    """
    import dask

    from app.cluster import Cluster

    with dask.config.set({"distributed.client.scheduler-info-interval": "100ms"}):
        on_cluster = Cluster(cluster.address, 1, None)
    try:
        time.sleep(1)  # the cached copy has been refreshed by now
        seen: Future = Future()
        on_cluster.executor().submit(os.getpid).add_done_callback(lambda _f: seen.set_result(on_cluster.workers()))
        assert seen.result(timeout=60) == WORKERS
        assert on_cluster.workers() == WORKERS
    finally:
        on_cluster.close()


def test_a_job_on_the_cluster_finds_what_local_workers_find(cluster, tmp_path, app, client, astronaut):
    photos = variants(astronaut)
    proc, base = start_server(tmp_path / "jobs", EXECUTOR="dask", SCHEDULER=cluster.address)
    try:
        job = submit(base, photos)
        snap = wait_done(base, job, timeout=300)
        on_cluster = outcomes(download(base, job))
    finally:
        stop_server(proc)
    assert (snap["state"], snap["processed"], snap["failed"]) == ("done", 6, 1), snap
    local_job = post_job(client, list(photos.items()))  # the same photos through the app's thread executor
    assert app.extensions["faceguard"].wait(local_job.get_json()["id"], timeout=300)["state"] == "done"
    local = outcomes(result_zip(client, local_job.get_json()["id"]))
    assert on_cluster == local
    assert on_cluster["broken.jpg"][:2] == ("failed", "unreadable")
    assert all(state == "done" and regions for name, (state, _, regions) in on_cluster.items() if name != "broken.jpg")


def test_the_command_line_sends_photos_to_the_cluster(cluster, tmp_path, astronaut):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    photos = {name: data for name, data in variants(astronaut).items() if name in ("astronaut.jpg", "small.jpg")}
    photos["sky.jpg"] = encode(np.full((200, 300, 3), (200, 150, 90), np.uint8))
    for name, data in photos.items():
        (folder / name).write_bytes(data)
    done = subprocess.run([sys.executable, "-m", "app.cli", str(folder), "-o", str(out), "--preset", "fast",
                           "--scheduler", cluster.address], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = {f["name"]: f for f in json.loads((out / "report.json").read_text())["files"]}
    assert sorted(report) == sorted(photos) and all(f["state"] == "done" for f in report.values())
    assert report["astronaut.jpg"]["faces"] == report["small.jpg"]["faces"] == 1 and report["sky.jpg"]["faces"] == 0
    for name in photos:
        assert cv2.imread(str(out / name)) is not None, name


def wait_processed(base: str, job: dict, count: int, timeout: float = 120) -> dict:
    """Poll the status URL until `count` files have been processed; return that snapshot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = requests.get(base + job["status_url"], timeout=10).json()
        if snap["processed"] >= count or snap["state"] in ("done", "failed"):
            return snap
        time.sleep(0.05)
    pytest.fail(f"fewer than {count} files processed in {timeout} s: {snap}")


def test_a_worker_killed_mid_job_loses_no_photo(cluster, tmp_path, astronaut):
    sizes = [320 + 8 * i for i in range(36)]  # small photos, each its own size: 36 separate tasks
    photos = {f"{i:02d}.jpg": encode(cv2.resize(astronaut, (s, s), interpolation=cv2.INTER_AREA))
              for i, s in enumerate(sizes)}
    proc, base = start_server(tmp_path / "jobs", EXECUTOR="dask", SCHEDULER=cluster.address)
    try:
        job = submit(base, photos)
        before = wait_processed(base, job, 2)
        cluster.kill(cluster.busy())
        assert before["processed"] < len(photos) - 4, f"the job was nearly over before the kill: {before}"
        snap = wait_done(base, job, timeout=300)
        zf = download(base, job)
    finally:
        stop_server(proc)
    assert (snap["state"], snap["processed"], snap["failed"]) == ("done", len(photos), 0), snap
    assert sorted(zf.namelist()) == sorted([*photos, "report.json"])  # each photo once: no duplicate entry
    report = json.loads(zf.read("report.json"))["files"]
    assert sorted(f["name"] for f in report) == sorted(photos)
    assert all(f["state"] == "done" and f["faces"] == 1 for f in report), report
    assert len(cluster.running()) == WORKERS - 1


def test_a_photo_that_kills_every_worker_it_meets_fails_alone(cluster, tmp_path):
    """Dask reruns a dead worker's tasks elsewhere; past `allowed-failures` (3) deaths the photo fails, alone."""
    grey = encode(np.full((64, 64, 3), 128, np.uint8), ".png")
    red = np.zeros((64, 64, 3), np.uint8)
    red[:, :, 2] = 255
    photos = {"a.png": grey, "red.png": encode(red, ".png"), "b.png": grey}
    service = BatchService(WORKERS, kind="dask", scheduler=cluster.address, detector_factory=crash_on_red)
    try:
        files = run(service, make_job(tmp_path, photos))
    finally:
        service.shutdown()
    assert (files["red.png"]["state"], files["red.png"]["code"]) == ("failed", "worker_died")
    assert files["a.png"]["state"] == files["b.png"]["state"] == "done"
    cluster.ensure(WORKERS)  # the nannies restart the workers it killed
