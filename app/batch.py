"""The batch service: runs files on an executor, photo bytes in, redacted bytes out; knows nothing of jobs.

Each task is `(key, the photo's bytes, options) -> (redacted bytes, ImageResult)`, so a worker
needs no disk shared with the server: worker threads, worker processes, or a Dask cluster.
`on_start(key)` is called as a file goes to a worker, `on_done(key, outcome)` once it ended:
an `(bytes, ImageResult)` pair, or a `FileError`.
"""
from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import (
    BrokenExecutor,
    CancelledError,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from dataclasses import dataclass

from app import worker
from app.errors import FaceGuardError, ImageError
from app.outcomes import FileError, ImageResult, Region
from app.pipeline.process import Options
from app.worker import DetectorFactory

log = logging.getLogger(__name__)

EXECUTORS = ("process", "thread", "dask")
Done = tuple[bytes, ImageResult] | FileError
OnStart = Callable[[Hashable], None]
OnDone = Callable[[Hashable, Done], None]


def plain(exc: BaseException, what: str = "The results") -> FileError:
    """Say in plain words, with a code, why something could not be saved or processed."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return FileError("disk_full", f"The disk is full, so {what.lower()} could not be saved. "
                                      "Free some space and run the job again.")
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST):
        return FileError("write_failed", f"{what} could not be written: the results folder is read-only or missing. "
                                         "Check DATA_DIR.")
    return FileError("write_failed" if isinstance(exc, OSError) else "unexpected",
                     f"{what} could not be saved ({type(exc).__name__}: {exc}).")


@dataclass
class _Task:
    key: Hashable
    load: Callable[[], bytes]  # the photo's bytes, read when the task goes to a worker
    options: Options
    on_start: OnStart
    on_done: OnDone
    given: list[Region] | None = None  # redact exactly these regions (a review's), detect nothing


class BatchService:
    """Run each file as its own task on an executor.

    `kind` "process" runs one worker process per core (spawned, one thread each: MediaPipe
    holds the GIL, so threads cannot run it side by side); "thread" runs worker threads
    in this process; "dask" sends each file to a Dask cluster (see `app.cluster`). A given
    `executor` is used as it is. Each worker builds `warm`'s detector when it starts.

    Files wait here, in order, and go to the executor a few at a time (two per worker: one
    running, one ready behind it), so a dropped job's files never start, a broken pool holds
    few, and only those few photos' bytes are in memory. If a worker process dies (out of
    memory, or a library crashing on an image), the pool is replaced and each file it held is
    run again alone in a one-worker quarantine pool: the file that kills that pool too fails,
    the others carry on. (Dask runs a dead worker's tasks again on another worker itself.)
    """

    def __init__(self, workers: int, *, kind: str = "thread", executor: Executor | None = None,
                 detector_factory: DetectorFactory | None = None, warm: Options | None = None,
                 scheduler: str | None = None) -> None:
        if kind not in EXECUTORS:
            raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
        self.workers, self.kind, self._factory, self._warm, self._scheduler = workers, kind, detector_factory, warm, scheduler
        self._cluster = None
        self._own_executor = executor is None
        self._lock = threading.Lock()
        self._closed = False
        self._waiting: deque[_Task] = deque()
        self._in_flight = 0
        self._suspects: deque[_Task] = deque()
        self._quarantine: Executor | None = None
        self._quarantine_busy = False
        self._executor = executor or self._new_executor(workers)

    def _new_executor(self, workers: int) -> Executor:
        if self.kind == "process":
            context = multiprocessing.get_context("spawn")
            return ProcessPoolExecutor(workers, mp_context=context, initializer=worker.start,
                                       initargs=(self._warm, True, context.Value("i", 0)))
        if self.kind == "dask":
            from app.cluster import Cluster

            self._cluster = Cluster(self._scheduler, workers, self._warm)
            return self._cluster.executor()
        return ThreadPoolExecutor(workers, thread_name_prefix="faceguard",
                                  initializer=worker.start, initargs=(self._warm, False))

    def start_workers(self) -> None:
        """Start every worker now (a process takes seconds to start and warm up), not at the first job."""
        if self.kind != "dask":
            for _ in range(self.workers):
                self._executor.submit(os.getpid)

    def submit(self, key: Hashable, load: Callable[[], bytes], options: Options,
               on_start: OnStart, on_done: OnDone, given: list[Region] | None = None, first: bool = False) -> None:
        """Queue one file (`first`: ahead of the others, as a person waits for it); callbacks run on the service's threads."""
        task = _Task(key, load, options, on_start, on_done, given)
        with self._lock:
            self._waiting.appendleft(task) if first else self._waiting.append(task)
        self._pump()

    def drop(self, owner: Hashable) -> None:
        """Forget the waiting files whose key starts with `owner` (a deleted job's)."""
        with self._lock:
            self._waiting = deque(t for t in self._waiting if not (isinstance(t.key, tuple) and t.key[0] == owner))

    def shutdown(self, wait: bool = True) -> None:
        """Stop: files not yet done are simply never reported (the jobs keep them pending on disk)."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            self._suspects.clear()
            pools = [self._executor, self._quarantine] if self._own_executor else [self._quarantine]
        for pool in pools:
            if pool is not None:
                try:
                    pool.shutdown(wait=wait, cancel_futures=True)
                except TypeError:  # Dask's executor: its futures go with the client
                    pool.shutdown(wait=wait)
        if self._cluster is not None:
            self._cluster.close()

    def _pump(self) -> None:
        """Hand waiting files to the executor while it holds fewer than two per worker."""
        while True:
            with self._lock:
                workers = self._cluster.workers() if self._cluster is not None else self.workers
                if self._closed or not self._waiting or self._in_flight >= 2 * workers:
                    return
                task = self._waiting.popleft()
                self._in_flight += 1
                executor = self._executor
            self._send(task, executor, main=True)

    def _send(self, task: _Task, executor: Executor, main: bool) -> None:
        try:
            data = task.load()
        except OSError as exc:
            future: Future = Future()
            future.set_exception(exc)
        else:
            task.on_start(task.key)
            try:
                future = executor.submit(worker.redact, data, task.options, self._factory, task.given)
            except BrokenExecutor as exc:
                future = Future()
                future.set_exception(exc)
            except RuntimeError:  # shut down: the file stays pending
                return
        future.add_done_callback(lambda f: self._done(task, f, executor, main))

    def _done(self, task: _Task, future: Future, executor: Executor, main: bool) -> None:
        try:
            outcome = self._outcome(task, future, executor, main)
            if outcome is not None:
                task.on_done(task.key, outcome)
        except Exception:  # a callback's fault must not stop the queue
            log.exception("%s: recording its outcome failed", task.key)
        finally:
            with self._lock:
                if main:
                    self._in_flight -= 1
                else:
                    self._quarantine_busy = False
            self._pump()
            self._isolate_next()

    def _renew(self, broken: Executor) -> None:
        """Replace the main pool once after a worker process died."""
        with self._lock:
            if self._executor is broken and self._own_executor and not self._closed:
                log.warning("a worker process stopped unexpectedly; starting a new pool")
                self._executor = self._new_executor(self.workers)

    def _isolate_next(self) -> None:
        """Run the next suspect file alone, in a pool of its own; close that pool when none are left."""
        with self._lock:
            if self._closed or self._quarantine_busy:
                return
            if not self._suspects:
                if self._quarantine is not None:
                    self._quarantine.shutdown(wait=False)
                    self._quarantine = None
                return
            task = self._suspects.popleft()
            if self._quarantine is None:
                self._quarantine = self._new_executor(1)
            self._quarantine_busy = True
            quarantine = self._quarantine
        self._send(task, quarantine, main=False)

    def _outcome(self, task: _Task, future: Future, executor: Executor, main: bool) -> Done | None:
        """What a finished task ended as; None if nothing is to be reported yet."""
        try:
            return future.result()
        except CancelledError:  # the service is shutting down; the file stays pending
            return None
        except BrokenExecutor:
            if main and self.kind == "process" and self._own_executor:
                self._renew(executor)
                with self._lock:
                    self._suspects.append(task)  # run again alone; see _isolate_next
                return None
            if not main:
                with self._lock:
                    self._quarantine = None  # broken: the next suspect gets a fresh one
            return self._worker_died(task)
        except ImageError as exc:
            return FileError(exc.code, exc.message)
        except FaceGuardError as exc:
            return FileError("unexpected", exc.message)
        except OSError as exc:
            return plain(exc, "This photo")
        except BaseException as exc:  # reported, never hidden, never shown as success
            if type(exc).__name__ == "KilledWorker":  # Dask gave up: the photo killed worker after worker
                return self._worker_died(task)
            log.error("%s failed", task.key, exc_info=exc)
            return FileError("unexpected", f"Unexpected error while processing ({type(exc).__name__}: {exc}).")

    @staticmethod
    def _worker_died(task: _Task) -> FileError:
        log.error("%s failed: its worker process stopped", task.key)
        return FileError("worker_died", "The worker processing this photo stopped unexpectedly (out of memory, "
                                        "or the image crashed a library), so nothing was saved for it.")
