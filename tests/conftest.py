"""Shared fixtures: an app per test (through the factory), its client, and real test photos."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from skimage import data

from app import create_app
from tests.helpers import start_server, stop_server

_ARTIFACTS: list[tuple[str, str]] = []


@pytest.fixture
def record_artifact():
    """Let a test name a file it saved; the paths are printed at the end of the run."""
    return lambda what, path: _ARTIFACTS.append((what, str(path)))


def pytest_terminal_summary(terminalreporter):
    for what, path in _ARTIFACTS:
        terminalreporter.write_line(f"test artefact: {what}: {path}")


class BufferedClient(FlaskClient):
    """A test client whose responses are read whole and closed (a file response otherwise holds its file)."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        response = super().open(*args, **kwargs)
        response.close()  # its body is already read; this closes the file and the request's spooled body
        return response


@pytest.fixture(autouse=True)
def buffered_test_clients(monkeypatch):
    monkeypatch.setattr(Flask, "test_client_class", BufferedClient)


@pytest.fixture
def make_app(tmp_path):
    """Build apps through the factory (threads, a data folder under tmp_path unless told); all shut down after."""
    made = []

    def build(settings: dict | None = None):
        made.append(create_app({"DATA_DIR": str(tmp_path / "jobs"), "WORKERS": 2, "EXECUTOR": "thread",
                                "TESTING": True, **(settings or {})}))
        return made[-1]

    yield build
    for app in made:
        app.extensions["faceguard"].shutdown()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """NASA's public-domain portrait of Eileen Collins (shipped by scikit-image), as BGR."""
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for a browser test module (which imports tests.browsing, so Chromium is there)."""
    from tests.browsing import CHROMIUM, playwright_api

    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
            "--disable-background-networking", "--disable-component-update"])
        yield launched
        launched.close()


@pytest.fixture
def server(tmp_path):
    """A real server process on 127.0.0.1 with its own data folder; its base URL."""
    proc, base = start_server(tmp_path / "jobs")
    yield base
    stop_server(proc)
