"""A Dask cluster against local worker processes on 1080p JPEGs, Dask's overhead, and the server's cost per photo.

    python -m benchmarks.cluster ../shared/data/faces [--count 40] [--preset balanced] [--rounds 3] [--pin]

Derives --count 1920x1080 JPEGs as benchmarks.throughput does, then measures photos per second
through JobService and BatchService (the code the server runs), after a warm-up job, for:
  process N  BatchService(kind="process"): N worker processes on this machine
  dask N     BatchService(kind="dask") on a cluster on 127.0.0.1 started as subprocesses for the
             row: `dask scheduler` and N `dask worker --nthreads 1 --nworkers 1` (one thread each;
             with --pin, each under `taskset -c` on a CPU of its own, as local worker processes pin themselves)
for N = 1 and 2 (--workers), the rows taking turns over --rounds rounds, the best of each counting.
Dask's overhead, on a 2-worker cluster: the round trip of an empty task one at a time, of a task
carrying a 1080p JPEG's bytes there and back, and per task when 500 empty tasks are submitted at
once; and, per photo, the time on the cluster minus the time with local processes.
The server's cost per photo besides detection, on one thread, with the frames three times over:
the upload copied into a job folder (Intake, as the server does once Werkzeug has parsed the form;
the parsing is not counted), then a durable job through JobService on one worker thread with a
detector that finds nothing, minus the time its tasks took (decode + encode, a worker's work) and
minus the result zip: reading each original, handing it over, writing the result, the journal line,
removing the original (the last three also timed on their own); and the result zip, timed alone.
The goals are printed as ratios; nothing is asserted. Each row says how many CPUs other processes
used meanwhile (read from /proc): on a shared machine, a row they slowed down should be run again.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app import worker
from app.batch import BatchService
from app.config import load_config
from app.folder import JobFolders
from app.ingest import Intake
from app.jobs import FileEntry, Job
from app.pipeline.process import Options
from app.results import write_result_zip
from app.service import JobService
from benchmarks.throughput import no_faces, prepare

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Loopback:
    """A Dask scheduler and `workers` single-threaded worker processes on 127.0.0.1, each in its own process group.

    `pin`: worker i runs under `taskset -c` on the i-th CPU (cycling), as a local worker process pins itself.
    """

    def __init__(self, workers: int, logs: Path, pin: bool = False) -> None:
        self.workers, self.logs, self.pin, self.port = workers, logs, pin, free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, name: str, *args: str, cpu: int | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        head = ["taskset", "-c", str(cpu)] if cpu is not None else []
        with open(self.logs / f"{name}.log", "wb") as sink:
            self.procs.append(subprocess.Popen([*head, sys.executable, "-m", "dask", *args], cwd=ROOT, env=env,
                                               stdout=sink, stderr=subprocess.STDOUT, start_new_session=True))

    def __enter__(self) -> str:
        """Start the cluster; return its address once the scheduler sees every worker (120 s at most)."""
        from distributed import Client

        self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard")
        cpus = sorted(os.sched_getaffinity(0)) if self.pin else []
        for i in range(self.workers):
            self._spawn(f"worker-{i}", "worker", self.address, "--name", f"worker-{i}", "--nthreads", "1",
                        "--nworkers", "1", "--memory-limit", "0", "--no-dashboard", "--death-timeout", "60",
                        "--local-directory", str(self.logs / f"worker-{i}"), cpu=cpus[i % len(cpus)] if cpus else None)
        try:
            with Client(self.address, timeout="60s", set_as_default=False) as client:
                client.wait_for_workers(self.workers, timeout=120)
        except BaseException:
            self.__exit__()
            raise
        return self.address

    def __exit__(self, *_exc) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in reversed(self.procs):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            for proc in reversed(self.procs):
                try:
                    proc.wait(15 if sig == signal.SIGTERM else 10)
                except subprocess.TimeoutExpired:
                    pass


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _processes() -> dict[int, tuple[int, float]]:
    """Every process now: pid -> (parent pid, CPU seconds used so far), from /proc (empty elsewhere)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    return found


class Others:
    """CPUs used by processes that are not this one or its descendants, sampled every half second.

    On a shared machine, a row that others slowed down should be run again. A process that
    starts and ends between two samples goes unseen.
    """

    def __init__(self) -> None:
        self._seen: dict[int, float] = {}
        self._used, self._start, self.cpus = 0.0, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _sample(self) -> None:
        now = _processes()
        for pid, (_, cpu) in now.items():
            ancestor = pid
            while ancestor not in (0, 1, os.getpid()) and ancestor in now:
                ancestor = now[ancestor][0]
            if ancestor != os.getpid():
                self._used += cpu - self._seen.get(pid, 0.0)  # a process new since the last sample: all of it
                self._seen[pid] = cpu

    def _watch(self) -> None:
        self._seen = {pid: cpu for pid, (_, cpu) in _processes().items()}
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> Others:
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self.cpus = self._used / (time.perf_counter() - self._start)


