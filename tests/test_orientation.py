"""Any orientation, size, tone and shape: real engines on NASA's astronaut photo, turned, tiled, darkened, cut thin."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from app.pipeline import presets
from app.pipeline.detect import FaceBox, Tilted, Turns, _apart
from app.pipeline.engines import CenterFaceDetector, CenterFaceScan
from app.pipeline.process import Options, find_regions
from app.pipeline.resample import (
    LIFT,
    NOISY,
    for_detection,
    noise_level,
    rescale,
    tiles,
    tilted_whole,
    turn,
    unturn_box,
)

FACE = (175, 54, 100, 126)  # the astronaut's face as CenterFace boxes it upright (x, y, w, h)


def overlap(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


@pytest.mark.parametrize("quarters", [1, 2, 3])
def test_a_box_found_in_a_turned_copy_maps_back_onto_the_image(quarters):
    image = np.zeros((60, 100), np.uint8)
    image[10:25, 30:70] = 255  # a 40x15 marker at (30, 10)
    turned = turn(image, quarters)
    ys, xs = np.nonzero(turned)
    found = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    assert unturn_box(found, quarters, 100, 60) == (30, 10, 40, 15)


@pytest.mark.parametrize("preset", ["fast", "balanced"])
@pytest.mark.parametrize("quarters", [1, 2, 3])
def test_a_photo_turned_without_exif_still_has_its_face_found(astronaut, preset, quarters):
    detector = presets.build_detector(preset)
    turned = turn(astronaut, quarters)
    height, width = turned.shape[:2]
    face = unturn_box(FACE, 4 - quarters, width, height)  # where the face is in the turned photo
    found = [(f.x, f.y, f.w, f.h) for f in detector(for_detection(turned))]
    assert any(overlap(face, box) > 0.5 for box in found), found


@pytest.mark.parametrize("quarters", [0, 1, 2, 3])
def test_fast_finds_a_mostly_hidden_close_up_in_a_thumbnail_at_every_turn(astronaut, quarters):
    head = astronaut[20:300, 90:370].copy()  # a close-up: the face is 126 of its 280 px
    x, y, w, h = FACE[0] - 90, FACE[1] - 20, FACE[2], FACE[3]
    head[y:y + h, x + 9:x + 65] = 90  # most of it hidden (a hand, a head in front)
    scale = 64 / 280  # a 64-px thumbnail: CenterFace at the thumbnail's own size finds nothing
    thumb = cv2.resize(head, (64, 64), interpolation=cv2.INTER_AREA)
    face = unturn_box((x * scale, y * scale, w * scale, h * scale), 4 - quarters, 64, 64)
    found = [(f.x, f.y, f.w, f.h) for f in presets.build_detector("fast")(turn(thumb, quarters))]
    assert any(overlap(face, box) > 0.3 for box in found), found


@pytest.fixture(scope="module")
def balanced():
    return presets.build_detector("balanced")


@pytest.mark.parametrize("degrees", [45, -45, 135, -135])
def test_balanced_finds_a_small_face_tilted_between_two_quarter_turns(astronaut, balanced, degrees):
    small = cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA)  # her face about 20x25 px
    canvas = np.full((720, 960, 3), 128, np.uint8)
    tilt = cv2.getRotationMatrix2D((48, 48), degrees, 1.0)
    tilt[:, 2] += [480 - 48, 360 - 48]
    cv2.warpAffine(small, tilt, (960, 720), canvas, borderMode=cv2.BORDER_TRANSPARENT)
    x, y = tilt @ np.array([(FACE[0] + FACE[2] / 2) * 96 / 512, (FACE[1] + FACE[3] / 2) * 96 / 512, 1.0])
    faces = balanced(for_detection(canvas))
    assert [f for f in faces if f.x <= x <= f.x + f.w and f.y <= y <= f.y + f.h and f.score >= 0.5]
    assert len(faces) == 1  # and nothing else on the grey canvas


def _heads(astronaut, sides: list[int]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A group: the astronaut's head at each size in a row on a grey 1280x900 canvas, and its faces' centres."""
    head = astronaut[20:300, 90:370]  # her face's centre is at (135, 97) in this cut
    canvas = np.full((900, 1280, 3), 128, np.uint8)
    centres, x, y, row = [], 30, 30, 0
    for side in sides:
        if x + side > 1250:
            x, y, row = 30, y + row + 16, 0
        canvas[y:y + side, x:x + side] = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
        centres.append((x + 135 * side / 280, y + 97 * side / 280))
        x, row = x + side + 16, max(row, side)
    return canvas, centres


