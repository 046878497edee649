"""Presets on real faces: the default finds the small faces of a group photo that one quick look misses."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.pipeline import presets
from app.pipeline.detect import FaceBox, Pass, fuse, yunet_available
from tests.helpers import encode, finish, post_job, result_zip

needs_yunet = pytest.mark.skipif(not yunet_available(), reason="yuface has no wheel for this platform")


def group_photo(astronaut: np.ndarray, face_px: int = 30) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A 1200x800 'class photo': the astronaut's head and shoulders, 3 rows of 6, faces about face_px tall."""
    person = astronaut[30:330, 130:330]  # 200 wide: the face is about 90 px tall in it
    scale = face_px / 90
    small = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((800, 1200, 3), (90, 120, 80), np.uint8)
    faces = []
    for row in range(3):
        for col in range(6):
            x, y = 60 + col * 190, 120 + row * 230
            canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
            faces.append((x + round(55 * scale), y + round(50 * scale), round(80 * scale), round(90 * scale)))
    return canvas, faces


def covered(regions, faces, share=0.7) -> int:
    mask = np.zeros((800, 1200), bool)
    for x, y, w, h in regions:
        mask[y:y + h, x:x + w] = True
    return sum(mask[y:y + h, x:x + w].mean() >= share for x, y, w, h in faces)


@needs_yunet
def test_balanced_finds_the_small_faces_fast_misses(app, client, astronaut):
    photo, faces = group_photo(astronaut)
    found = {}
    for preset in ("fast", "balanced"):
        snapshot = finish(app, post_job(client, [("class.png", encode(photo, ".png"))], preset=preset))
        report = json.loads(result_zip(client, snapshot["id"]).read("report.json"))
        assert report["preset"] == preset
        found[preset] = covered(report["files"][0]["regions"], faces)
        if preset == "balanced":
            assert report["engines"] == ["mediapipe", "yunet"]
            assert {d["engine"] for d in report["files"][0]["detections"]} <= {"yunet", "mediapipe", "mediapipe+yunet"}
    assert found["balanced"] == len(faces), found
    assert found["fast"] < len(faces) // 2, found


def test_default_preset_is_balanced_and_recorded(app, client, astronaut):
    snapshot = finish(app, post_job(client, [("a.jpg", encode(astronaut))]))
    expected = "balanced" if yunet_available() else "fast"
    assert snapshot["options"]["preset"] == expected and snapshot["faces"] == 1


def test_without_yunet_the_preset_falls_back_and_says_so(monkeypatch):
    monkeypatch.setattr(presets, "yunet_available", lambda: False)
    preset, note = presets.resolve("thorough")
    assert preset.name == "fast" and "not installed" in note
    assert presets.engines("balanced") == ["mediapipe"]


def test_fuse_keeps_consensus_and_drops_a_lone_faint_box():
    face = FaceBox(100, 100, 40, 40, 0.6, "yunet")
    faint = FaceBox(300, 300, 40, 40, 0.4, "yunet")
    tiny = FaceBox(500, 100, 8, 8, 0.5, "yunet")  # only the enlarged pass could see it
    passes = [Pass(1.0, [face, faint]), Pass(1.0, [FaceBox(102, 101, 40, 40, 0.5, "yunet")]),
              Pass(2.0, [tiny])]
    kept = fuse(passes, threshold=0.35)
    assert [(round(f.x), round(f.score, 2)) for f in kept] == [(100, 0.37), (500, 0.5)]
