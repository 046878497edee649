"""Face Privacy Guard: the application factory."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from app import errors
from app.batch import BatchService
from app.config import ROOT, load_config
from app.jobs import JobRegistry
from app.pipeline import presets
from app.pipeline.process import Options
from app.service import FaceGuard
from app.store import Journal

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

    data_dir = Path(app.config["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    registry, journal = JobRegistry(), Journal(data_dir)
    batch = BatchService(registry, workers=app.config["WORKERS"], kind=app.config["EXECUTOR"], journal=journal,
                         detector_factory=app.config.get("DETECTOR_FACTORY"), warm=_first_detector(app.config))
    guard = FaceGuard(config=dict(app.config), data_dir=data_dir, registry=registry, batch=batch, journal=journal)
    app.extensions["faceguard"] = guard
    if batch.kind == "process":
        batch.start_workers()  # so the first photo does not wait for workers to start
    guard.resume()
    guard.start_sweeper()

    errors.init_app(app)
    from app.web import api, pages

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    return app


def _first_detector(config: dict[str, Any]) -> Options | None:
    """The options whose detector each worker process builds as it starts: the default preset's."""
    if config["EXECUTOR"] != "process" or config.get("DETECTOR_FACTORY"):
        return None
    return Options.from_config(config, method="blur", boxes=False, preset=config["DEFAULT_PRESET"])
