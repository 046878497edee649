"""Shared fixtures: an app per test (through the factory), its client, and real test photos."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from app import create_app

_ARTIFACTS: list[tuple[str, str]] = []


@pytest.fixture
def record_artifact():
    """Let a test name a file it saved; the paths are printed at the end of the run."""
    return lambda what, path: _ARTIFACTS.append((what, str(path)))


def pytest_terminal_summary(terminalreporter):
    for what, path in _ARTIFACTS:
        terminalreporter.write_line(f"test artefact: {what}: {path}")


@pytest.fixture
def app(tmp_path):
    app = create_app({"DATA_DIR": str(tmp_path / "jobs"), "WORKERS": 2, "EXECUTOR": "thread", "TESTING": True})
    yield app
    app.extensions["faceguard"].shutdown()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """NASA's public-domain portrait of Eileen Collins (shipped by scikit-image), as BGR."""
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
