"""The page people use."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

from app.pipeline.imageio import IMAGE_EXTENSIONS
from app.pipeline.presets import PRESETS

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    """Serve the upload page."""
    accept = ",".join(sorted(IMAGE_EXTENSIONS) + [".zip"])
    return render_template("index.html", accept=accept, presets=PRESETS.values(),
                           default_preset=current_app.config["DEFAULT_PRESET"],
                           max_bytes=current_app.config["MAX_CONTENT_LENGTH"])
