"""A job's state on disk, so that a restart loses nothing: job.json, outcomes.jsonl, expiry.

job.json is written when the job is created and when it ends; every file's outcome is
appended to outcomes.jsonl as it finishes (before the file's original is deleted), so a
job killed mid-way resumes with exactly the files that have no outcome yet.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from app.jobs import FileEntry, FileState, Job, JobRegistry, JobState, Region

log = logging.getLogger(__name__)

MANIFEST = "job.json"
OUTCOMES = "outcomes.jsonl"
JOB_ID = re.compile(r"[0-9a-f]{32}")  # secrets.token_hex(16): 128 random bits


def _entry_state(entry: FileEntry) -> dict[str, Any]:
    return {"index": entry.index, "name": entry.name, "original": entry.original,
            "state": entry.state.value, "error": entry.error,
            "source": str(entry.source) if entry.source else None,
            "output": str(entry.output) if entry.output else None,
            "width": entry.width, "height": entry.height,
            "frames": entry.frames, "format": entry.format, "written_as": entry.written_as,
            "regions": [[r.x, r.y, r.w, r.h, r.score, r.engine, r.frame] for r in entry.regions]}


def _apply(entry: FileEntry, state: dict[str, Any]) -> None:
    entry.state, entry.error = FileState(state["state"]), state["error"]
    entry.width, entry.height = state["width"], state["height"]
    entry.regions = [Region(*r) for r in state["regions"]]
    entry.frames, entry.format, entry.written_as = state.get("frames"), state.get("format"), state.get("written_as")


class Journal:
    """Write and read jobs under one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._append = threading.Lock()  # a crowd's line can take several write() calls

    def save(self, job: Job) -> None:
        """Write job.json whole (atomically)."""
        doc = {"id": job.id, "state": job.state.value, "error": job.error, "created": job.created,
               "finished": job.finished, "options": job.options, "files": [_entry_state(f) for f in job.files]}
        path = job.directory / MANIFEST
        tmp = path.with_name(MANIFEST + ".part")
        tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def record(self, job: Job, entry: FileEntry) -> None:
        """Append one file's outcome; a line is whole or, if the process died mid-write, ignored."""
        line = json.dumps(_entry_state(entry), ensure_ascii=False) + "\n"
        with self._append, open(job.directory / OUTCOMES, "a", encoding="utf-8") as handle:
            handle.write(line)

    def load(self, directory: Path) -> Job | None:
        """Rebuild a job from its folder, outcomes applied; None if it has no readable manifest."""
        try:
            doc = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        files = []
        for state in doc["files"]:
            entry = FileEntry(state["index"], state["name"], Path(state["source"]) if state["source"] else None,
                              Path(state["output"]) if state["output"] else None, original=state.get("original"))
            _apply(entry, state)
            files.append(entry)
        outcomes = directory / OUTCOMES
        if outcomes.exists():
            for line in outcomes.read_text(encoding="utf-8").splitlines():
                try:
                    state = json.loads(line)
                except ValueError:
                    continue  # torn last line of a killed process: that file is simply redone
                _apply(files[state["index"]], state)
        return Job(id=doc["id"], directory=directory, files=files, options=doc["options"],
                   state=JobState(doc["state"]), error=doc["error"], created=doc["created"],
                   finished=doc["finished"])

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.data_dir / job_id, ignore_errors=True)

    def recover(self) -> list[Job]:
        """Every job on disk; folders without a manifest (an upload cut off mid-way) are deleted."""
        jobs = []
        for directory in sorted(p for p in self.data_dir.iterdir() if p.is_dir() and JOB_ID.fullmatch(p.name)):
            job = self.load(directory)
            if job is None:
                log.info("removing %s: no job manifest (interrupted upload)", directory.name)
                shutil.rmtree(directory, ignore_errors=True)
            else:
                jobs.append(job)
        return jobs


def sweep(registry: JobRegistry, journal: Journal, ttl: float, now: float | None = None) -> list[str]:
    """Delete every finished job older than `ttl` seconds; return their ids."""
    now = time.time() if now is None else now
    expired = registry.expired(now - ttl)
    for job_id in expired:
        registry.remove(job_id)
        journal.remove(job_id)
        log.info("job %s expired and was deleted", job_id)
    return expired
