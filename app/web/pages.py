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


@bp.get("/jobs/<job_id>")
def job_page(job_id: str):
    """Serve the same page at a job's own address: the page reads the id from the path and asks the API.

    Whether the job exists is the API's to say (with the token, where one is needed): this answers
    any id alike, so the address tells nothing to someone without the token.
    """
    return index()
