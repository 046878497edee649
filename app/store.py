"""A job's state on disk, so that a restart loses nothing: job.json and outcomes.jsonl in its folder.

job.json is written when the job is created and when it ends; every file's outcome is
appended to outcomes.jsonl as it finishes (before the file's original is deleted), so a
job killed mid-way resumes with exactly the files that have no outcome yet. Each file is
kept as `FileEntry.to_state` gives it: the report's own fields.
"""
from __future__ import annotations

import json
import logging
import threading

from app.folder import JobFolder, JobFolders, atomic
from app.jobs import FileEntry, Job, JobState

log = logging.getLogger(__name__)


class Journal:
    """Write and read the state of the jobs under one data folder."""

    def __init__(self, folders: JobFolders) -> None:
        self.folders = folders
        self._append = threading.Lock()  # a crowd's line can take several write() calls

    def save(self, job: Job) -> None:
        """Write job.json whole (atomically)."""
        doc = {"id": job.id, "state": job.state.value, "error": job.error, "created": job.created,
               "finished": job.finished, "review_until": job.review_until, "options": job.options,
               "files": [f.to_state() for f in job.files]}
        with atomic(self.folders.of(job.id).manifest, "w") as out:
            json.dump(doc, out, ensure_ascii=False)

    def record(self, job_id: str, entry: FileEntry) -> None:
        """Append one file's outcome; a line is whole or, if the process died mid-write, ignored."""
        line = json.dumps(entry.to_state(), ensure_ascii=False) + "\n"
        with self._append, open(self.folders.of(job_id).outcomes, "a", encoding="utf-8") as handle:
            handle.write(line)

    def load(self, folder: JobFolder) -> Job | None:
        """Rebuild a job from its folder, outcomes applied; None if it has no readable manifest.

        A job that had not ended is queued again: it runs once its first file reaches a worker.
        """
        try:
            doc = json.loads(folder.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        files = [FileEntry.from_state(state) for state in doc["files"]]
        if folder.outcomes.exists():
            for line in folder.outcomes.read_text(encoding="utf-8").splitlines():
                try:
                    state = json.loads(line)
                except ValueError:
                    continue  # torn last line of a killed process: that file is simply redone
                files[state["index"]] = FileEntry.from_state(state)
        ended = JobState(doc["state"]) in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
        return Job(id=doc["id"], directory=folder.path, files=files, options=doc["options"],
                   state=JobState(doc["state"]) if ended else JobState.QUEUED, error=doc["error"],
                   created=doc["created"], finished=doc["finished"], review_until=doc.get("review_until"))

    def recover(self) -> list[Job]:
        """Every job on disk; folders without a manifest (an upload cut off mid-way) are deleted."""
        jobs = []
        for folder in self.folders.each():
            job = self.load(folder)
            if job is None:
                log.info("removing %s: no job manifest (interrupted upload)", folder.id)
                folder.remove()
            else:
                jobs.append(job)
        return jobs
