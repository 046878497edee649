"""JPEGs redacted in their DCT blocks: every coefficient outside the faces kept, no detail inside them,
the picture's tables and ICC profile kept and every other piece of metadata gone, orientation, fallbacks."""
from __future__ import annotations

import functools
import io
import json
import struct

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from app import cli
from app.batch import BatchService
from app.errors import ImageError
from app.jobs import FileEntry
from app.outcomes import ImageResult, Region
from app.pipeline import (
    encoding,
    imageio,
    lossless,
    markers,
    orientation,
    redact,
    turbo,
)
from app.pipeline.detect import FaceBox
from app.pipeline.presets import build_detector
from app.pipeline.process import Options, redact_bytes
from tests.helpers import finish, post_job, result_zip
from tests.jpegs import (
    assert_only_blocks_under,
    coefficients,
    compress,
    decoded,
    exif_with_gps_and_thumbnail,
    jpeg,
    mpo,
    segment,
    within_cells,
)
from tests.test_redact import detail

FACE = (170, 40, 120, 150)  # the astronaut's head, as a region (x, y, w, h)
# Detection is not the point here: the fixed boxes are in full-size pixels, and `balanced` decodes in full.
EXACT = Options(preset="balanced", padding=0.0)


def fixed(*boxes):
    """A detector that finds the same boxes in whatever it is shown."""
    return lambda _image: [FaceBox(*box, 0.9, "fixed") for box in boxes]


@pytest.mark.parametrize("layout", ["444", "422", "420", "440", "411", "441", "grey", "progressive", "restarts"])
def test_outside_the_faces_every_coefficient_is_the_input_s(astronaut, layout):
    if layout == "441":  # 1x4 luma: TurboJPEG's TJSAMP_441
        source = compress(astronaut, SUBSAMP=6)
    else:
        source = jpeg(astronaut, "420" if layout in ("progressive", "restarts") else layout,
                      progressive=layout == "progressive", restart=4 if layout == "restarts" else 0)
    out, result = redact_bytes(source, fixed(FACE), EXACT)
    assert (result.mode, result.mode_reason, result.regions[0].box()) == ("lossless", None, list(FACE))
    frame = markers.read_frame(source)
    assert_only_blocks_under(coefficients(source), coefficients(out), [FACE], frame)
    written = markers.read_frame(out)
    assert written.progressive == (layout == "progressive")  # SOF2 in, SOF2 out
    assert [(c.h, c.v, c.table) for c in written.components] == [(c.h, c.v, c.table) for c in frame.components]
    assert all(np.array_equal(written.tables[k], frame.tables[k]) for k in frame.tables)
    assert (0xDD in dict(markers.segments(source))) == (layout == "restarts")
    assert 0.85 < len(out) / len(source) < 1.05


@pytest.mark.parametrize("layout", ["420", "411", "grey"])
def test_a_crowd_of_overlapping_regions_at_the_edges_is_redacted_as_today_and_nothing_else_changes(astronaut, layout):
    photo = astronaut[:371, :500]  # neither side on the MCU grid: the edge blocks are padded
    crowd = [(10, 10, 60, 60), (40, 30, 60, 50), (95, 20, 30, 30), (120, 50, 40, 40),  # overlapping, touching
             (200, 200, 24, 24), (230, 200, 24, 24), (300, 100, 90, 120), (330, 150, 40, 40),
             (460, 300, 40, 71), (0, 340, 50, 31), (470, 0, 30, 30)]  # out to the right and bottom edges
    source = jpeg(photo, layout, quality=95)
    out, result = redact_bytes(source, fixed(*crowd), EXACT)
    assert result.mode == "lossless" and len(result.regions) == len(crowd)
    assert_only_blocks_under(coefficients(source), coefficients(out), crowd, markers.read_frame(source))
    today, _ = redact_bytes(source, fixed(*crowd), Options(preset="balanced", padding=0.0, reencode=True))
    for x, y, w, h in crowd:
        assert np.abs(decoded(out)[y:y + h, x:x + w].astype(int) - decoded(today)[y:y + h, x:x + w]).mean() < 3


@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
@pytest.mark.parametrize("scale", [0.5, 1, 4])
def test_no_detail_of_the_face_survives_at_any_size(astronaut, method, scale):
    photo = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    x, y, w, h = face = tuple(round(v * scale) for v in FACE)
    source = jpeg(photo, quality=95)
    out, result = redact_bytes(source, fixed(face), Options(method=method, preset="balanced", padding=0.0))
    assert result.mode == "lossless"
    before, after = photo[y:y + h, x:x + w], decoded(out)[y:y + h, x:x + w]
    assert np.abs(after.astype(int) - before).mean() > 8
    if method == "pixelate":  # sharp cell edges by design: no detail within the cells
        assert within_cells(after, 2) < 4 and within_cells(before, 0) > 15
    else:
        assert detail(after) < (0.15 if method == "blur" else 0.02) * detail(before)
    # and it is today's redaction, only quantised with the photo's own tables
    again, _ = redact_bytes(source, fixed(face), Options(method=method, preset="balanced", padding=0.0, reencode=True))
    assert np.abs(after.astype(int) - decoded(again)[y:y + h, x:x + w]).mean() < 3


