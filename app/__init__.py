"""Face Privacy Guard: the application factory."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from app import errors
from app.batch import BatchService
from app.config import ROOT, load_config
from app.folder import JobFolders
from app.jobs import Job
from app.pipeline import presets
from app.pipeline.process import Options
from app.service import JobService

# Multipart parts a job's request may hold besides its files (method, boxes, preset, and room to grow).
FORM_FIELDS = 16


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build an app with its own registry, executor and data folder; resume the jobs found there."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(load_config(config))
    # Werkzeug's own cap on parts (1,000) would refuse a job long before MAX_FILES.
    app.config["MAX_FORM_PARTS"] = app.config["MAX_FILES"] + FORM_FIELDS
    app.json.ensure_ascii = False
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    for name in presets.PRESETS:  # asked once, at start-up, and said loudly
        reason = presets.problem(name)
        if reason:
            logging.getLogger(__name__).warning("%s Jobs asking for it are refused.", reason)

    batch = BatchService(app.config["WORKERS"], kind=app.config["EXECUTOR"], scheduler=app.config["SCHEDULER"],
                         detector_factory=app.config.get("DETECTOR_FACTORY"), warm=_first_detector(app.config))
    config = dict(app.config)
    jobs = JobService(batch, JobFolders(Path(app.config["DATA_DIR"])), ttl=app.config["RESULT_TTL"],
                      review_ttl=app.config["REVIEW_TTL"], options_for=lambda job: _options_for(config, job))
    app.extensions["faceguard"] = jobs
    batch.start_workers()  # so the first photo does not wait for worker processes to start
    jobs.resume()
    jobs.start_sweeper()

    errors.init_app(app)
    from app.web import api, pages

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    return app


def _options_for(config: dict[str, Any], job: Job) -> Options:
    """A job's frozen options: the person's choices, recorded with the job, and the server's settings."""
    return Options.from_config(config, method=job.options["method"], boxes=job.options["boxes"],
                               preset=job.options["preset"])


def _first_detector(config: dict[str, Any]) -> Options | None:
    """The options whose detector each worker process builds as it starts: the default preset's."""
    if config["EXECUTOR"] == "thread" or config.get("DETECTOR_FACTORY"):
        return None
    return Options.from_config(config, method="blur", boxes=False, preset=config["DEFAULT_PRESET"])
