"""The one owner of a job's life: create, run each file, record, finish, delete, expire, resume.

The registry holds the only state; every step goes through it, and the journal is written
from the steps it allowed. The batch service only runs files (bytes in, bytes out); this
service reads each photo from the job's folder, writes the result, and removes the original.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from app.batch import BatchService, Done, plain
from app.errors import ImageError, NotFound, NotReady
from app.folder import JobFolder, JobFolders, write_atomic
from app.jobs import FileEntry, FileState, Job, JobRegistry, JobState
from app.outcomes import FileError, Region
from app.pipeline.process import Options
from app.results import write_result_zip
from app.store import Journal

log = logging.getLogger(__name__)

Publisher = Callable[[Job], None]  # what a finished job leaves behind (the result zip, or the CLI's report)
OptionsFor = Callable[[Job], Options]


class JobService:
    """Jobs from their upload to their deletion, on one registry, one batch service and (optionally) a journal."""

    def __init__(self, batch: BatchService, folders: JobFolders | None = None, *, options_for: OptionsFor,
                 publish: Publisher | None = None, durable: bool = True, ttl: float = 3600,
                 review_ttl: float = 3600, given_for: Callable[[FileEntry], list[Region] | None] | None = None) -> None:
        self.batch, self.folders, self.registry = batch, folders, JobRegistry()
        self.journal = Journal(folders) if folders is not None and durable else None
        self.options_for, self.publish, self.ttl = options_for, publish or write_result_zip, ttl
        self.review_ttl = review_ttl
        self.given_for = given_for  # regions to redact exactly, per file, instead of detecting (the CLI's --regions)
        self._stop = threading.Event()
        self._cancelled: set[str] = set()
        self._finishing: list[threading.Thread] = []  # shutdown lets them write their result and journal
        self._started_files: dict[str, set[int]] = {}  # per job, the files that reached a worker (cancel spares them)
        self._in_review: set[str] = set()  # running jobs started with review on
        self._edits = threading.Lock()  # one review save at a time per service: each rebuilds the zip
        self._disks: dict[str, threading.RLock] = {}  # per job: its writes and its deletion never interleave
        self._disks_guard = threading.Lock()

    def start(self, job: Job) -> None:
        """Put a new job on disk and in the registry, and queue its files."""
        if self.journal:
            self.journal.save(job)
        self.registry.add(job)
        self._run(job)

    def _run(self, job: Job) -> None:
        pending = [f for f in job.files if f.state is FileState.PENDING]
        if not pending:
            self._finish_soon(job.id)
            return
        options = self.options_for(job)
        if job.options.get("review"):
            self._in_review.add(job.id)
        for entry in pending:
            source = entry.source
            self.batch.submit((job.id, entry.index), lambda source=source: source.read_bytes(), options,
                              self._started, self._done, given=self.given_for(entry) if self.given_for else None)

    @contextmanager
    def _disk(self, job_id: str) -> Iterator[None]:
        """Hold the lock a job's folder is written and deleted under (rmtree racing a write would leave the
        folder); the lock goes once the job is no longer registered."""
        with self._disks_guard:
            lock = self._disks.setdefault(job_id, threading.RLock())
        try:
            with lock:
                yield
        finally:
            if job_id not in self.registry:
                with self._disks_guard:
                    self._disks.pop(job_id, None)

    def _reviewed(self, job_id: str) -> bool:
        """Tell whether a job keeps its originals for a review (asked once per file: no copy of the job)."""
        return job_id in self._in_review and job_id not in self._cancelled

    def _started(self, key: Hashable) -> None:
        """Mark a job running as its first photo goes to a worker (each worker holds one running, one ready).

        Until then the job waits behind others' photos, and says so: queued.
        """
        self._started_files.setdefault(key[0], set()).add(key[1])
        self.registry.start(key[0])

    def _done(self, key: Hashable, done: Done) -> None:
        """Write a file's result, record how it ended (journal first, then the original goes)."""
        job_id, index = key
        entry = self.registry.entry(job_id, index)
        if entry is None:  # deleted or expired meanwhile
            return
        outcome = done
        if not isinstance(done, FileError):
            data, outcome = done
            try:
                entry.output.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(entry.output, data)
            except OSError as exc:
                log.error("job %s: could not write %s", job_id, entry.name, exc_info=exc)
                outcome = plain(exc, "This photo")
        ended, last = self.registry.finish_file(job_id, index, outcome)
        if ended is None:
            return
        if isinstance(outcome, FileError):  # names the file, never carries its data
            log.info("job %s: %s failed (%s): %s", job_id, ended.name, outcome.code, outcome.message)
        with self._disk(job_id):
            if job_id not in self.registry:  # deleted while it was written: take back what was written
                self.folders and self.folders.of(job_id).remove()
                return
            try:
                if self.journal:
                    self.journal.record(job_id, ended)
                if not (self._reviewed(job_id) and ended.state is FileState.DONE):  # kept for the review
                    ended.source.unlink(missing_ok=True)
            except OSError:
                log.exception("job %s: could not journal %s", job_id, ended.name)
        if last:
            self._finish_soon(job_id)

    def _finish_soon(self, job_id: str) -> None:
        """Finish on a thread of its own: a result zip can take a while."""
        thread = threading.Thread(target=self._finish, args=(job_id,), name="faceguard-finish", daemon=True)
        self._finishing = [t for t in self._finishing if t.is_alive()] + [thread]
        thread.start()

    def _finish(self, job_id: str) -> None:
        """Publish the job's result, then end it: the registry decides, the journal follows."""
        job = self.registry.copy(job_id)
        if job is None:
            return
        when, cancelled = time.time(), job_id in self._cancelled
        self._in_review.discard(job_id)
        self._started_files.pop(job_id, None)  # cancel needs them no more
        try:
            self.publish(replace(job, finished=when, state=JobState.CANCELLED if cancelled else JobState.DONE))
            if job.options.get("review") and not cancelled and job.count(FileState.DONE):
                self.registry.set_review(job_id, when + self.review_ttl)  # before anyone sees it done
            self.registry.finish(job_id, when, cancelled)
        except Exception as exc:
            log.exception("job %s: could not be finished", job_id)
            self.registry.fail(job_id, plain(exc).message, when)
        try:  # a delete that came as soon as the job showed done waits for this last write
            self._save_state(job_id)
        except OSError:
            log.exception("job %s: could not save its state", job_id)

    def _save_state(self, job_id: str) -> None:
        """Write a job's state as the registry has it now, under its folder's lock."""
        with self._disk(job_id):
            final = self.registry.copy(job_id)
            if self.journal and final is not None:
                self.journal.save(final)

    def wait(self, job_id: str, timeout: float | None = None) -> dict | None:
        """Block until the job ends; return its final snapshot."""
        return self.registry.wait(job_id, timeout)

    def cancel(self, job_id: str) -> bool:
        """Stop a job: files that have not reached a worker are cancelled; what was done stays in the result.

        Returns False when there is no such job or it has already ended.
        """
        job = self.registry.copy(job_id)
        if job is None or job.state not in (JobState.QUEUED, JobState.RUNNING):
            return False
        self._cancelled.add(job_id)
        self.batch.drop(job_id)
        started = self._started_files.get(job_id, set())
        waiting = [f for f in job.files if f.state is FileState.PENDING and f.index not in started]
        for entry in waiting:
            entry.source and entry.source.unlink(missing_ok=True)
        if self.registry.cancel_files(job_id, [f.index for f in waiting]):
            self._finish_soon(job_id)  # nothing left running: end it now (else the last running file does)
        return True

    def revise(self, job_id: str, index: int, boxes: list[list[int]], timeout: float = 120) -> FileEntry:
        """Redact a reviewed photo again from its original, with exactly `boxes`; return its new entry.

        Runs through the batch service like any photo (ahead of the queue), so it works on any executor.
        A box equal to one the detector found keeps its engine and score; a new one is `manual`.
        """
        entry, job = self.registry.entry(job_id, index), self.registry.copy(job_id)
        if entry is None or job is None:
            raise NotFound("No such file in this job.")
        if job.review_until is None or entry.source is None or not entry.source.is_file():
            raise NotReady("The originals of this job are gone (approved, expired or never kept), "
                           "so its photos can no longer be changed.")
        if entry.state is not FileState.DONE:
            raise NotReady("Only a photo that was redacted can be reviewed.")
        found = {tuple(r.box()): r for r in entry.regions + entry.removed if r.source == "auto"}
        regions = [found.get(tuple(b)) or Region(*b, 1.0, "manual", 0, "manual") for b in boxes]
        removed = [r for key, r in found.items() if key not in {tuple(b) for b in boxes}]
        finished, outcome = threading.Event(), {}

        def done(_key, result: Done) -> None:
            outcome["result"] = result
            finished.set()

        source = entry.source
        self.batch.submit(("review", job_id, index), source.read_bytes, self.options_for(job), lambda _key: None,
                          done, given=regions, first=True)
        if not finished.wait(timeout):
            raise NotReady("The photo could not be redacted again in time; try again.")
        result = outcome["result"]
        if isinstance(result, FileError):
            raise ImageError(result.message, result.code)
        with self._edits, self._disk(job_id):
            write_atomic(entry.output, result[0])
            revised = self.registry.revise(job_id, index, regions, removed)
            if revised is None:
                raise NotFound("No such file in this job.")
            if self.journal:
                self.journal.record(job_id, revised)
            final = self.registry.copy(job_id)
            self.publish(final)  # the result zip holds the reviewed photo from now on
        return revised

    def approve(self, job_id: str) -> bool:
        """End a job's review: its originals go at once; the result already holds the reviewed photos."""
        job = self.registry.copy(job_id)
        if job is None:
            return False
        self._forget_originals(job)
        return True

    def _forget_originals(self, job: Job) -> None:
        for entry in job.files:
            if entry.source is not None:
                entry.source.unlink(missing_ok=True)
        self.registry.set_review(job.id, None)
        self._save_state(job.id)

    def delete(self, job_id: str) -> bool:
        """Forget a job and delete its folder; False if there was no such job."""
        with self._disk(job_id):
            if self.registry.remove(job_id) is None:
                return False
            self.batch.drop(job_id)
            if self.folders is not None:
                self.folders.of(job_id).remove()
        return True

    def resume(self) -> None:
        """Take back every job found on disk: expired ones go, unfinished ones carry on."""
        if self.journal is None:
            return
        for job in self.journal.recover():
            self.registry.add(job)
            if job.state is JobState.QUEUED:
                log.info("job %s: resuming with %d files still to do", job.id, job.count(FileState.PENDING))
                self._run(job)
        self.expire()

    def expire(self, now: float | None = None) -> list[str]:
        """Delete every finished job older than the time to live, and originals kept past their review; return the jobs' ids."""
        now = time.time() if now is None else now
        for job_id in self.registry.in_review(now):
            job = self.registry.copy(job_id)
            if job is not None:
                log.info("job %s: review time is over; its originals were deleted", job_id)
                self._forget_originals(job)
        expired = self.registry.expired(now - self.ttl)
        for job_id in expired:
            self.delete(job_id)
            log.info("job %s expired and was deleted", job_id)
        return expired

    def start_sweeper(self) -> None:
        """Delete expired jobs in the background, every minute or so."""
        interval = max(1.0, min(60.0, self.ttl / 4, self.review_ttl / 4))

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.expire()
                except Exception:  # the sweeper must outlive a bad folder
                    log.exception("expiry sweep failed")

        threading.Thread(target=loop, name="faceguard-sweeper", daemon=True).start()

    def folder(self, job_id: str) -> JobFolder | None:
        return self.folders.of(job_id) if self.folders is not None else None

    def shutdown(self) -> None:
        """Stop: files not yet done stay pending (on disk, for the next start); jobs being finished finish."""
        self._stop.set()
        self.batch.shutdown()
        for thread in self._finishing:
            thread.join(timeout=60)
