"""The page people use."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

from app.pipeline.formats import IMAGE_EXTENSIONS
from app.pipeline.presets import PRESETS, problem

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    """Serve the upload page."""
    accept = ",".join(["image/*", *sorted(IMAGE_EXTENSIONS), ".zip"])
    refused = {name: problem(name) for name in PRESETS}
    usable = [name for name in PRESETS if not refused[name]]
    default = current_app.config["DEFAULT_PRESET"]
    return render_template("index.html", accept=accept, presets=PRESETS.values(), refused=refused,
                           chosen_preset=default if default in usable else (usable or [None])[0],
                           max_bytes=current_app.config["MAX_CONTENT_LENGTH"])