def test_outlines_are_whole_where_a_box_meets_the_block_grid(astronaut):
    face = (160, 32, 128, 160)  # on the 16-pixel grid: the outline reaches into the blocks beside it
    source = jpeg(astronaut, quality=95)
    out, _ = redact_bytes(source, fixed(face), Options(boxes=True, preset="balanced", padding=0.0))
    today, _ = redact_bytes(source, fixed(face), Options(boxes=True, preset="balanced", padding=0.0, reencode=True))
    reach = redact.outline_thickness(512, 512)
    x, y, w, h = face
    area = (slice(y - reach, y + h + reach), slice(x - reach, x + w + reach))
    assert np.abs(decoded(out)[area].astype(int) - decoded(today)[area]).mean() < 3
    outside = (y - 1, slice(x, x + w))  # the outline's half outside the box, in the blocks above it
    assert np.abs(decoded(out)[outside].astype(int) - decoded(source)[outside]).mean() > 40


def test_metadata_is_dropped_but_the_tables_and_the_icc_profile_stay(astronaut):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    thumbnail = jpeg(cv2.resize(astronaut, (64, 64)), quality=50)
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><exif:GPSLatitude>xmp-secret</exif:GPSLatitude></x:xmpmeta>"
    iptc = b"\x1c\x02\x50\x00\x0biptc-secret"  # 2:80 By-line
    photoshop = b"Photoshop 3.0\x00" + b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    extra = (exif_with_gps_and_thumbnail(thumbnail) + segment(0xE1, xmp) + segment(0xED, photoshop)
             + segment(0xFE, b"comment-secret") + segment(0xE2, b"FPXR\x00fpxr-secret"))
    plain = encoding.with_profile(jpeg(astronaut), "JPEG", icc)
    source = markers.with_segments(plain, extra) + b"trailing-secret"
    with Image.open(io.BytesIO(source)) as img:  # the file is well-formed and holds it all
        assert img.getexif().get_ifd(0x8825)[1] == "N" and img.info["icc_profile"] == icc
    out, result = redact_bytes(source, fixed(FACE), EXACT)
    assert result.mode == "lossless"
    for secret in (b"FaceGuardTestCam", b"xmp-secret", b"iptc-secret", b"comment-secret", b"fpxr-secret",
                   b"trailing-secret", b"Exif", b"8BIM"):
        assert secret not in out
    assert out.count(b"\xff\xd8") == 1 and out.endswith(b"\xff\xd9") and out.count(b"\xff\xd9") == 1  # no thumbnail
    kept = markers.segments(out)
    assert {marker for marker, _ in kept} <= {0xE0, 0xE2, 0xDB, 0xC0, 0xC4, 0xDA}
    assert all(payload.startswith(b"ICC_PROFILE\x00") for marker, payload in kept if marker == 0xE2)
    with Image.open(io.BytesIO(out)) as img:
        assert img.info["icc_profile"] == icc and not img.getexif()


def _portrait(astronaut: np.ndarray, width: int, height: int) -> np.ndarray:
    """An upright portrait (width x height) cut from the astronaut photo around the face."""
    return np.ascontiguousarray(cv2.resize(astronaut, (max(width, 512), max(height, 512)))[:height, 64:64 + width])


@pytest.mark.parametrize("value,size,sampling,turned", [
    (6, (384, 512), "420", True), (6, (378, 500), "420", False), (6, (384, 512), "422", True),
    (8, (378, 512), "420", True), (8, (384, 500), "420", False), (3, (384, 512), "444", True),
    (3, (384, 500), "420", False)])
