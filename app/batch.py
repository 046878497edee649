"""The batch service: one executor, one detector per worker thread, progress into the registry."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future, ThreadPoolExecutor

from app.errors import FaceGuardError
from app.jobs import FileEntry, FileState, Job, JobRegistry
from app.pipeline.detect import Detector
from app.pipeline.presets import build_detector
from app.pipeline.process import ImageResult, Options, process_image

log = logging.getLogger(__name__)

DetectorFactory = Callable[[Options], Detector]
Finisher = Callable[[Job], None]


def default_detector(options: Options) -> Detector:
    """Build the detector a job's options ask for."""
    return build_detector(options.preset, options.threshold)


class BatchService:
    """Run each image of a job as its own task; record outcomes as they finish.

    `finisher(job)` runs once every file of the job has ended (it writes the report and
    the result); if it raises, the job is marked failed with the reason.
    """

    def __init__(self, registry: JobRegistry, workers: int, *,
                 executor: Executor | None = None,
                 detector_factory: DetectorFactory = default_detector) -> None:
        self.registry = registry
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
            future.add_done_callback(lambda f, e=entry: self._record(job.id, e, f, finisher))

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
        try:
            return process_image(entry.source, entry.output, self.detector(options), options)
        finally:
            entry.source.unlink(missing_ok=True)  # originals go as soon as they are processed

    def _record(self, job_id: str, entry: FileEntry, future: Future, finisher: Finisher) -> None:
        try:
            result = future.result()
        except CancelledError:  # the service is shutting down; the file stays pending
            return
        except FaceGuardError as exc:
            log.info("job %s: %s failed: %s", job_id, entry.name, exc.message)
            last = self.registry.finish_file(job_id, entry.index, error=exc.message)
        except BaseException as exc:  # recorded, never hidden, never shown as success
            log.exception("job %s: %s failed", job_id, entry.name)
            last = self.registry.finish_file(
                job_id, entry.index, error=f"Unexpected error while processing ({type(exc).__name__}: {exc}).")
        else:
            if result is None:
                return
            last = self.registry.finish_file(job_id, entry.index, width=result.width,
                                             height=result.height, regions=result.regions)
        if last:
            self._finish(job_id, finisher)

    def _finish(self, job_id: str, finisher: Finisher) -> None:
        job = self.registry.copy(job_id)
        if job is None:
            return
        job.finished = time.time()
        try:
            finisher(job)
        except Exception as exc:
            log.exception("job %s: could not be finished", job_id)
            self.registry.fail(job_id, f"The results could not be saved ({type(exc).__name__}: {exc}).")
        else:
            self.registry.finish(job_id)