def test_a_group_tilted_as_a_whole_gets_the_full_look_turned_upright(astronaut, balanced, monkeypatch):
    canvas, centres = _heads(astronaut, [150, 150, 70, 70, 70, 60, 60, 60])
    tilted = balanced.detector.tilted
    find, looks = tilted.find, []

    def spied(image, candidates, kept, look=None):
        def whole(turned):
            looks.append((turned.shape, look(turned)))
            return looks[-1][1]
        return find(image, candidates, kept, whole if look else None)

    monkeypatch.setattr(tilted, "find", spied)
    assert balanced(for_detection(canvas)) and looks == []  # upright: the tilted look finds nothing to turn
    photo, back = tilted_whole(canvas, 45)  # the group tilted 45 degrees counter-clockwise
    faces = balanced(for_detection(photo))
    on_photo = [cv2.transform(np.array([[c]]), cv2.invertAffineTransform(back))[0, 0] for c in centres]
    assert all(any(f.x <= x <= f.x + f.w and f.y <= y <= f.y + f.h for f in faces) for x, y in on_photo)
    upright, back_again = tilted_whole(photo, -45)  # the cuts found faces turned 45 degrees clockwise
    shape, found = looks[0]
    assert shape == upright.shape
    # Mapped back onto the photo, the whole look's faces (not the faint boxes its crowd rule vouches
    # for around them, on the repeated suits) are the heads, every one of them.
    mapped = [back_again @ np.array([f.x + f.w / 2, f.y + f.h / 2, 1.0]) for f in found if f.score >= 0.3]
    assert all(any(abs(x - cx) + abs(y - cy) < 20 for cx, cy in on_photo) for x, y in mapped), mapped
    assert all(any(abs(x - cx) + abs(y - cy) < 20 for x, y in mapped) for cx, cy in on_photo), mapped


def test_fast_hands_fainter_boxes_to_its_tilted_look_and_decides_as_before(astronaut):
    looks = presets.build_detector("fast").detector
    canvas, _ = _heads(astronaut, [150, 150, 70, 70, 70, 60, 60, 60])
    photo, _ = tilted_whole(canvas, 45)
    passes = [p for member in looks.members for p in member.passes(for_detection(photo))]
    faces, everything = looks._decide(passes)
    tilted, looks.tilted = looks.tilted, None
    assert looks._decide(passes)[0] == faces  # the faces it keeps are those it kept without the tilted look
    assert all(f.score >= 0.2 for f in looks._decide(passes)[1])  # without it, boxes down to its crowd floor
    assert any(f.score < 0.2 for f in everything) and all(f.score >= tilted.low for f in everything)


