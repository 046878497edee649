"""JSON API under /api/jobs: create, poll, download, delete."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, current_app, request, send_file, url_for

from app.errors import (
    BadRequest,
    DiskFull,
    NotFound,
    NotReady,
    Unsupported,
    is_disk_full,
)
from app.folder import JobFolder
from app.ingest import Intake
from app.jobs import FileState, Job, JobState
from app.pipeline.imageio import preview_bytes
from app.pipeline.presets import PRESETS, problem
from app.pipeline.process import Options
from app.pipeline.redact import METHODS

bp = Blueprint("api", __name__, url_prefix="/api/jobs")

_FLAGS = {"0": False, "false": False, "off": False, "": False, "1": True, "true": True, "on": True}


def _guard():
    return current_app.extensions["faceguard"]


def _options(form) -> Options:
    """Read the job's options from the form, refusing anything unknown."""
    method = form.get("method", "blur").strip().lower()
    if method not in METHODS:
        raise BadRequest(f"Unknown method {method!r}: use one of {', '.join(METHODS)}.")
    boxes = form.get("boxes", "0").strip().lower()
    if boxes not in _FLAGS:
        raise BadRequest("The field 'boxes' takes 1 (draw outlines) or 0 (no outlines).")
    config = current_app.config
    preset = form.get("preset", config["DEFAULT_PRESET"]).strip().lower()
    if preset not in PRESETS:
        raise BadRequest(f"Unknown preset {preset!r}: use one of {', '.join(PRESETS)}.")
    reason = problem(preset)
    if reason:
        raise BadRequest(reason)
    return Options.from_config(config, method=method, boxes=_FLAGS[boxes], preset=preset)


@contextmanager
def _storing(folder: JobFolder | None = None) -> Iterator[None]:
    """Remove the half-made job folder if anything fails; a full disk is a 507, said plainly."""
    try:
        yield
    except BaseException as exc:
        if folder is not None:
            folder.remove()
        if is_disk_full(exc):
            raise DiskFull("The server's disk is full, so the upload could not be stored; nothing of it "
                           "was kept. Try again later, or ask the server's owner to free some space.") from exc
        raise


def _collect(folder: JobFolder, uploads) -> Intake:
    """Save the uploads into a new job folder (callers remove it if anything fails)."""
    config = current_app.config
    intake = Intake(folder.create().inputs, folder.output_for, max_files=config["MAX_FILES"], max_unzipped=config["MAX_UNZIPPED_BYTES"],
                    max_ratio=config["MAX_ZIP_RATIO"])
    for upload in uploads:
        intake.add_stream(upload.filename or "unnamed", upload.stream)
    if not intake.usable:
        raise Unsupported("Nothing in the upload is a photo this tool can process. "
                          "Send photos (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF) or zips of them.")
    return intake


@bp.post("")
def create_job():
    """Accept images and zips, queue them as one job."""
    with _storing():  # Werkzeug spools large uploads to temporary files while it parses the form
        uploads = [f for f in request.files.getlist("images") if f and (f.filename or f.content_length)]
    if not uploads:
        raise BadRequest("No files were sent. Attach images or zips in the form field 'images'.")
    options = _options(request.form)
    job_id = secrets.token_hex(16)
    folder = _guard().folders.of(job_id)
    try:
        with _storing(folder):
            intake = _collect(folder, uploads)
            job = Job(id=job_id, directory=folder.path, files=intake.entries, options=options.describe())
            _guard().start(job)
    finally:
        for upload in request.files.values():  # Werkzeug's spooled copies: gone now, not when collected
            upload.close()
    return {"id": job_id, "status_url": url_for("api.job_status", job_id=job_id),
            "result_url": url_for("api.job_result", job_id=job_id)}, 202


@bp.get("/<job_id>")
def job_status(job_id: str):
    """Report the job's progress and every file's state."""
    snapshot = _guard().registry.snapshot(job_id)
    if snapshot is None:
        raise NotFound("No such job. It may have been deleted or expired; start a new one.")
    return snapshot


@bp.get("/<job_id>/result")
def job_result(job_id: str):
    """Send the result zip once the job is finished."""
    snapshot = job_status(job_id)
    if snapshot["state"] in (JobState.QUEUED, JobState.RUNNING):
        raise NotReady(f"The job is still {snapshot['state']} "
                       f"({snapshot['processed']} of {snapshot['total']} done). Try again when it is done.")
    path = _guard().folders.of(job_id).result
    if not path.is_file():
        raise NotReady(snapshot["error"] or "This job has no result to download.")
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"faceguard-{job_id[:8]}.zip")


@bp.get("/<job_id>/files/<int:index>/preview")
def file_preview(job_id: str, index: int):
    """A small JPEG of one redacted photo, for the page's before/after view."""
    entry = _guard().registry.entry(job_id, index) if job_id in _guard().registry else None
    if entry is None:
        raise NotFound("No such job. It may have been deleted or expired; start a new one.")
    if entry.state is not FileState.DONE or entry.output is None or not entry.output.is_file():
        raise NotFound("This file has no redacted photo to preview (it failed, was skipped or is not done yet).")
    return Response(preview_bytes(entry.output), mimetype="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


@bp.delete("/<job_id>")
def delete_job(job_id: str):
    """Forget the job and delete every file it has on disk."""
    if not _guard().delete(job_id):
        raise NotFound("No such job. It may have been deleted or expired already.")
    return "", 204
