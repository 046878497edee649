"""The batch service: one executor (worker processes or threads), progress into the registry."""
from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
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
from app.errors import FaceGuardError
from app.jobs import FileEntry, FileState, Job, JobRegistry, JobState
from app.pipeline.process import ImageResult, Options
from app.store import Journal
from app.worker import DetectorFactory

log = logging.getLogger(__name__)

Finisher = Callable[[Job], None]
EXECUTORS = ("process", "thread")


def _plain(exc: BaseException, what: str = "The results") -> str:
    """Say in plain words why something could not be saved or processed."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"The disk is full, so {what.lower()} could not be saved. Free some space and run the job again."
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST):
        return f"{what} could not be written: the results folder is read-only or missing. Check DATA_DIR."
    return f"{what} could not be saved ({type(exc).__name__}: {exc})."


@dataclass
class _Task:
    """One file of a job on its way through the executor."""

    job: Job
    entry: FileEntry
    options: Options
    finisher: Finisher


class BatchService:
    """Run each image of a job as its own task; record outcomes as they finish.

    `kind` "process" runs one worker process per core (spawned, one thread each: MediaPipe
    holds the GIL, so threads cannot run it side by side); "thread" runs worker threads
    in this process. Each worker builds `warm`'s detector when it starts. A given
    `executor` is used as it is. `finisher(job)` runs once every file of the job has
    ended (it writes the report and the result); if it raises, the job fails with the reason.

    Files wait here, in order, and go to the executor a few at a time (two per worker: one
    running, one ready behind it), so a deleted job's files never start and a broken pool
    holds few. If a worker process dies (out of memory, or a library crashing on an image),
    the pool is replaced and each file it held is run again alone in a one-worker quarantine
    pool: the file that kills that pool too fails, the others carry on.
    """

    def __init__(self, registry: JobRegistry, workers: int, *, kind: str = "thread",
                 executor: Executor | None = None, detector_factory: DetectorFactory | None = None,
                 journal: Journal | None = None, warm: Options | None = None) -> None:
        if kind not in EXECUTORS:
            raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
        self.registry, self.journal, self.workers, self.kind = registry, journal, workers, kind
        self._factory, self._warm = detector_factory, warm
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
        return ThreadPoolExecutor(workers, thread_name_prefix="faceguard",
                                  initializer=worker.start, initargs=(self._warm, False))

    def start_workers(self) -> None:
        """Start every worker now (a process takes seconds to start and warm up), not at the first job."""
        for _ in range(self.workers):
            self._executor.submit(os.getpid)

    def submit(self, job: Job, options: Options, finisher: Finisher) -> None:
        """Queue every pending file of a registered job."""
        pending = [f for f in job.files if f.state is FileState.PENDING]
        self.registry.start(job.id)
        if not pending:
            threading.Thread(target=self._finish, args=(job.id, finisher), name="faceguard-finish",
                             daemon=True).start()
            return
        with self._lock:
            self._waiting.extend(_Task(job, entry, options, finisher) for entry in pending)
        self._pump()

    def wait(self, job_id: str, timeout: float | None = None) -> dict | None:
        """Block until the job ends; return its final snapshot."""
        return self.registry.wait(job_id, timeout)

    def shutdown(self, wait: bool = True) -> None:
        """Stop: files not yet done stay pending (on disk, for the next start)."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            self._suspects.clear()
            pools = [self._executor, self._quarantine]
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=wait, cancel_futures=True)

    def _pump(self) -> None:
        """Hand waiting files to the executor while it holds fewer than two per worker."""
        while True:
            with self._lock:
                if self._closed or not self._waiting or self._in_flight >= 2 * self.workers:
                    return
                task = self._waiting.popleft()
                if task.job.id not in self.registry:  # deleted or expired while it waited
                    continue
                self._in_flight += 1
                executor = self._executor
            self._send(task, executor, main=True)

    def _send(self, task: _Task, executor: Executor, main: bool) -> None:
        try:
            future = executor.submit(worker.run, task.entry.source, task.entry.output, task.options, self._factory)
        except BrokenExecutor as exc:
            future = Future()
            future.set_exception(exc)
        except RuntimeError:  # shut down: the file stays pending
            return
        future.add_done_callback(lambda f: self._done(task, f, executor, main))

    def _done(self, task: _Task, future: Future, executor: Executor, main: bool) -> None:
        try:
            self._record(task, future, executor, main)
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

    def _outcome(self, task: _Task, future: Future, executor: Executor, main: bool) -> dict | None:
        """What to record for a finished task (finish_file's arguments); None if nothing is to be recorded yet."""
        job_id, name = task.job.id, task.entry.name
        try:
            result: ImageResult = future.result()
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
            log.error("job %s: %s failed: its worker process stopped", job_id, name)
            return {"error": "The worker processing this photo stopped unexpectedly (out of memory, "
                             "or the image crashed a library), so nothing was saved for it."}
        except FaceGuardError as exc:
            log.info("job %s: %s failed: %s", job_id, name, exc.message)
            return {"error": exc.message}
        except BaseException as exc:  # recorded, never hidden, never shown as success
            log.error("job %s: %s failed", job_id, name, exc_info=exc)
            return {"error": _plain(exc, "This photo") if isinstance(exc, OSError)
                    else f"Unexpected error while processing ({type(exc).__name__}: {exc})."}
        return {"width": result.width, "height": result.height, "regions": result.regions, "frames": result.frames,
                "format": result.format, "written_as": result.written_as}

    def _record(self, task: _Task, future: Future, executor: Executor, main: bool) -> None:
        job_id, entry = task.job.id, task.entry
        recorded = self._outcome(task, future, executor, main)
        if recorded is None:
            return
        outcome, last = self.registry.finish_file(job_id, entry.index, **recorded)
        if job_id not in self.registry:  # deleted or expired meanwhile: remove what the task wrote
            shutil.rmtree(task.job.directory, ignore_errors=True)
            return
        try:
            if self.journal and outcome is not None:
                self.journal.record(task.job, outcome)  # first on disk, then the original goes
            entry.source.unlink(missing_ok=True)
        except OSError:
            log.exception("job %s: could not journal %s", job_id, entry.name)
        if last:  # not on the executor's own thread: a result zip can take a while
            threading.Thread(target=self._finish, args=(job_id, task.finisher), name="faceguard-finish",
                             daemon=True).start()

    def _finish(self, job_id: str, finisher: Finisher) -> None:
        job = self.registry.copy(job_id)
        if job is None:
            return
        job.finished = time.time()
        try:
            finisher(job)
            job.state = JobState.DONE
        except Exception as exc:
            log.exception("job %s: could not be finished", job_id)
            job.state, job.error = JobState.FAILED, _plain(exc)
        if self.journal:
            try:
                self.journal.save(job)
            except OSError:
                log.exception("job %s: could not save its state", job_id)
        if job.state is JobState.DONE:
            self.registry.finish(job_id, job.finished)
        else:
            self.registry.fail(job_id, job.error, job.finished)
