"""Each upload limit says which limit it is, and a full disk says the disk is full."""
from __future__ import annotations

import builtins
import errno
import io
from pathlib import Path
from typing import Self

import flask
import numpy as np
import pytest
from werkzeug.test import EnvironBuilder

from app import FORM_FIELDS, ingest, store
from tests.helpers import encode, make_zip, post_job


@pytest.fixture
def small_app(make_app, tmp_path):
    """An app with small limits and a detector that finds nothing (detection is not the point here)."""
    app = make_app({"DATA_DIR": str(tmp_path / "jobs"), "EXECUTOR": "thread", "WORKERS": 1,
                      "MAX_FILES": 3, "MAX_CONTENT_LENGTH": 100_000,
                      "DETECTOR_FACTORY": lambda _options: (lambda image: [])})
    yield app
    app.extensions["faceguard"].shutdown()


def no_jobs_left(app) -> bool:
    return not any(Path(app.config["DATA_DIR"]).iterdir())


def test_more_parts_than_the_file_limit_names_the_file_limit(small_app):
    files = [(f"{i}.jpg", b"x") for i in range(3 + FORM_FIELDS + 1)]
    response = post_job(small_app.test_client(), files)
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert "more files" in error and "at most 3" in error and "MAX_FILES" in error
    assert "larger than" not in error and no_jobs_left(small_app)


def test_more_files_than_the_limit_within_the_parts_cap_names_the_file_limit_too(small_app):
    response = post_job(small_app.test_client(), [(f"{i}.jpg", b"x") for i in range(4)])
    assert response.status_code == 413 and "the limit is 3" in response.get_json()["error"]
    assert no_jobs_left(small_app)


def test_twelve_hundred_small_files_pass_the_parts_limit(app, client):
    assert app.config["MAX_FORM_PARTS"] == app.config["MAX_FILES"] + FORM_FIELDS > 1200
    response = post_job(client, [(f"{i}.txt", b"not a photo") for i in range(1200)])
    assert response.status_code == 415 and "Nothing in the upload" in response.get_json()["error"]


def test_a_body_over_the_content_length_names_the_size(small_app):
    response = post_job(small_app.test_client(), [("big.jpg", b"\0" * 200_000)])
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert "larger than this server accepts (97.7 KB" in error and "MAX_CONTENT_LENGTH" in error
    assert no_jobs_left(small_app)


def test_a_streamed_body_over_the_content_length_names_the_size(small_app):
    form = EnvironBuilder(method="POST", data={"images": (io.BytesIO(b"\0" * 200_000), "big.jpg")}).get_environ()
    response = small_app.test_client().post(
        "/api/jobs", input_stream=form["wsgi.input"], content_type=form["CONTENT_TYPE"],
        environ_overrides={"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    assert response.status_code == 413 and "MAX_CONTENT_LENGTH" in response.get_json()["error"]  # found mid-way
    assert no_jobs_left(small_app)


def test_a_huge_form_field_names_the_field_limit(small_app):
    small_app.config["MAX_CONTENT_LENGTH"] = 10_000_000
    response = post_job(small_app.test_client(), [("a.jpg", b"x")], method="blur" * 200_000)
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert "form field" in error and "MAX_FORM_MEMORY_SIZE" in error and "488.3 KB" in error


class FullFile:
    """A file whose writes fail as they do on a full disk (or an exhausted quota)."""

    def __init__(self, handle, code: int = errno.ENOSPC) -> None:
        self._handle, self._code = handle, code

    def write(self, data) -> int:
        raise OSError(self._code, "No space left on device" if self._code == errno.ENOSPC else "Disk quota exceeded")

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()


def fill_disk(monkeypatch, prefix: str, code: int = errno.ENOSPC) -> None:
    """Make ingest's writes to files whose names start with `prefix` fail for want of space."""
    def opening(path, mode="r", *args, **kwargs):
        handle = builtins.open(path, mode, *args, **kwargs)  # noqa: SIM115 - ingest's `with` closes it
        return FullFile(handle, code) if "w" in mode and Path(path).name.startswith(prefix) else handle
    monkeypatch.setattr(ingest, "open", opening, raising=False)


def assert_disk_full(app, response) -> None:
    assert response.status_code == 507, response.get_json()
    assert "disk is full" in response.get_json()["error"]
    assert no_jobs_left(app)  # the half-made job folder is gone


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_while_spooling_an_upload_is_507(small_app, monkeypatch, code):
    fill_disk(monkeypatch, "upload-", code)
    jpg = encode(np.zeros((8, 8, 3), np.uint8))
    assert_disk_full(small_app, post_job(small_app.test_client(), [("a.jpg", jpg)]))


def test_a_full_disk_while_unpacking_a_zip_is_507_not_failed_members(small_app, monkeypatch):
    fill_disk(monkeypatch, "member-")
    jpg = encode(np.zeros((8, 8, 3), np.uint8))
    response = post_job(small_app.test_client(), [("photos.zip", make_zip({"a.jpg": jpg, "b.jpg": jpg}))])
    assert_disk_full(small_app, response)


def test_a_full_disk_while_the_form_is_parsed_is_507(small_app, monkeypatch):
    monkeypatch.setattr(flask.Request, "_get_file_stream",
                        lambda self, *args, **kwargs: FullFile(io.BytesIO()))  # Werkzeug's spool for each file
    assert_disk_full(small_app, post_job(small_app.test_client(), [("a.jpg", b"x")]))


def test_a_full_disk_while_the_job_is_saved_is_507(small_app, monkeypatch):
    def no_room(self, job) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(store.Journal, "save", no_room)
    jpg = encode(np.zeros((8, 8, 3), np.uint8))
    assert_disk_full(small_app, post_job(small_app.test_client(), [("a.jpg", jpg)]))
    assert len(small_app.extensions["faceguard"].registry._jobs) == 0