@pytest.mark.parametrize("sure, whole", [(3, True), (15, True), (24, False), (200, False)])
def test_a_photo_is_tilted_as_a_whole_only_when_its_tilted_faces_are_a_fair_share(sure, whole, monkeypatch):
    # The decision alone: the cuts' verdicts are given (every faint box is a face turned 45 degrees).
    tilted = Tilted(model=None)
    monkeypatch.setattr(tilted, "_look", lambda image, box: (box, 45.0))
    kept = [FaceBox(40 * (i % 40), 40 * (i // 40), 30, 30, 0.9, "centerface") for i in range(sure)]
    faint = [FaceBox(2000 + 40 * i, 1000, 30, 30, 0.3 - i / 1000, "centerface") for i in range(2)]
    image, wholes = np.zeros((1200, 4000, 3), np.uint8), []
    found = tilted.find(image, kept + faint, kept, look=lambda turned: wholes.append(turned.shape) or [])
    assert found == faint
    # 2 faces turned the same way make a group of 3 or 15 tilted; beside 24 or 200 sure upright faces,
    # they are two heads on shoulders (one for every 8 upright faces is the bar).
    assert bool(wholes) == whole


def test_the_tilted_look_looks_at_more_boxes_in_a_larger_photo(monkeypatch):
    tilted, looked = Tilted(model=None), []
    monkeypatch.setattr(tilted, "_look", lambda image, box: looked.append(box))
    faint = [FaceBox(10 * i, 10, 20, 20, 0.3, "centerface") for i in range(400)]
    for height, width, most in ((1080, 1920, 16), (6000, 8000, 192)):
        looked.clear()
        tilted.find(np.broadcast_to(np.uint8(0), (height, width, 3)), faint, [])
        assert len(looked) == most  # 16 boxes, and 16 more for every 4 MP of a larger photo


@pytest.mark.parametrize("chunk", [1, 3, 256])
def test_the_tilted_look_takes_the_best_faint_boxes_clear_of_the_faces_kept(chunk):
    kept = [FaceBox(100, 100, 40, 40, 0.9, "centerface"), FaceBox(300, 100, 40, 40, 0.8, "centerface")]
    faint = [*kept,  # the faces kept are boxes of the looks too
             FaceBox(110, 110, 80, 80, 0.4, "centerface"),  # its centre in the first face
             FaceBox(280, 60, 120, 70, 0.35, "centerface"),  # its centre above the second face, holding that face's
             FaceBox(500, 100, 30, 30, 0.3, "centerface"),
             FaceBox(139, 100, 40, 40, 0.2, "centerface"),  # beside the first face, centres outside each other
             FaceBox(600, 300, 30, 30, 0.1, "centerface"),
             FaceBox(700, 300, 30, 30, 0.05, "centerface")]
    assert _apart(faint, kept, 2, chunk) == [faint[4], faint[5]]
    assert _apart(faint, kept, 9, chunk) == faint[4:]
    assert _apart(faint, [], 3, chunk) == faint[:3]


def test_the_faint_boxes_clear_of_a_crowd_are_those_a_box_by_box_check_gives():
    def clear(box, faces):  # the rule, one box and one face at a time
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        for f in faces:
            mx, my = f.x + f.w / 2, f.y + f.h / 2
            if (f.x <= cx <= f.x + f.w and f.y <= cy <= f.y + f.h) or (
                    box.x <= mx <= box.x + box.w and box.y <= my <= box.y + box.h):
                return False
        return True

    rng = np.random.default_rng(5)
    # A crowd of small faces on a 5-px grid (edges meet centres exactly), and a few wide ones
    # starting far to the left of boxes whose centres they hold.
    kept = [FaceBox(*map(float, 10 * rng.integers(0, 300, 2)), *map(float, 10 * rng.integers(1, 6, 2)), 0.9,
                    "centerface") for _ in range(600)]
    kept += [FaceBox(float(x), 100.0 + x, 900.0, 80.0, 0.9, "centerface") for x in (0, 1200, 2100)]
    boxes = [*kept[::3], *(FaceBox(*map(float, 5 * rng.integers(0, 600, 2)), *map(float, 10 * rng.integers(1, 12, 2)),
                                   0.5, "centerface") for _ in range(1500))]
    boxes.sort(key=lambda b: -b.score)
    expected = [box for box in boxes if clear(box, kept)]
    assert 50 < len(expected) < len(boxes) - len(kept) // 3  # some boxes are clear, and not every other one
    assert any(not clear(b, kept[-3:]) and clear(b, kept[:-3]) for b in boxes)  # the wide faces matter
    for most in (10, 200, len(boxes)):
        assert _apart(boxes, kept, most, chunk=256) == expected[:most]


def test_turns_get_the_full_look_only_where_the_checks_say_so(astronaut):
    calls = []
    sure = FaceBox(200, 60, 100, 120, 0.9, "centerface")

    def full(found):
        def look(image):
            calls.append(image.shape)
            return found if len(calls) == 1 else []
        return look

    def check(answers):
        turns = iter(answers)  # the check is asked about the photo as it is, then each turn
        return lambda small: next(turns)

    def seen_turned(box, quarters):  # the box as a check of the turned photo reports it
        return replace(box, **dict(zip("xywh", unturn_box((box.x, box.y, box.w, box.h), 4 - quarters,
                                                          *turn(astronaut, quarters).shape[1::-1]))))

    # An upright face, and the turned checks see only less of it: the upright look alone.
    Turns(full([sure]), check=check([[sure], [], [seen_turned(replace(sure, score=0.6), 2)], []]),
          check_side=512)(astronaut)
    assert len(calls) == 1
    # The same, but a sure face where the upright look found none (someone lying down) in one turn.
    calls.clear()
    lying = FaceBox(10, 10, 30, 40, 0.8, "centerface")
    Turns(full([sure]), check=check([[sure], [lying], [], []]), check_side=512)(astronaut)
    assert len(calls) == 2
    # A tilted face's loose box over the one lying down is not an upright face: that turn is looked at still.
    calls.clear()
    loose = FaceBox(0, 0, 60, 70, 0.7, "centerface", tilted=True)
    Turns(full([sure, loose]), check=check([[sure], [lying], [], []]), check_side=512)(astronaut)
    assert len(calls) == 2
    # A photo turned sideways: a turn shows more face than the photo as it is (the same faces, surer).
    calls.clear()
    other = FaceBox(320, 60, 100, 120, 0.6, "centerface")
    faint = [replace(sure, score=0.6), other]
    Turns(full(faint), check=check([faint[:1], [], [], [seen_turned(sure, 3), seen_turned(replace(other, score=0.8), 3)]]),
          check_side=512)(astronaut)
    assert len(calls) == 2
    # Nothing sure anywhere (a sideways crowd of small faces, or no one): every turn is looked at.
    calls.clear()
    Turns(full([replace(sure, score=0.2)]), check=check([[], [], [], []]))(astronaut)
    assert len(calls) == 4


def test_a_face_a_turn_is_sure_of_stays_sure_where_the_photo_as_it_is_saw_it_faint(astronaut):
    # A close group selfie turned upside down: the look at the photo as it is finds one face sure and
    # another only faintly (a crowd's word keeps it, padded more and within the half-photo budget);
    # the turned look is sure of both. The faint face is past the budget, so only the turn's verdict
    # keeps it redacted.
    height, width = astronaut.shape[:2]
    close = FaceBox(0, 0, width, 300, 0.9, "centerface")  # with its padding, over half the photo
    faint = FaceBox(300, 350, 100, 120, 0.1, "centerface", margin=1.5, vouched=True)
    sure = FaceBox(290, 340, 120, 130, 0.85, "mediapipe")
    calls = []

    def full(image):
        calls.append(image.shape)
        if len(calls) == 1:
            return [close, faint]
        assert len(calls) == 2  # the half turn only
        return [replace(b, **dict(zip("xywh", unturn_box((b.x, b.y, b.w, b.h), 2, width, height))))
                for b in (close, sure)]

    answers = iter([[close], [], [close, sure], []])  # the check sees more face upside down: looked at
    faces = Turns(full, check=lambda small: next(answers), check_side=512)(astronaut)
    assert len(calls) == 2
    [joined] = [f for f in faces if f.score < 0.9]
    assert (joined.score, joined.vouched, joined.engine) == (0.85, False, "centerface+mediapipe")
    assert (joined.x, joined.y, joined.w, joined.h, joined.margin) == (300, 350, 100, 120, 1.5)  # its box as it was
    regions = find_regions(astronaut, lambda image: faces, Options(preset="balanced"))
    assert any(r.x <= 300 and r.y <= 350 and r.x + r.w >= 400 and r.y + r.h >= 470 for r in regions)
    # What the photo as it is found alone: the faint face does not fit the budget, and is left.
    alone = find_regions(astronaut, lambda image: [close, faint], Options(preset="balanced"))
    assert len(alone) == 1


def test_the_photo_as_it_is_is_checked_at_the_coarse_looks_size_and_looked_at_once(astronaut):
    sizes = []

    def check(small):
        sizes.append(small.shape[:2])
        return []

    Turns(lambda image: [], check=check, check_side=256, as_is_side=480)(astronaut)  # astronaut: 512x512
    assert sizes == [(480, 480), (256, 256), (256, 256), (256, 256)]
    # CenterFace looks at a frame it saw a moment ago once: the coarse look and that check are one.
    model = CenterFaceDetector(floor=0.3)
    runs = []
    run = model._session.run
    model._session = type("Session", (), {"run": lambda _self, *a: runs.append(1) or run(*a)})()
    frame = rescale(astronaut, 480 / 512)
    first = model.look(frame)
    assert model.look(frame.copy()) == first and len(runs) == 1 and first
    model.look(frame[:, ::-1])  # another frame of the same size is looked at
    assert len(runs) == 2


def test_balanced_takes_its_coarse_look_once_where_its_fine_look_is_two_tiles(astronaut):
    # A 2048x1152 photo: the coarse look, two fine tiles and the two close-up looks come before the
    # check of the photo as it is, which is the coarse look again.
    detector = presets.build_detector("balanced")
    model = detector.check
    shapes = []
    run = model._session.run
    model._session = type("Session", (), {"run": lambda _self, out, feed: shapes.append(feed[model._input].shape)
                                          or run(out, feed)})()
    detector(cv2.resize(astronaut, (2048, 1152)))
    assert shapes.count((1, 3, 384, 640)) == 1 and shapes.count((1, 3, 640, 1024)) == 2


def test_tiles_cover_a_frame_and_overlap_enough_for_a_face():
    cut = tiles(4267, 3200, 1024, 160)
    covered = np.zeros((3200, 4267), bool)
    for x, y, w, h in cut:
        assert w <= 1024 and h <= 1024
        covered[y:y + h, x:x + w] = True
    assert covered.all()
    xs = sorted({x for x, _, _, _ in cut})
    assert all(b - a <= 1024 - 160 for a, b in zip(xs, xs[1:]))
    assert tiles(800, 600, 1024, 160) == [(0, 0, 800, 600)]


def test_a_small_face_in_a_48_megapixel_photo_is_found(astronaut):
    canvas = np.full((6000, 8000, 3), 128, np.uint8)
    face = cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA)  # the face is about 24 px tall
    canvas[4000:4096, 6000:6096] = face
    expected = (6000 + FACE[0] * 96 / 512, 4000 + FACE[1] * 96 / 512, FACE[2] * 96 / 512, FACE[3] * 96 / 512)
    scan = CenterFaceScan(CenterFaceDetector(floor=0.3), min_face=20)
    assert len(scan.scales(6000, 8000)) >= 2  # a tiled look at the 20-px scale, and coarser ones
    found = [(b.x, b.y, b.w, b.h) for p in scan.passes(canvas) for b in p.boxes]
    assert any(overlap(expected, box) > 0.4 for box in found), found
    # One look at the whole frame, as before tiling, cannot see it.
    assert not any(overlap(expected, (b.x, b.y, b.w, b.h)) > 0.4 for b in scan.look(canvas, 1024 / 8000).boxes)


def test_tiles_of_one_tone_are_not_looked_at(astronaut):
    canvas = np.full((3000, 4000, 3), 128, np.uint8)  # the grey a tilted photo is turned on, say
    canvas[2000:2096, 3000:3096] = cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA)
    canvas[500:503, 1003:1006] = 0  # a speck between the points the quick check samples
    model = CenterFaceDetector(floor=0.3)
    scan, looked = CenterFaceScan(model, min_face=20), []
    look = model.look
    model.look = lambda frame: looked.append(frame.shape) or look(frame)
    scale = scan.scales(3000, 4000)[-1]  # the finest look, in tiles
    frame_tiles = tiles(round(4000 * scale), round(3000 * scale), scan.tile, scan.overlap)
    found = scan.look(canvas, scale).boxes
    expected = (3000 + FACE[0] * 96 / 512, 2000 + FACE[1] * 96 / 512, FACE[2] * 96 / 512, FACE[3] * 96 / 512)
    assert any(overlap(expected, (b.x, b.y, b.w, b.h)) > 0.4 for b in found), found
    assert len(frame_tiles) == 6 and 2 <= len(looked) <= 4  # the face's tiles and the speck's, not the rest


def test_detection_sees_a_stretched_copy_of_dark_deep_and_dithered_photos(astronaut):
    dark = cv2.convertScaleAbs(astronaut, alpha=0.2)
    assert for_detection(dark).max() > 200 and dark.max() < 60  # the input is not changed
    deep = (astronaut.astype(np.uint16) * 16)  # 12-bit values in a 16-bit image
    view = for_detection(deep)
    assert view.dtype == np.uint8 and view.max() > 200
    dithered = np.where(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY) > np.random.default_rng(1).integers(
        0, 256, astronaut.shape[:2]), 255, 0).astype(np.uint8)
    smooth = for_detection(cv2.cvtColor(dithered, cv2.COLOR_GRAY2BGR))
    assert len(np.unique(smooth)) > 50
    detector = presets.build_detector("balanced")
    for image in (dark, deep, cv2.cvtColor(dithered, cv2.COLOR_GRAY2BGR)):
        assert any(overlap(FACE, (f.x, f.y, f.w, f.h)) > 0.4 for f in detector(for_detection(image)))


