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
from app.pipeline.imageio import preview_bytes, viewable_bytes
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
    boxes = _flag(form, "boxes", "1 (draw outlines) or 0 (no outlines)")
    config = current_app.config
    preset = form.get("preset", config["DEFAULT_PRESET"]).strip().lower()
    if preset not in PRESETS:
        raise BadRequest(f"Unknown preset {preset!r}: use one of {', '.join(PRESETS)}.")
    reason = problem(preset)
    if reason:
        raise BadRequest(reason)
    reencode = _flag(form, "reencode", "1 (decode and encode JPEGs again) or 0 (only the faces' blocks change)")
    return Options.from_config(config, method=method, boxes=boxes, preset=preset, reencode=reencode)


def _flag(form, field: str, meaning: str) -> bool:
    """Read a yes/no form field (absent: no)."""
    value = form.get(field, "0").strip().lower()
    if value not in _FLAGS:
        raise BadRequest(f"The field '{field}' takes {meaning}.")
    return _FLAGS[value]


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
    review = _flag(request.form, "review", "1 (keep the originals for a review) or 0")
    job_id = secrets.token_hex(16)
    folder = _guard().folders.of(job_id)
    try:
        with _storing(folder):
            intake = _collect(folder, uploads)
            job = Job(id=job_id, directory=folder.path, files=intake.entries,
                      options={**options.describe(), "review": review})
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


def _entry(job_id: str, index: int):
    entry = _guard().registry.entry(job_id, index) if job_id in _guard().registry else None
    if entry is None:
        raise NotFound("No such job or file. It may have been deleted or expired; start a new one.")
    return entry


def _file_view(entry, job) -> dict:
    """A file as the review sees it."""
    reviewable = (entry.state is FileState.DONE and job.review_until is not None and entry.source is not None
                  and entry.source.is_file() and job.state is JobState.DONE and (entry.frames or 1) == 1)
    return {"index": entry.index, "name": entry.name, "state": entry.state.value, "width": entry.width,
            "height": entry.height, "reviewable": reviewable,
            "regions": [{k: v for k, v in r.describe().items() if k != "frame"} for r in entry.regions],
            "removed": [{k: v for k, v in r.describe().items() if k != "frame"} for r in entry.removed]}


@bp.get("/<job_id>/files/<int:index>")
def file_detail(job_id: str, index: int):
    """One file: its size, state, and every region with its engine, score and source."""
    entry = _entry(job_id, index)
    return _file_view(entry, _guard().registry.copy(job_id))


@bp.get("/<job_id>/files/<int:index>/original")
def file_original(job_id: str, index: int):
    """The upright original of a photo kept for the review (404 once the originals are gone)."""
    entry, job = _entry(job_id, index), _guard().registry.copy(job_id)
    if job.review_until is None or entry.source is None or not entry.source.is_file():
        raise NotFound("The original of this photo is not kept (review off, approved or expired).")
    return Response(viewable_bytes(entry.source, upright=True), mimetype="image/jpeg",
                    headers={"Cache-Control": "no-store"})


@bp.get("/<job_id>/files/<int:index>/redacted")
def file_redacted(job_id: str, index: int):
    """The full-size redacted photo, as a browser shows it."""
    entry = _entry(job_id, index)
    if entry.state is not FileState.DONE or entry.output is None or not entry.output.is_file():
        raise NotFound("This file has no redacted photo (it failed, was skipped or is not done yet).")
    return Response(viewable_bytes(entry.output), mimetype="image/jpeg", headers={"Cache-Control": "no-store"})


@bp.put("/<job_id>/files/<int:index>/regions")
def file_regions(job_id: str, index: int):
    """Replace a photo's regions with a person's (output pixels, the complete list); redact it again."""
    entry, job = _entry(job_id, index), _guard().registry.copy(job_id)
    if job.state in (JobState.QUEUED, JobState.RUNNING):
        raise NotReady("The job is still running; review it once it is done.")
    boxes = _boxes(request.get_json(silent=True), entry.width or 0, entry.height or 0)
    revised = _guard().revise(job_id, index, boxes)
    return _file_view(revised, _guard().registry.copy(job_id))


def _boxes(doc, width: int, height: int) -> list[list[int]]:
    """Check a review's list of [x, y, w, h] boxes against the photo's size."""
    if not isinstance(doc, dict) or not isinstance(doc.get("regions"), list):
        raise BadRequest('Send JSON {"regions": [[x, y, w, h], ...]}: the complete new list, in output pixels.')
    boxes = []
    for box in doc["regions"]:
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                for v in box)):
            raise BadRequest(f"Malformed box {box!r}: each region is [x, y, w, h], four whole numbers.")
        x, y, w, h = box
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise BadRequest(f"The box {box!r} is empty or lies outside the {width}x{height} photo.")
        boxes.append(box)
    return boxes


@bp.post("/<job_id>/approve")
def approve_job(job_id: str):
    """End the review: the originals are deleted now; the result zip holds the reviewed photos."""
    if not _guard().approve(job_id):
        raise NotFound("No such job. It may have been deleted or expired already.")
    return job_status(job_id)


@bp.post("/<job_id>/cancel")
def cancel_job(job_id: str):
    """Stop a running job: photos already redacted stay in the result; the rest are not processed."""
    if job_id not in _guard().registry:
        raise NotFound("No such job. It may have been deleted or expired already.")
    if not _guard().cancel(job_id):
        raise NotReady("The job has already ended; there is nothing to cancel.")
    return job_status(job_id)