def link_job(job_id: str, frames: list[Path], work: Path) -> Job:
    """A job of the frames (hard links: the service deletes its inputs once processed)."""
    folder = work / job_id
    (folder / "in").mkdir(parents=True)
    entries = []
    for i, path in enumerate(frames):
        source = folder / "in" / f"{i}.jpg"
        os.link(path, source)
        entries.append(FileEntry(i, f"{i}.jpg", source, folder / "out" / f"{i}.jpg"))
    return Job(job_id, folder, entries, {})


def rate(frames: list[Path], batch: BatchService, options: Options, work: Path, seconds: float) -> float:
    """Photos per second of one job of the frames (repeated to last about `seconds`), after a warm-up job."""
    jobs = JobService(batch, options_for=lambda _job: options, durable=False, publish=lambda _job: None)
    batch.start_workers()

    def run(job_id: str, batch_frames: list[Path]) -> float:
        job = link_job(job_id, batch_frames, work)
        start = time.perf_counter()
        jobs.start(job)
        snapshot = jobs.wait(job_id)
        elapsed = time.perf_counter() - start
        assert snapshot["state"] == "done" and snapshot["failed"] == 0, snapshot
        shutil.rmtree(job.directory)
        return len(batch_frames) / elapsed

    try:
        warm = run("warm", frames[: max(4, batch.workers * 4)])
        return run("timed", frames * max(1, math.ceil(seconds * warm / len(frames))))
    finally:
        batch.shutdown()


def measure(kind: str, workers: int, frames: list[Path], options: Options, work: Path, seconds: float,
            pin: bool = False) -> float:
    """One row: photos per second with `workers` local processes, or on a Dask cluster of as many workers."""
    if kind == "process":
        return rate(frames, BatchService(workers, kind="process", warm=options), options, work, seconds)
    with Loopback(workers, work, pin) as address:
        return rate(frames, BatchService(workers, kind="dask", warm=options, scheduler=address), options, work, seconds)


def median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def dask_overhead(frame: Path, work: Path) -> dict[str, float]:
    """Round trips on a 2-worker cluster, in ms: an empty task, a 1080p JPEG's bytes there and back, 500 at once."""
    from distributed import Client

    data = frame.read_bytes()
    with Loopback(2, work) as address, Client(address, set_as_default=False) as client:
        median_ms(lambda: client.submit(lambda: None, pure=False).result(), 20)  # connections made, code shipped
        empty = median_ms(lambda: client.submit(lambda: None, pure=False).result(), 200)
        photo = median_ms(lambda: client.submit(lambda b: b, data, pure=False).result(), 50)
        start = time.perf_counter()
        client.gather(client.map(lambda _i: None, range(500), pure=False))
        many = 1000 * (time.perf_counter() - start) / 500
    return {"empty": empty, "photo": photo, "many": many, "kb": len(data) / 1024}


def timing(call: Callable, spent: list[float]) -> Callable:
    """`call`, adding the seconds each call takes to `spent`."""
    def timed(*args):
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            spent.append(time.perf_counter() - start)
    return timed


def server_cost(frames: list[Path], work: Path) -> dict[str, float]:
    """What the server does per photo besides detection, in ms, all on one thread (see the module's doc)."""
    options = Options.from_config(load_config(), method="blur", boxes=False, preset="fast")
    datas = [p.read_bytes() for p in frames] * 3
    folders, codec, zipping, recording = JobFolders(work / "jobs"), [], [], []
    jobs = JobService(BatchService(1, kind="thread", detector_factory=no_faces), folders,
                      options_for=lambda _job: options, publish=timing(write_result_zip, zipping))
    jobs._done = timing(jobs._done, recording)  # write the result, journal line, remove the original
    folder = folders.of("0" * 32)
    start = time.perf_counter()
    intake = Intake(folder.create().inputs, folder.output_for, max_files=10**6, max_unzipped=1 << 40, max_ratio=200)
    for i, data in enumerate(datas):
        intake.add_stream(f"{i}.jpg", io.BytesIO(data))
    upload = time.perf_counter() - start
    task, worker.redact = worker.redact, timing(worker.redact, codec)  # the task the thread runs: decode + encode
    try:
        start = time.perf_counter()
        jobs.start(Job(folder.id, folder.path, intake.entries, options.describe()))
        snapshot = jobs.wait(folder.id)
        job = time.perf_counter() - start
        for thread in threading.enumerate():  # the job's state is saved after the wait ends
            if thread.name == "faceguard-finish":
                thread.join(30)
    finally:
        worker.redact = task
        jobs.shutdown()
    assert snapshot["state"] == "done" and snapshot["failed"] == 0, snapshot
    per = 1000 / len(datas)
    return {"upload": upload * per, "codec": sum(codec) * per, "job": (job - sum(codec) - zipping[0]) * per,
            "record": sum(recording) * per, "zip": zipping[0] * per, "mb": sum(map(len, datas)) / len(datas) / 1e6}


