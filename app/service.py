"""The state one app owns, and what it does with jobs: start, resume, delete, expire."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.batch import BatchService
from app.jobs import Job, JobRegistry, JobState
from app.pipeline.process import Options
from app.results import write_result_zip
from app.store import Journal, sweep

log = logging.getLogger(__name__)


@dataclass
class FaceGuard:
    """An app's config, job registry, batch service and journal."""

    config: dict[str, Any]
    data_dir: Path
    registry: JobRegistry
    batch: BatchService
    journal: Journal
    _stop: threading.Event = field(default_factory=threading.Event)

    def options_for(self, job: Job) -> Options:
        return Options.from_config(self.config, method=job.options["method"], boxes=job.options["boxes"],
                                   preset=job.options["preset"])

    def start(self, job: Job) -> None:
        """Put a new job on disk and in the registry, and queue its files."""
        self.journal.save(job)
        self.registry.add(job)
        self.batch.submit(job, self.options_for(job), write_result_zip)

    def delete(self, job_id: str) -> bool:
        """Forget a job and delete its folder; False if there was no such job."""
        if self.registry.remove(job_id) is None:
            return False
        self.journal.remove(job_id)
        return True

    def resume(self) -> None:
        """Take back every job found on disk: expired ones go, unfinished ones carry on."""
        for job in self.journal.recover():
            self.registry.add(job)
            if job.state in (JobState.QUEUED, JobState.RUNNING):
                log.info("job %s: resuming with %d files still to do", job.id,
                         sum(f.state.value == "pending" for f in job.files))
                self.batch.submit(job, self.options_for(job), write_result_zip)
        self.expire()

    def expire(self, now: float | None = None) -> list[str]:
        return sweep(self.registry, self.journal, self.config["RESULT_TTL"], now)

    def start_sweeper(self) -> None:
        """Delete expired jobs in the background, every minute or so."""
        interval = max(1.0, min(60.0, self.config["RESULT_TTL"] / 4))

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.expire()
                except Exception:  # the sweeper must outlive a bad folder
                    log.exception("expiry sweep failed")

        threading.Thread(target=loop, name="faceguard-sweeper", daemon=True).start()

    def shutdown(self) -> None:
        self._stop.set()
        self.batch.shutdown()
