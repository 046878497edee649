"""Presets on real faces: the default finds the small faces of a group photo that one quick look misses."""
from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
from skimage import data

from app.pipeline import presets
from app.pipeline.detect import (
    Crowd,
    EnsembleDetector,
    FaceBox,
    Pass,
    _covering_pairs,
    _overlapping_pairs,
    fuse,
)
from app.pipeline.redact import expand
from app.pipeline.resample import turn
from tests.helpers import encode, finish, post_job, result_zip


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


def test_balanced_finds_the_small_faces_fast_misses(app, client, astronaut):
    photo, faces = group_photo(astronaut, face_px=22)  # balanced promises 20 px
    found = {}
    for preset in ("fast", "balanced"):
        snapshot = finish(app, post_job(client, [("class.png", encode(photo, ".png"))], preset=preset))
        report = json.loads(result_zip(client, snapshot["id"]).read("report.json"))
        assert report["preset"] == preset
        found[preset] = covered(report["files"][0]["regions"], faces)
        if preset == "balanced":
            assert report["engines"] == ["centerface", "mediapipe"]
            assert {d["engine"] for d in report["files"][0]["detections"]} <= {"centerface", "centerface+mediapipe"}
    assert found["balanced"] == len(faces), found
    assert found["fast"] < len(faces) // 2, found


def people_and_faces(astronaut: np.ndarray, sizes: list[tuple[int, int, int]]):
    """A 1200x800 photo of the astronaut's head and shoulders, face `px` tall at each (px, x, y); and the faces."""
    person, canvas, faces = astronaut[30:330, 130:330], np.full((800, 1200, 3), (90, 120, 80), np.uint8), []
    for px, x, y in sizes:
        small = cv2.resize(person, None, fx=px / 90, fy=px / 90, interpolation=cv2.INTER_AREA)
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
        faces.append((x + round(55 * px / 90), y + round(50 * px / 90), round(80 * px / 90), px))
    return canvas, faces


def test_fast_looks_closer_at_a_group_and_finds_its_smaller_faces(astronaut):
    # 3 people in front (120-px faces), 7 behind (36 px: about 10 px at fast's 320-px look, where
    # CenterFace scores them 0.08 at most; 0.72 and more at 640 px). This synthetic photo's small
    # faces are also found upside down, so the look at the photo as it is is the one measured here.
    front = [(120, 60 + 380 * i, 40) for i in range(3)]
    back = [(36, 60 + 160 * i, 560) for i in range(7)]
    photo, faces = people_and_faces(astronaut, front + back)
    as_is = presets.build_detector("fast").detector
    rects = [expand((f.x, f.y, f.w, f.h), 0.2 * f.margin, 1200, 800) for f in as_is(photo)]
    assert covered(rects, faces[3:]) == 7 and covered(rects, faces[:3]) == 3
    # Two people in front are no group: the closer look is not taken.
    closer = next(d for d in as_is.independent if isinstance(d, presets.GroupLook))
    assert len(closer(photo)) >= 7
    pair, _ = people_and_faces(astronaut, front[:2] + back)
    assert closer(pair) == []


def test_fast_looks_at_a_small_photo_at_its_own_size_too(astronaut):
    own = next(d for d in presets.build_detector("fast").detector.independent if isinstance(d, presets.OwnSizeLook))
    face = [(185, 80, 80, 90)]  # the astronaut's face in the 512-px photo (as `group_photo` places it)
    small = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)  # enlarged 2.5x for the 320-px look
    found = own(small)
    assert found and all(f.score >= own.bar for f in found)
    assert covered([expand((4 * f.x, 4 * f.y, 4 * f.w, 4 * f.h), 0.2, 512, 512) for f in found], face) == 1
    # A photo the look does not enlarge is not looked at twice.
    assert own(astronaut) == []