def test_detection_sees_a_smoothed_copy_of_a_grainy_photo_and_clean_photos_as_they_are(astronaut):
    grainy = np.clip(astronaut + np.random.default_rng(1).normal(0, 25, astronaut.shape), 0, 255).astype(np.uint8)
    assert noise_level(astronaut) < NOISY < 2 * NOISY < noise_level(grainy)
    assert np.array_equal(for_detection(astronaut), astronaut)  # a clean photo is looked at as it is
    view = for_detection(grainy)
    assert noise_level(view) < NOISY and noise_level(grainy) > 2 * NOISY  # smoothed; the input is not changed
    detector = presets.build_detector("balanced")
    assert any(overlap(FACE, (f.x, f.y, f.w, f.h)) > 0.4 for f in detector(view))


def test_detection_sees_a_dim_channel_of_a_strong_colour_cast_lifted(astronaut):
    head = astronaut[20:300, 90:370].copy()  # a close-up, half of its face hidden (a hand, a head in front)
    x, y, w, h = FACE[0] - 90, FACE[1] - 20, FACE[2], FACE[3]
    head[y:y + h, x + 9:x + 59] = 90
    warm = cv2.transform(head, np.diag([0.3, 0.6, 1.0]))  # blue 0.3x, green 0.6x: a warm white balance gone wrong
    view = for_detection(warm)
    top = [np.percentile(image[:, :, 0], 99.5) for image in (warm, view)]
    assert top[0] < 80 and 1.9 * top[0] < top[1] <= LIFT * top[0] + 1  # lifted, at most LIFT times
    assert np.array_equal(view[:, :, 2], warm[:, :, 2])  # red keeps its full range: left as it is
    assert warm[:, :, 0].max() < 80  # the input is not changed
    assert np.array_equal(for_detection(head), head)  # every channel of its full range: looked at as it is
    balanced = presets.build_detector("balanced")
    assert any(overlap((x, y, w, h), (f.x, f.y, f.w, f.h)) > 0.3 for f in balanced(view))


@pytest.mark.parametrize("shape", [(1, 4000), (4000, 1), (1, 1), (3, 7)])
def test_degenerate_shapes_have_nothing_to_find(shape):
    strip = np.full((*shape, 3), 200, np.uint8)
    view = for_detection(strip)
    assert min(view.shape[:2]) >= 64
    for name in presets.PRESETS:
        assert presets.build_detector(name)(view) == []
