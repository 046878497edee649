"""The batch service: one executor, one detector per worker thread, progress into the registry."""
from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future, ThreadPoolExecutor

from app.errors import FaceGuardError
from app.jobs import FileEntry, FileState, Job, JobRegistry, JobState
from app.pipeline.detect import Detector
from app.pipeline.presets import build_detector
from app.pipeline.process import ImageResult, Options, process_image
from app.store import Journal

log = logging.getLogger(__name__)

DetectorFactory = Callable[[Options], Detector]
Finisher = Callable[[Job], None]


def default_detector(options: Options) -> Detector:
    """Build the detector a job's options ask for."""
    return build_detector(options.preset, options.threshold)


def _plain(exc: BaseException, what: str = "The results") -> str:
    """Say in plain words why something could not be saved or processed."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"The disk is full, so {what.lower()} could not be saved. Free some space and run the job again."
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST):
        return f"{what} could not be written: the results folder is read-only or missing. Check DATA_DIR."
    return f"{what} could not be saved ({type(exc).__name__}: {exc})."


class BatchService:
    """Run each image of a job as its own task; record outcomes as they finish.

    `finisher(job)` runs once every file of the job has ended (it writes the report and
    the result); if it raises, the job is marked failed with the reason.
    """

    def __init__(self, registry: JobRegistry, workers: int, *,
                 executor: Executor | None = None,
                 detector_factory: DetectorFactory = default_detector,
                 journal: Journal | None = None) -> None:
        self.registry = registry
        self.journal = journal
        self.workers = workers
        self._executor = executor or ThreadPoolExecutor(workers, thread_name_prefix="faceguard")
        self._factory = detector_factory
        self._local = threading.local()

    def submit(self, job: Job, options: Options, finisher: Finisher) -> None:
        """Queue every pending file of a registered job."""
        pending = [f for f in job.files if f.state is FileState.PENDING]
        self.registry.start(job.id)
        if not pending:
            self._executor.submit(self._finish, job.id, finisher)
            return
        for entry in pending:
            future = self._executor.submit(self._run, job.id, entry, options)
            future.add_done_callback(lambda f, e=entry: self._record(job, e, f, finisher))

    def wait(self, job_id: str, timeout: float | None = None) -> dict | None:
        """Block until the job ends; return its final snapshot."""
        return self.registry.wait(job_id, timeout)

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def detector(self, options: Options) -> Detector:
        """This thread's detector for these options, built on first use and kept."""
        cache = getattr(self._local, "detectors", None)
        if cache is None:
            cache = self._local.detectors = {}
        key = (options.preset, options.threshold)
        if key not in cache:
            cache[key] = self._factory(options)
        return cache[key]

    def _run(self, job_id: str, entry: FileEntry, options: Options) -> ImageResult | None:
        if job_id not in self.registry:  # deleted while queued
            return None
        return process_image(entry.source, entry.output, self.detector(options), options)

    def _record(self, job: Job, entry: FileEntry, future: Future, finisher: Finisher) -> None:
        job_id = job.id
        try:
            result = future.result()
        except CancelledError:  # the service is shutting down; the file stays pending
            return
        except FaceGuardError as exc:
            log.info("job %s: %s failed: %s", job_id, entry.name, exc.message)
            outcome, last = self.registry.finish_file(job_id, entry.index, error=exc.message)
        except BaseException as exc:  # recorded, never hidden, never shown as success
            log.exception("job %s: %s failed", job_id, entry.name)
            message = (_plain(exc, "This photo") if isinstance(exc, OSError)
                       else f"Unexpected error while processing ({type(exc).__name__}: {exc}).")
            outcome, last = self.registry.finish_file(job_id, entry.index, error=message)
        else:
            if result is None:
                return
            outcome, last = self.registry.finish_file(job_id, entry.index, width=result.width,
                                                      height=result.height, regions=result.regions)
        try:
            if self.journal and outcome is not None:
                self.journal.record(job, outcome)  # first on disk, then the original goes
            entry.source.unlink(missing_ok=True)
        except OSError:
            log.exception("job %s: could not journal %s", job_id, entry.name)
        if last:
            self._finish(job_id, finisher)

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
