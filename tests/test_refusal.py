"""A preset whose engine cannot be had is refused with the reason, before any work: never a weaker look in silence."""
from __future__ import annotations

from pathlib import Path

import pytest

from app import cli
from app.pipeline import presets
from tests.helpers import encode, post_job

REASON = "ONNX Runtime cannot be loaded (no wheel for this platform)."


@pytest.fixture
def no_centerface(monkeypatch):
    """This machine as one where CenterFace's runtime is missing (the engine's absence is the point)."""
    monkeypatch.setitem(presets._PROBLEMS, "centerface", lambda: REASON)
    presets.engine_problem.cache_clear()
    yield
    presets.engine_problem.cache_clear()


def test_the_api_refuses_the_preset_with_the_reason(no_centerface, client, astronaut, app):
    response = post_job(client, [("a.jpg", encode(astronaut))], preset="balanced")
    assert response.status_code == 400
    assert REASON in response.get_json()["error"] and "balanced" in response.get_json()["error"]
    assert not [p for p in Path(app.config["DATA_DIR"]).iterdir() if p.is_dir()]  # no job was started


def test_the_page_shows_the_preset_disabled_and_why(no_centerface, client):
    page = client.get("/").get_data(as_text=True)
    for name in presets.PRESETS:  # every preset needs CenterFace
        assert f'value="{name}" disabled' in page
    assert REASON in page and "checked" not in page.split('name="preset"')[1].split("</fieldset>")[0]


def test_the_cli_exits_2_before_any_work(no_centerface, tmp_path, astronaut, capsys):
    import cv2

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    cv2.imwrite(str(src / "a.jpg"), astronaut)
    assert cli.main([str(src), "-o", str(out), "--preset", "thorough"]) == 2
    assert REASON in capsys.readouterr().err
    assert not out.exists()
