"""Jobs, their files, and the lock-protected registry the progress endpoint reads."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from app.outcomes import FileError, Outcome, Region
from app.pipeline.redact import covered_share


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # stopped by a person: what was done stays, the rest was never processed


class FileState(str, Enum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # not an image (e.g. .DS_Store in a zip): listed, never processed
    CANCELLED = "cancelled"  # its job was cancelled before it reached a worker


@dataclass
class FileEntry:
    """One input file of a job: where it is, where its output goes, how it ended."""

    index: int
    name: str
    original: str | None = field(default=None, kw_only=True)  # the name as received, if `name` differs
    source: Path | None
    output: Path | None
    state: FileState = FileState.PENDING
    error: str | None = None
    width: int | None = None
    height: int | None = None
    regions: list[Region] = field(default_factory=list)
    frames: int | None = None  # frames or pages processed, once done
    format: str | None = None  # the format read
    written_as: str | None = None  # the format written, where it differs (HEIC and AVIF become JPEG)
    code: str | None = None  # the error's stable code (see outcomes.FileError), for programs and the page
    removed: list[Region] = field(default_factory=list)  # detector's regions a person removed in the review

    def summary(self) -> dict[str, Any]:
        """What the progress endpoint shows of the file."""
        named = {"name": self.name, "original_name": self.original} if self.original else {"name": self.name}
        return {**named, "state": self.state.value, "faces": len(self.regions), "error": self.error,
                "code": self.code}

    def end(self, outcome: Outcome) -> None:
        """Record how the file ended."""
        if isinstance(outcome, FileError):
            self.state, self.code, self.error = FileState.FAILED, outcome.code, outcome.message
            self.regions = []
            return
        self.state, self.code, self.error = FileState.DONE, None, None
        self.width, self.height, self.regions = outcome.width, outcome.height, list(outcome.regions)
        self.frames, self.format, self.written_as = outcome.frames, outcome.format, outcome.written_as

    def to_state(self) -> dict[str, Any]:
        """The file as the journal keeps it: the report's fields plus where its files are."""
        return {"index": self.index, "source": str(self.source) if self.source else None,
                "output": str(self.output) if self.output else None, **self.report()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FileEntry:
        """Rebuild a file from `to_state`'s fields."""
        entry = cls(state["index"], state["name"], original=state.get("original_name"),
                    source=Path(state["source"]) if state["source"] else None,
                    output=Path(state["output"]) if state["output"] else None,
                    state=FileState(state["state"]), error=state["error"], code=state.get("code"))
        entry.width, entry.height = state.get("width"), state.get("height")
        entry.frames, entry.format, entry.written_as = state.get("frames"), state.get("format"), state.get("written_as")
        entry.regions = [Region.from_description(d) for d in state.get("detections", [])]
        entry.removed = [Region.from_description(d) for d in state.get("removed", [])]
        return entry

    def report(self) -> dict[str, Any]:
        share = covered_share([r.box() for r in self.regions], self.width, self.height) if self.width else None
        return {**self.summary(), "width": self.width, "height": self.height,
                "redacted_share": None if share is None else round(share, 4),
                "format": self.format, "written_as": self.written_as, "frames": self.frames,
                "regions": [r.box() for r in self.regions],
                "detections": [r.describe() for r in self.regions],
                **({"removed": [r.describe() for r in self.removed]} if self.removed else {}),
                **({"regions_per_frame": [[r.box() for r in self.regions if r.frame == i] for i in range(self.frames)]}
                   if self.frames and self.frames > 1 else {})}


@dataclass
class Job:
    id: str
    directory: Path
    files: list[FileEntry]
    options: dict[str, Any]
    state: JobState = JobState.QUEUED
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    review_until: float | None = None  # originals kept for the review until then (None: not kept)

    def count(self, state: FileState) -> int:
        return sum(1 for f in self.files if f.state is state)

    def counts(self) -> dict[str, int]:
        """How many files there are to process, and how far the job has come."""
        done, failed = self.count(FileState.DONE), self.count(FileState.FAILED)
        return {"total": len(self.files) - self.count(FileState.SKIPPED),
                "processed": done + failed, "done": done, "failed": failed,
                "skipped": self.count(FileState.SKIPPED), "cancelled": self.count(FileState.CANCELLED),
                "faces": sum(len(f.regions) for f in self.files)}

    def to_dict(self) -> dict[str, Any]:
        """Snapshot for the progress endpoint."""
        return {"id": self.id, "state": self.state.value, "error": self.error, **self.counts(),
                "review": {"originals": self.review_until is not None, "until": self.review_until},
                "options": dict(self.options),
                "files": [f.summary() for f in self.files]}

    def report_head(self) -> dict[str, Any]:
        """report.json without its list of files (results.py writes those one at a time)."""
        return {"job": self.id, **self.options, "created": self.created, "finished": self.finished,
                "summary": self.counts()}

    def report(self) -> dict[str, Any]:
        """The report.json document: every input file and how it ended."""
        return {**self.report_head(), "files": [f.report() for f in self.files]}


# The steps a job's state may take: queued until its first file reaches a worker; then done or
# failed. A job with nothing left to process goes from queued straight to its end.
_STEPS = {JobState.QUEUED: {JobState.RUNNING, JobState.DONE, JobState.FAILED, JobState.CANCELLED},
          JobState.RUNNING: {JobState.DONE, JobState.FAILED, JobState.CANCELLED},
          JobState.DONE: set(), JobState.FAILED: set(), JobState.CANCELLED: set()}


class JobRegistry:
    """All jobs of one app, behind one lock; readers get copies."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._pending: dict[str, int] = {}  # files left per job: finish_file must not count them all each time
        self._changed = threading.Condition()

    def add(self, job: Job) -> None:
        with self._changed:
            self._jobs[job.id] = job
            self._pending[job.id] = job.count(FileState.PENDING)
            self._changed.notify_all()

    def snapshot(self, job_id: str) -> dict[str, Any] | None:
        with self._changed:
            job = self._jobs.get(job_id)
            return job.to_dict() if job else None

    def copy(self, job_id: str) -> Job | None:
        """A detached copy of the job and its files, for work outside the lock."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return replace(job, files=[replace(f, regions=list(f.regions), removed=list(f.removed)) for f in job.files],
                           options=dict(job.options))

    def start(self, job_id: str) -> bool:
        """Mark a queued job running (its first file went to a worker); False if it was not queued."""
        return self._move(job_id, JobState.RUNNING)

    def finish(self, job_id: str, when: float | None = None, cancelled: bool = False) -> bool:
        return self._move(job_id, JobState.CANCELLED if cancelled else JobState.DONE, finished=when or time.time())

    def fail(self, job_id: str, error: str, when: float | None = None) -> bool:
        return self._move(job_id, JobState.FAILED, error=error, finished=when or time.time())

    def finish_file(self, job_id: str, index: int, outcome: Outcome) -> tuple[FileEntry | None, bool]:
        """Record one file's outcome; return a copy of its entry, and whether it was the job's last.

        A file ends once: a second outcome (a task Dask ran again after a worker died) is ignored.
        """
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None or job.files[index].state is not FileState.PENDING:
                return None, False
            entry = job.files[index]
            entry.end(outcome)
            self._pending[job_id] -= 1
            self._changed.notify_all()
            return replace(entry, regions=list(entry.regions)), self._pending[job_id] == 0

    def cancel_files(self, job_id: str, indices: list[int]) -> bool:
        """Mark pending files cancelled (they never reached a worker); return whether none is left pending."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            for index in indices:
                if job.files[index].state is FileState.PENDING:
                    job.files[index].state = FileState.CANCELLED
                    self._pending[job_id] -= 1
            self._changed.notify_all()
            return self._pending[job_id] == 0

    def revise(self, job_id: str, index: int, regions: list[Region], removed: list[Region]) -> FileEntry | None:
        """Replace a done file's regions with the reviewed ones; return a copy of its entry."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None or job.files[index].state is not FileState.DONE:
                return None
            entry = job.files[index]
            entry.regions, entry.removed = list(regions), list(removed)
            self._changed.notify_all()
            return replace(entry, regions=list(entry.regions), removed=list(entry.removed))

    def set_review(self, job_id: str, until: float | None) -> None:
        """Keep the originals for the review until `until`, or say they are gone (None)."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is not None:
                job.review_until = until
                self._changed.notify_all()

    def in_review(self, before: float) -> list[str]:
        """Ids of the jobs whose originals were kept for a review that ended before `before`."""
        with self._changed:
            return [j.id for j in self._jobs.values() if j.review_until is not None and j.review_until < before]

    def entry(self, job_id: str, index: int) -> FileEntry | None:
        """A copy of one file's entry."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None or not 0 <= index < len(job.files):
                return None
            return replace(job.files[index], regions=list(job.files[index].regions))

    def expired(self, before: float) -> list[str]:
        """Ids of the jobs that ended before the given time."""
        with self._changed:
            return [j.id for j in self._jobs.values() if j.finished is not None and j.finished < before]

    def remove(self, job_id: str) -> Job | None:
        with self._changed:
            job = self._jobs.pop(job_id, None)
            self._pending.pop(job_id, None)
            self._changed.notify_all()
            return job

    def __contains__(self, job_id: str) -> bool:
        with self._changed:
            return job_id in self._jobs

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until the job is done, failed or gone; return its last snapshot."""
        def ended() -> bool:
            job = self._jobs.get(job_id)
            return job is None or job.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

        with self._changed:
            self._changed.wait_for(ended, timeout)
            job = self._jobs.get(job_id)
            return job.to_dict() if job else None

    def _move(self, job_id: str, to: JobState, **changes: Any) -> bool:
        """Change a job's state along an allowed step only; False when the job is gone or the step is not allowed."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None or to not in _STEPS[job.state]:
                return False
            job.state = to
            for key, value in changes.items():
                setattr(job, key, value)
            self._changed.notify_all()
            return True