def lfw_face_at_1200_px(index: int) -> np.ndarray:
    """One of scikit-image's LFW faces, which fill their frame, enlarged to 1200 px (a passport photo, a close selfie)."""
    grey = cv2.resize((data.lfw_subset()[index] * 255).astype(np.uint8), (1200, 1200), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def fills_the_middle(faces: list[FaceBox]) -> bool:
    return any(f.h >= 600 and f.x <= 400 and f.x + f.w >= 800 for f in faces)


def close_up_look(detector) -> presets.CloseUpLook:
    """The first close-up look of a preset, checked to take only large faces (none in a group photo)."""
    close = next(d for d in detector.detector.independent if isinstance(d, presets.CloseUpLook))
    assert close(cv2.resize(group_photo(data.astronaut()[..., ::-1].copy())[0], (1200, 800))) == []
    return close


@pytest.mark.parametrize("preset", ["balanced", "thorough"])
def test_a_face_filling_a_large_photo_is_found_by_the_presets_that_look_at_640_px(preset):
    # At 1200 px, CenterFace's 640-px look sees these LFW faces 600 px tall and scored them under 0.4.
    detector = presets.build_detector(preset)
    for index in (5, 10, 36):
        assert fills_the_middle(detector(lfw_face_at_1200_px(index))), index
    close = close_up_look(detector)
    # `fast`, whose own look is at 320 px, does not take a 640-px one.
    assert presets.CloseUpLook(close.scan, 0.4, side=640)(np.zeros((1200, 1200, 3), np.uint8)) == []


def test_fast_finds_a_face_filling_a_large_photo_at_its_160_px_look():
    # These three LFW faces at 1200 px scored under fast's bar at its 320-px look; at 160 px they pass it.
    detector = presets.build_detector("fast")
    close = close_up_look(detector)
    assert close.side == 160
    for index in (9, 30, 83):
        photo = lfw_face_at_1200_px(index)
        assert fills_the_middle(close(photo)), index
        assert fills_the_middle(detector(photo)), index


def test_balanced_keeps_the_faintest_face_only_its_160_px_look_finds():
    # LFW face 30 at 1200 px: 0.49 at the 160-px look, the faintest face only that look finds; the
    # look's bar (0.47, above the other looks' 0.4) stays under it.
    detector = presets.build_detector("balanced")
    look = next(d for d in detector.detector.independent if isinstance(d, presets.CloseUpLook) and d.side == 160)
    photo = lfw_face_at_1200_px(30)
    assert fills_the_middle(look(photo))
    assert fills_the_middle(detector(photo))


@pytest.mark.parametrize("name", ["rocket", "hubble_deep_field", "logo"])
def test_fast_puts_no_region_on_a_photo_without_faces(name):
    # NASA's rocket, the Hubble deep field and scikit-image's logo: at one turn or another of each,
    # MediaPipe alone sees a face at 0.62-0.68; fast counts MediaPipe's word only where it is sure
    photo = cv2.cvtColor(getattr(data, name)()[:, :, :3], cv2.COLOR_RGB2BGR)
    detector = presets.build_detector("fast")
    assert [(q, f) for q in range(4) for f in detector(turn(photo, q))] == []


def hide_top_half(photo: np.ndarray, face: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Paint the backdrop over the top half of a face (a head in front); return the half still seen."""
    x, y, w, h = face
    photo[y:y + h // 2, x:x + w] = (90, 120, 80)
    return x, y + h // 2, w, h - h // 2


def test_a_crowd_vouches_for_its_half_hidden_faces(astronaut):
    photo, faces = group_photo(astronaut)
    hidden = [hide_top_half(photo, face) for face in faces[-3:]]
    detector = presets.build_detector("balanced")

    def regions(image):
        found = detector(image)
        return found, [expand((f.x, f.y, f.w, f.h), 0.2 * f.margin, 1200, 800) for f in found]

    found, rects = regions(photo)
    assert covered(rects, hidden) == 3 and covered(rects, faces[:-3]) == 15
    assert any(f.margin > 1 for f in found)  # at least one came in on the crowd's word, padded more
    alone = np.full_like(photo, (90, 120, 80))
    for x, y, w, h in faces[-2:]:
        alone[y - 60:y + h + 60, x - 30:x + w + 30] = photo[y - 60:y + h + 60, x - 30:x + w + 30]
    # Two people are no crowd: nothing is kept on a crowd's word, only what scores on its own.
    kept, rects = regions(alone)
    assert kept and all(f.margin == 1 and f.score >= 0.4 for f in kept)
    assert covered(rects, hidden[-2:]) == 2  # CenterFace is sure of a half-hidden face on its own


def test_crowd_keeps_faint_faces_of_the_crowds_size_only_in_a_crowd():
    sure = [FaceBox(100 + 60 * i, 100, 40, 40, 0.9, "centerface") for i in range(3)]
    middling = FaceBox(100, 300, 40, 40, 0.6, "centerface")  # between support and the threshold
    faint = FaceBox(400, 105, 36, 38, 0.2, "centerface")  # a crowd-sized face
    huge = FaceBox(500, 60, 150, 150, 0.2, "centerface")  # nearly 4x the faces beside it
    crowd = Crowd()
    kept = crowd.extra(sure + [middling, faint, huge], threshold=0.7)
    assert kept == [middling, FaceBox(400, 105, 36, 38, 0.2, "centerface", margin=crowd.margin, vouched=True)]
    # Two faces (the middling one counts: it scores the support level) are no crowd.
    assert crowd.extra(sure[:1] + [middling, faint, huge], threshold=0.7) == []


def _fuse_one_by_one(passes, threshold, overlap=0.3, min_face=12.0):
    """The plain loop `fuse` must agree with: each box against each face found so far."""
    def iou(a, b):
        ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
        iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
        return ix * iy / (a.w * a.h + b.w * b.h - ix * iy + 1e-9)

    faces = []
    for box, index in sorted(((b, i) for i, p in enumerate(passes) for b in p.boxes), key=lambda t: -t[0].score):
        face = next((f for f in faces if iou(f[0], box) > overlap), None)
        if face is None:
            faces.append((box, {index: box.score}, {box.engine}))
        else:
            face[1][index] = max(face[1].get(index, 0.0), box.score)
            face[2].add(box.engine)
    out = []
    for lead, votes, engines in faces:
        voters = {i for i, p in enumerate(passes) if lead.h * p.scale >= min_face} | set(votes)
        if sum(votes.values()) / len(voters) >= threshold:
            out.append((round(lead.x, 6), round(lead.y, 6), round(sum(votes.values()) / len(voters), 6),
                        "+".join(sorted(engines))))
    return out


def test_fuse_agrees_with_the_plain_loop_on_a_crowd_of_boxes():
    rng = np.random.default_rng(7)
    passes = []
    for scale, engine in ((1.0, "centerface"), (1.0, "centerface"), (0.6, "centerface"), (0.6, "other")):
        xy, size = rng.uniform(0, 400, (300, 2)), rng.uniform(8, 40, 300)
        scores = rng.choice([0.3, 0.5, 0.7], 300) if engine == "other" else rng.uniform(0.1, 1, 300)  # with ties
        passes.append(Pass(scale, [FaceBox(x, y, s, s * 1.1, float(score), engine)
                                   for (x, y), s, score in zip(xy, size, scores)]))
    expected = _fuse_one_by_one(passes, 0.2)
    assert len(expected) > 100 and any("+" in engines for *_, engines in expected)
    assert [(round(f.x, 6), round(f.y, 6), round(f.score, 6), f.engine) for f in fuse(passes, 0.2)] == expected


def test_pairs_of_boxes_are_the_same_found_a_few_at_a_time():
    rng = np.random.default_rng(3)
    xy, size = rng.uniform(0, 300, (500, 2)), rng.uniform(5, 60, (500, 2))
    corners = np.hstack([xy, xy + size])
    for pairs in (_overlapping_pairs, _covering_pairs):
        whole = set(zip(*(a.tolist() for a in pairs(corners, 0.3))))
        assert len(whole) > 100 and whole == set(zip(*(a.tolist() for a in pairs(corners, 0.3, chunk=37))))


def _extra_one_by_one(crowd, candidates, threshold):
    """The plain loop `Crowd.extra` must agree with: each faint face against its neighbours, then the kept ones."""
    sure = [f for f in candidates if f.score >= crowd.support]
    if len(sure) < crowd.need:
        return []
    kept_boxes = [f for f in candidates if f.score >= max(crowd.bar(f, threshold), crowd.support)]
    kept = []
    for face in candidates:
        if face.score >= crowd.bar(face, threshold):
            continue
        if face.score >= crowd.support:
            kept.append(face)
            kept_boxes.append(face)
            continue
        nearest = sorted(sure, key=lambda f: abs(f.y + f.h / 2 - (face.y + face.h / 2)))[:crowd.neighbours]
        typical = float(np.median([f.h for f in nearest]))
        if face.h < crowd.least or not crowd.sizes[0] * typical <= face.h <= crowd.sizes[1] * typical:
            continue
        covered_by = (max(0.0, min(face.x + face.w, k.x + k.w) - max(face.x, k.x))
                      * max(0.0, min(face.y + face.h, k.y + k.h) - max(face.y, k.y)) / (face.w * face.h)
                      for k in kept_boxes)
        if max(covered_by, default=0.0) > crowd.overlap:
            continue
        kept.append(replace(face, margin=crowd.margin, vouched=True))
        kept_boxes.append(face)
    return kept


def test_crowd_extra_agrees_with_the_plain_loop_on_a_crowd_of_boxes():
    rng = np.random.default_rng(11)
    xy, size = rng.uniform(0, 600, (400, 2)), rng.uniform(6, 40, 400)
    candidates = [FaceBox(x, y, s, s * 1.2, float(rng.uniform(0.03, 0.9)), "centerface")
                  for (x, y), s in zip(xy, size)]
    crowd = Crowd(support=0.35, floor=0.03, lone=15)
    expected = _extra_one_by_one(crowd, candidates, 0.4)
    assert len(expected) > 50 and any(f.margin > 1 for f in expected) and any(f.margin == 1 for f in expected)
    assert crowd.extra(candidates, 0.4) == expected


def test_default_preset_is_balanced_and_recorded(app, client, astronaut):
    snapshot = finish(app, post_job(client, [("a.jpg", encode(astronaut))]))
    assert snapshot["options"]["preset"] == "balanced" and snapshot["faces"] == 1
    assert snapshot["options"]["engines"] == ["centerface", "mediapipe"]


def test_every_preset_runs_here_at_full_strength():
    assert [presets.problem(name) for name in presets.PRESETS] == [None, None, None]


def test_fuse_keeps_consensus_and_drops_a_lone_faint_box():
    face = FaceBox(100, 100, 40, 40, 0.6, "centerface")
    faint = FaceBox(300, 300, 40, 40, 0.4, "centerface")
    tiny = FaceBox(500, 100, 8, 8, 0.5, "centerface")  # only the enlarged pass could see it
    passes = [Pass(1.0, [face, faint]), Pass(1.0, [FaceBox(102, 101, 40, 40, 0.5, "centerface")]),
              Pass(2.0, [tiny])]
    kept = fuse(passes, threshold=0.35)
    assert [(round(f.x), round(f.score, 2)) for f in kept] == [(100, 0.37), (500, 0.5)]


class _FixedLook:
    """A look that always finds the same boxes (the rule under test is the ensemble's, not an engine's)."""

    def __init__(self, boxes):
        self.boxes = boxes

    def passes(self, _image, _size=None):
        return [Pass(1.0, self.boxes)]


def test_mediapipe_sure_alone_stands_only_where_centerface_saw_something():
    image = np.zeros((400, 800, 3), np.uint8)
    faint = FaceBox(100, 100, 40, 40, 0.05, "centerface")  # far under the threshold: no face by itself
    seen = FaceBox(95, 98, 46, 44, 0.8, "mediapipe")  # MediaPipe sure of the same place
    unseen = FaceBox(500, 100, 60, 60, 0.8, "mediapipe")  # sure where CenterFace found nothing at all

    def sure(_image):
        return [seen, unseen]

    found = EnsembleDetector([_FixedLook([faint])], 0.4, crowd=Crowd(floor=0.03), seconded=[sure])(image)
    assert found == [seen]
    # The close-up looks' own verdicts need no second.
    both = EnsembleDetector([_FixedLook([faint])], 0.4, crowd=Crowd(floor=0.03), independent=[sure])(image)
    assert both == [seen, unseen]


def test_a_lone_face_smaller_than_the_promise_must_be_sure_unless_a_crowd_vouches():
    speck = FaceBox(100, 100, 12, 12, 0.45, "centerface")  # over the threshold, under `lone` pixels
    sure_speck = FaceBox(300, 100, 12, 12, 0.6, "centerface")
    face = FaceBox(500, 100, 30, 30, 0.45, "centerface")  # as faint, but the preset's size
    crowd = Crowd(lone=15)
    image = np.zeros((400, 800, 3), np.uint8)
    found = EnsembleDetector([_FixedLook([speck, sure_speck, face])], 0.4, crowd=crowd)(image)
    assert sorted(found, key=lambda f: f.x) == [sure_speck, face]
    # Among a crowd, the same speck is one of its faces.
    people = [FaceBox(100 + 40 * i, 150, 14, 14, 0.8, "centerface") for i in range(3)]
    found = EnsembleDetector([_FixedLook([speck, *people])], 0.4, crowd=crowd)(image)
    assert (speck.x, speck.y) in {(f.x, f.y) for f in found}
    # Without `lone`, the threshold alone decides (thorough's 10-px promise).
    assert speck in EnsembleDetector([_FixedLook([speck])], 0.4, crowd=Crowd())(image)