@pytest.mark.parametrize("review", [False, True])  # found on the full decode, or given: the area decoded again
def test_orientation_is_applied_losslessly_where_the_grid_allows_else_kept_in_a_minimal_exif(
        astronaut, value, size, sampling, turned, review):
    upright = _portrait(astronaut, *size)
    stored = orientation.unorient(upright, value)  # as a camera held that way stores it
    plain = jpeg(stored, sampling)
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = value, "FaceGuardTestCam"
    source = markers.with_segments(plain, segment(0xE1, exif.tobytes()))
    face = (100, 40, 120, 150)  # upright pixels
    given = [Region(*face, 1.0, "manual", source="manual")] if review else None
    out, result = redact_bytes(source, fixed(face), EXACT, given)
    assert (result.mode, result.width, result.height) == ("lossless", *size)
    frame, written = markers.read_frame(source), markers.read_frame(out)
    with Image.open(io.BytesIO(out)) as img:
        tags = dict(img.getexif())
    if turned:
        assert (written.width, written.height) == size and not tags and result.mode_reason is None
        assert_only_blocks_under(coefficients(source, orientation.TURNS[value]), coefficients(out), [face], frame,
                                 turned=orientation.swaps(value))
    else:
        assert (written.width, written.height) == stored.shape[1::-1] and tags == {0x0112: value}
        assert f"orientation {value} kept" in result.mode_reason and b"FaceGuardTestCam" not in out
        stored_face = orientation.to_stored(face, value, *size)
        assert_only_blocks_under(coefficients(source), coefficients(out), [stored_face], frame)
    shown = decoded(out)  # as a viewer shows it: upright, the face redacted where it is
    assert shown.shape[:2] == (size[1], size[0])
    x, y, w, h = face
    assert detail(shown[y:y + h, x:x + w]) < 0.15 * detail(upright[y:y + h, x:x + w])
    rest = np.ones(shown.shape[:2], bool)
    rest[max(0, y - 16):y + h + 16, max(0, x - 16):x + w + 16] = False
    assert np.abs(shown[rest].astype(int) - upright[rest]).mean() < 3


@pytest.mark.parametrize("value", range(1, 9))
def test_rectangles_map_between_stored_and_upright_pixels_as_orient_turns_them(value):
    stored = np.zeros((60, 100), np.uint8)
    stored[10:25, 30:70] = 255  # a 40x15 marker at (30, 10)
    upright = imageio.orient(stored, value)
    ys, xs = np.nonzero(upright)
    seen = (int(xs.min()), int(ys.min()), int(xs.max() + 1 - xs.min()), int(ys.max() + 1 - ys.min()))
    assert orientation.to_upright((30, 10, 40, 15), value, 100, 60) == seen
    assert orientation.to_stored(seen, value, upright.shape[1], upright.shape[0]) == (30, 10, 40, 15)
    assert np.array_equal(orientation.unorient(upright, value), stored)


def test_review_regions_are_redacted_losslessly(astronaut):
    source = jpeg(astronaut)
    given = [Region(*FACE, 1.0, "manual", source="manual")]
    out, result = redact_bytes(source, None, EXACT, given=given)
    assert (result.mode, result.regions) == ("lossless", given)
    assert_only_blocks_under(coefficients(source), coefficients(out), [FACE], markers.read_frame(source))


def test_reencode_is_today_s_decode_redact_encode(astronaut):
    source = jpeg(astronaut, quality=80)
    out, result = redact_bytes(source, fixed(FACE), Options(preset="balanced", padding=0.0, reencode=True))
    assert (result.mode, result.mode_reason) == ("reencoded", "re-encoding was asked for")
    picture = imageio.read_image(source, 10**8)
    redact.redact_in_place(picture.frames[0], [FACE], "blur")
    assert out == encoding.encode(picture, picture.frames, 92)


@pytest.mark.parametrize("kind,reason", [("arithmetic", "arithmetic coding"), ("sof3", "lossless (SOF3) coding"),
                                         ("cmyk", "CMYK colour"), ("mpo", "several pictures in one file (MPO)")])
def test_what_the_lossless_path_cannot_take_is_reencoded_with_the_reason(astronaut, kind, reason):
    if kind in ("arithmetic", "sof3"):
        source = compress(astronaut, **{"ARITHMETIC" if kind == "arithmetic" else "LOSSLESS": 1})
    elif kind == "cmyk":
        buffer = io.BytesIO()
        Image.fromarray(astronaut[:, :, ::-1]).convert("CMYK").save(buffer, "JPEG")
        source = buffer.getvalue()
    else:
        source = mpo(astronaut)
    out, result = redact_bytes(source, fixed(FACE), EXACT)
    assert (result.mode, result.mode_reason) == ("reencoded", reason)
    x, y, w, h = FACE
    assert detail(decoded(out)[y:y + h, x:x + w]) < 0.15 * detail(astronaut[y:y + h, x:x + w])


def test_a_twelve_bit_jpeg_which_no_decoder_here_reads_fails_with_the_reason(astronaut):
    source = compress(astronaut, TWELVE=1)
    with pytest.raises(ImageError, match="12-bit samples") as failure:
        redact_bytes(source, fixed(FACE), EXACT)
    assert failure.value.code == "unsupported"


