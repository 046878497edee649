"""Domain exceptions and the single JSON error response."""
from __future__ import annotations

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


class ImageError(FaceGuardError):
    """One image could not be processed; the message says why, in plain words."""

    status = 422


def error_response(status: int, message: str) -> tuple[Response, int]:
    """Build the one JSON error shape every endpoint uses."""
    return jsonify(error=message), status


_HTTP_MESSAGES = {
    404: "Nothing here. Check the address; job ids come from POST /api/jobs.",
    405: "That method is not allowed on this address.",
}


def init_app(app: Flask) -> None:
    """Answer every error, ours or Werkzeug's, with the JSON error shape."""

    @app.errorhandler(FaceGuardError)
    def _domain(error: FaceGuardError):
        return error_response(error.status, error.message)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if error.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            message = (f"The upload is larger than this server accepts ({limit / 1024**2:,.0f} MB). "
                       "Send fewer or smaller files per job.")
        else:
            message = _HTTP_MESSAGES.get(error.code, error.description or error.name)
        return error_response(error.code or 500, message)
