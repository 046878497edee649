"""Domain exceptions and the single JSON error response."""
from __future__ import annotations

import errno

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException


class FaceGuardError(Exception):
    """Base of every error the product reports to a person."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(FaceGuardError):
    status = 400


class NotFound(FaceGuardError):
    status = 404


class NotReady(FaceGuardError):
    status = 409


class TooLarge(FaceGuardError):
    status = 413


class Unsupported(FaceGuardError):
    status = 415


class DiskFull(FaceGuardError):
    """The disk that stores uploads (or the server's quota on it) ran out of space."""

    status = 507


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def is_disk_full(error: BaseException) -> bool:
    """Tell whether an error is a disk (or quota) running out of space."""
    return isinstance(error, OSError) and error.errno in _DISK_FULL


class ImageError(FaceGuardError):
    """One image could not be processed; the message says why in plain words, the code for the page.

    Codes (stable; the page translates them): `unreadable` (not an image, or corrupt),
    `truncated`, `too_large` (pixels or frames over the limits), `needs_heic` (the optional
    extra is missing), `unsupported` (a layout that cannot be processed or written back),
    `detection` (an engine failed on it).
    """

    status = 422

    def __init__(self, message: str, code: str = "unreadable") -> None:
        super().__init__(message)
        self.code = code


def error_response(status: int, message: str) -> tuple[Response, int]:
    """Build the one JSON error shape every endpoint uses."""
    return jsonify(error=message), status


_HTTP_MESSAGES = {
    404: "Nothing here. Check the address; job ids come from POST /api/jobs.",
    405: "That method is not allowed on this address.",
}


# Werkzeug raises a bare RequestEntityTooLarge for each of its request limits; only the
# function that raised it tells them apart (Werkzeug 3.1: wsgi.py, sansio/multipart.py, formparser.py).
_RAISED_BY = {
    "get_input_stream": "MAX_CONTENT_LENGTH", "LimitedStream.on_exhausted": "MAX_CONTENT_LENGTH",
    "MultipartDecoder.next_event": "MAX_FORM_PARTS",
    "MultipartDecoder.receive_data": "MAX_FORM_MEMORY_SIZE", "MultiPartParser.parse": "MAX_FORM_MEMORY_SIZE",
}


def _limit_hit(error: BaseException) -> str | None:
    """Name the request limit (its config key) behind a 413, or None if it cannot be told."""
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return _RAISED_BY.get(trace.tb_frame.f_code.co_qualname) if trace else None


def _amount(size: int) -> str:
    """Say a number of bytes the way people read it: '2 GB', '9.8 KB'."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:,.1f}".removesuffix(".0") + f" {unit}"
    return f"{size:,} bytes"


def _too_large_message(limit: str | None, config: dict) -> str:
    """Say which of the server's upload limits a request went over."""
    if limit == "MAX_CONTENT_LENGTH":
        return (f"The upload is larger than this server accepts ({_amount(config['MAX_CONTENT_LENGTH'])} "
                "per request, its MAX_CONTENT_LENGTH). Send fewer or smaller files per job.")
    if limit == "MAX_FORM_PARTS":
        return (f"The upload holds more files than this server accepts in one job (at most "
                f"{config['MAX_FILES']:,}, its MAX_FILES). Split the photos into several jobs.")
    if limit == "MAX_FORM_MEMORY_SIZE":
        return (f"A form field other than a file is larger than this server accepts "
                f"({_amount(config['MAX_FORM_MEMORY_SIZE'])}, its MAX_FORM_MEMORY_SIZE).")
    return "The request is larger than this server accepts."


def init_app(app: Flask) -> None:
    """Answer every error, ours or Werkzeug's, with the JSON error shape."""

    @app.errorhandler(FaceGuardError)
    def _domain(error: FaceGuardError):
        return error_response(error.status, error.message)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if error.code == 413:
            message = _too_large_message(_limit_hit(error), app.config)
        else:
            message = _HTTP_MESSAGES.get(error.code, error.description or error.name)
        return error_response(error.code or 500, message)