def test_without_the_library_jpegs_are_reencoded_with_the_reason(astronaut, monkeypatch):
    monkeypatch.setattr(turbo, "problem", lambda: "libjpeg-turbo could not be loaded (test)")
    _, result = redact_bytes(jpeg(astronaut), fixed(FACE), EXACT)
    assert (result.mode, result.mode_reason) == ("reencoded", "libjpeg-turbo could not be loaded (test)")


def test_a_fallback_after_detection_redacts_what_was_found_without_looking_again(astronaut, monkeypatch):
    def refuse(*_args):
        raise lossless.Fallback("libjpeg-turbo refused the file (test)")

    monkeypatch.setattr(lossless, "write", refuse)
    looks = []
    out, result = redact_bytes(jpeg(astronaut), lambda image: looks.append(image.shape) or fixed(FACE)(image), EXACT)
    assert (result.mode, result.mode_reason, len(looks)) == ("reencoded", "libjpeg-turbo refused the file (test)", 1)
    assert [r.box() for r in result.regions] == [list(FACE)]


def test_fast_looks_at_a_smaller_decode_and_finds_the_face(astronaut, monkeypatch):
    photo = cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)  # 1536: 1/2 is >= 640
    source = jpeg(photo)
    scales = []
    real = turbo.decode
    monkeypatch.setattr(turbo, "decode", lambda data, denom=1, crop=None, **kw: scales.append(denom)
                        or real(data, denom, crop, **kw))
    out, result = redact_bytes(source, build_detector("fast"), Options(preset="fast"))
    assert result.mode == "lossless" and scales[0] == 2
    x, y, w, h = (v * 3 for v in FACE)
    boxes = [r.box() for r in result.regions]
    assert any(bx <= x + w / 2 <= bx + bw and by <= y + h / 2 <= by + bh for bx, by, bw, bh in boxes), boxes
    head = (x + w // 4, y + h // 4, w // 2, h // 2)
    hx, hy, hw, hh = head
    assert detail(decoded(out)[hy:hy + hh, hx:hx + hw]) < 0.15 * detail(photo[hy:hy + hh, hx:hx + hw])
    scales.clear()
    lossless.open_source(source, 10**8).preview(None)  # balanced and thorough: full size
    assert scales == [1]


def test_report_json_says_how_each_jpeg_was_written(make_app, astronaut):
    app = make_app({"DETECTOR_FACTORY": lambda _options: fixed(FACE), "BOX_PADDING": 0.0})
    client = app.test_client()
    files = [("a.jpg", jpeg(astronaut)), ("b.png", cv2.imencode(".png", astronaut)[1].tobytes()),
             ("c.jpg", compress(astronaut, ARITHMETIC=1))]
    modes = {}
    for reencode in ("0", "1"):
        snapshot = finish(app, post_job(client, files, reencode=reencode))
        assert snapshot["options"].get("reencode", False) == (reencode == "1")
        report = json.loads(result_zip(client, snapshot["id"]).read("report.json"))
        assert report.get("reencode", False) == (reencode == "1")
        modes[reencode] = {f["name"]: (f["mode"], f["mode_reason"]) for f in report["files"]}
    assert modes["0"] == {"a.jpg": ("lossless", None), "b.png": (None, None),
                          "c.jpg": ("reencoded", "arithmetic coding")}
    asked = ("reencoded", "re-encoding was asked for")
    assert modes["1"] == {"a.jpg": asked, "b.png": (None, None), "c.jpg": asked}


def test_the_cli_writes_jpegs_losslessly_unless_told_to_reencode(tmp_path, astronaut, monkeypatch):
    monkeypatch.setenv("FACEGUARD_EXECUTOR", "thread")
    monkeypatch.setattr(cli, "BatchService", functools.partial(BatchService, detector_factory=lambda _o: fixed(FACE)))
    source = tmp_path / "in" / "a.jpg"
    source.parent.mkdir()
    source.write_bytes(jpeg(astronaut))
    for flags, mode in (([], ("lossless", None)), (["--reencode"], ("reencoded", "re-encoding was asked for"))):
        out = tmp_path / f"out{len(flags)}"
        assert cli.main([str(source), "-o", str(out), "--preset", "balanced", *flags]) == 0
        report = json.loads((out / "report.json").read_text())
        assert report.get("reencode", False) == bool(flags)
        assert (report["files"][0]["mode"], report["files"][0]["mode_reason"]) == mode


def test_the_journal_keeps_how_a_jpeg_was_written():
    entry = FileEntry(0, "a.jpg", source=None, output=None)
    entry.end(ImageResult(512, 512, [Region(*FACE, 0.9, "fixed")], 1, "JPEG", None, "lossless", "orientation 6 kept"))
    back = FileEntry.from_state(json.loads(json.dumps(entry.to_state())))
    assert (back.mode, back.mode_reason) == ("lossless", "orientation 6 kept") and back.report() == entry.report()