def report(rates: dict[tuple[str, int], float], counts: list[int], frames: int, preset: str) -> None:
    """Print the rows and the goals' ratios."""
    print(f"\n{frames} JPEGs 1920x1080, preset {preset}, {os.cpu_count()} CPUs; best of the rounds, img/s")
    print(f"{'executor':10s} {'workers':>7s} {'img/s':>8s} {'ms/photo':>9s}")
    for (kind, workers), value in rates.items():
        print(f"{kind:10s} {workers:7d} {value:8.2f} {1000 / value:9.1f}")
    low, high = counts[0], counts[-1]
    if high > low:
        scaling = rates[("dask", high)] / rates[("dask", low)]
        local = rates[("process", high)] / rates[("process", low)]
        print(f"dask {high} workers / {low}: {scaling:.2f}x (goal >= {0.9 * high / low:.1f}x); "
              f"local processes {local:.2f}x")
    for n in counts:
        ratio = rates[("dask", n)] / rates[("process", n)]
        extra = 1000 / rates[("dask", n)] - 1000 / rates[("process", n)]
        print(f"dask / local processes at {n} workers: {ratio:.2f}x (goal >= 0.90x); "
              f"time per photo on the cluster minus local: {extra:+.1f} ms")


def compare(frames: list[Path], options: Options, counts: list[int], args: argparse.Namespace,
            tmp: Path) -> dict[tuple[str, int], float]:
    """Each row, the rows taking turns over the rounds; return the best photos per second of each."""
    rates: dict[tuple[str, int], float] = {}
    for round_ in range(args.rounds):
        for kind in ("process", "dask"):
            for n in counts:
                work = tmp / f"{kind}-{n}-{round_}"
                work.mkdir()
                with Others() as others:
                    value = measure(kind, n, frames, options, work, args.seconds, args.pin)
                rates[(kind, n)] = max(value, rates.get((kind, n), 0.0))
                print(f"round {round_ + 1}: {kind:7s} {n} workers {value:6.2f} img/s "
                      f"(other processes on this machine meanwhile: {others.cpus:.2f} CPUs)", flush=True)
    return rates


def print_costs(over: dict[str, float], cost: dict[str, float]) -> None:
    print(f"\nDask round trips, 2 workers on 127.0.0.1, median ms: empty task {over['empty']:.1f}; "
          f"a {over['kb']:.0f} KB JPEG there and back {over['photo']:.1f}; 500 empty tasks at once "
          f"{over['many']:.2f} per task")
    print(f"the server's cost per photo besides detection, one thread, ms ({cost['mb']:.2f} MB JPEGs):\n"
          f"  upload copied into the job folder {cost['upload']:.2f}\n"
          f"  the job minus its tasks' decode + encode and the zip {cost['job']:.2f} (of which writing the result, "
          f"the journal line and removing the original: {cost['record']:.2f})\n"
          f"  result zip {cost['zip']:.2f}\n"
          f"  total {cost['upload'] + cost['job'] + cost['zip']:.2f}; decode + encode, done by the worker, "
          f"{cost['codec']:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="photos to derive the 1080p frames from")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default: 1,2)")
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--rounds", type=int, default=3, help="runs per row; the best counts")
    parser.add_argument("--seconds", type=float, default=3.0, help="a row shorter than this takes the frames again")
    parser.add_argument("--pin", action="store_true",
                        help="start each Dask worker under taskset on a CPU of its own (Linux)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "faceguard-1080p")
    args = parser.parse_args(argv)
    frames = prepare(args.folder, args.count, args.cache)
    options = Options.from_config(load_config(), method="blur", boxes=False, preset=args.preset)
    counts = sorted(int(n) for n in args.workers.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        rates = compare(frames, options, counts, args, Path(tmp))
        report(rates, counts, len(frames), args.preset)
        (Path(tmp) / "overhead").mkdir()
        print_costs(dask_overhead(frames[0], Path(tmp) / "overhead"), server_cost(frames, Path(tmp) / "server"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
