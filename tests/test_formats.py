"""Every real photo comes out right: every frame and page, colour profiles, alpha, HEIC/AVIF/GIF, trailers."""
from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps, ImageSequence

from app.errors import ImageError
from app.pipeline import imageio, presets
from app.pipeline.formats import jpeg_end, output_name, sniff
from app.pipeline.process import Options, process_image
from tests.helpers import finish, post_job, result_zip
from tests.makers import bmp_with_alpha_mask, grey_icc_profile, icc_profile

FACE = (180, 40, 120, 140)  # x, y, w, h: the astronaut's face


@pytest.fixture(scope="module")
def detector():
    return presets.build_detector("balanced")


def rgb(bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def blurred(pixels: np.ndarray, reference: np.ndarray) -> bool:
    """Tell whether the face area lost most of its detail (the face was redacted)."""
    x, y, w, h = FACE

    def detail(p):
        return cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(p[y:y + h, x:x + w, :3]), cv2.COLOR_BGR2GRAY),
                             cv2.CV_64F).var()

    return detail(pixels) < 0.2 * detail(reference)


def frames_of(path) -> list[np.ndarray]:
    with Image.open(path) as img:
        return [cv2.cvtColor(np.asarray(f.convert("RGB")), cv2.COLOR_RGB2BGR) for f in ImageSequence.Iterator(img)]


def test_a_face_on_the_second_page_of_a_tiff_is_redacted_and_both_pages_kept(tmp_path, astronaut, detector):
    blank = np.full_like(astronaut, 200)
    source, output = tmp_path / "scan.tiff", tmp_path / "out.tiff"
    rgb(blank).save(source, save_all=True, append_images=[rgb(astronaut)])
    result = process_image(source, output, detector, Options(preset="balanced"))
    pages = frames_of(output)
    assert len(pages) == 2 and result.frames == 2
    assert np.array_equal(pages[0], blank)
    assert blurred(pages[1], astronaut)
    assert [r.frame for r in result.regions] == [1]


@pytest.mark.parametrize("kind", ["GIF", "PNG", "WEBP"])
def test_animations_keep_every_frame_their_timing_and_loop(tmp_path, astronaut, detector, kind):
    still = cv2.resize(astronaut, (256, 256))
    moved = np.roll(still, 40, axis=1)
    source, output = tmp_path / f"anim.{kind.lower()}", tmp_path / f"out.{kind.lower()}"
    rgb(np.full_like(still, 90)).save(source, format=kind, save_all=True, append_images=[rgb(still), rgb(moved)],
                                      duration=[100, 200, 300], loop=3)
    result = process_image(source, output, detector, Options(preset="balanced"))
    with Image.open(output) as img:
        assert img.format == kind and img.n_frames == 3 and img.info.get("loop") == 3
        durations = []
        for frame in ImageSequence.Iterator(img):
            frame.load()  # WebP gives a frame's duration once it is decoded
            durations.append(frame.info.get("duration"))
    assert durations == [100, 200, 300]
    assert sorted({r.frame for r in result.regions}) == [1, 2]
    frames = frames_of(output)
    for frame, original, shift in ((frames[1], still, 0), (frames[2], moved, 40)):
        x, y, w, h = (v // 2 for v in FACE)
        face = lambda p: cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(  # noqa: E731
            p[y:y + h, x + shift:x + shift + w]), cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
        assert face(frame) < 0.3 * face(original)


def test_an_mpo_keeps_both_pictures_each_redacted(tmp_path, astronaut, detector):
    source, output = tmp_path / "stereo.jpg", tmp_path / "out.jpg"
    rgb(astronaut).save(source, format="MPO", save_all=True, append_images=[rgb(np.roll(astronaut, 8, axis=1))])
    with Image.open(source) as img:
        assert img.format == "MPO"
    result = process_image(source, output, detector, Options(preset="balanced"))
    with Image.open(output) as img:
        assert img.format == "MPO" and img.n_frames == 2
    assert {r.frame for r in result.regions} == {0, 1}
    assert all(blurred(f, astronaut) for f in frames_of(output))


def test_a_tiff_with_an_orientation_tag_is_turned_once(tmp_path, astronaut, detector):
    source, output = tmp_path / "turned.tiff", tmp_path / "out.tiff"
    sideways = cv2.rotate(astronaut, cv2.ROTATE_90_COUNTERCLOCKWISE)  # tag 6 turns it back clockwise
    rgb(sideways).save(source, tiffinfo={0x0112: 6})
    upright = np.asarray(ImageOps.exif_transpose(Image.open(source)).convert("RGB"))[:, :, ::-1]
    assert np.array_equal(upright, astronaut)
    result = process_image(source, output, detector, Options(preset="balanced"))
    out = frames_of(output)[0]
    assert out.shape == astronaut.shape and len(result.regions) == 1
    assert blurred(out, astronaut)
    assert np.array_equal(out[300:], astronaut[300:])  # below the face: untouched and not turned


@pytest.mark.parametrize("space", ["display-p3", "prophoto"])
@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_wide_gamut_photos_keep_their_profile_and_their_pixels(tmp_path, astronaut, detector, space, kind):
    profile = icc_profile(space)
    source, output = tmp_path / f"wide.{kind.lower()}", tmp_path / f"out.{kind.lower()}"
    rgb(astronaut).save(source, format=kind, icc_profile=profile, quality=95)
    before = np.asarray(Image.open(source).convert("RGB")).astype(int)
    process_image(source, output, detector, Options(preset="balanced"))
    with Image.open(output) as img:
        assert img.info.get("icc_profile") == profile
        after = np.asarray(img.convert("RGB")).astype(int)
        shown = ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                                          ImageCms.createProfile("sRGB"))
    with Image.open(source) as img:  # as a colour-managed viewer shows each
        was_shown = ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                                              ImageCms.createProfile("sRGB"))
    change = after[300:] - before[300:]  # outside the face: the same numbers, give or take JPEG's noise
    assert np.abs(change).mean() < 3 and np.abs(change.mean(axis=(0, 1))).max() < 0.5  # no shift of colour
    shift = np.asarray(shown).astype(int)[300:] - np.asarray(was_shown).astype(int)[300:]
    assert np.abs(shift.mean(axis=(0, 1))).max() < 0.5
    assert b"Exif" not in output.read_bytes()


def test_a_straight_alpha_tiff_keeps_colour_and_alpha_exactly(tmp_path, astronaut, detector):
    alpha = np.tile(np.arange(512, dtype=np.uint16)[None, :] // 2, (512, 1)).astype(np.uint8)
    rgba = np.dstack([cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB), alpha])
    source, output = tmp_path / "a.tiff", tmp_path / "out.tiff"
    Image.fromarray(rgba, "RGBA").save(source)
    process_image(source, output, detector, Options(preset="balanced"))
    with Image.open(output) as img:
        assert img.mode == "RGBA"
        out = np.asarray(img)
    assert np.array_equal(out[:, :, 3], alpha)
    assert np.array_equal(out[300:, :, :3], rgba[300:, :, :3])  # colour not scaled by alpha, not black under 0


def test_a_bmp_with_an_alpha_mask_keeps_its_alpha(tmp_path, astronaut, detector):
    alpha = np.full(astronaut.shape[:2], 255, np.uint8)
    alpha[:, :100] = 0
    source, output = tmp_path / "a.bmp", tmp_path / "out.bmp"
    source.write_bytes(bmp_with_alpha_mask(np.dstack([astronaut, alpha])))
    with Image.open(source) as img:
        assert img.mode == "RGBA"
    process_image(source, output, detector, Options(preset="balanced"))
    with Image.open(output) as img:
        assert img.mode == "RGBA"
        out = np.asarray(img)
    assert np.array_equal(out[:, :, 3], alpha)
    assert np.array_equal(out[300:, :, :3], cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB)[300:])


@pytest.mark.parametrize("kind", ["HEIF", "AVIF"])
def test_heic_and_avif_are_read_and_written_as_jpeg(tmp_path, astronaut, detector, kind):
    if kind == "HEIF":
        pytest.importorskip("pillow_heif", reason="the [heic] extra is installed by the test command")
    source = tmp_path / f"phone.{'heic' if kind == 'HEIF' else 'avif'}"
    rgb(astronaut).save(source, format=kind, quality=90)
    assert sniff(source.read_bytes()[:32]) == kind
    output = tmp_path / output_name(source.name, kind)
    assert output.name == "phone.jpg"
    result = process_image(source, output, detector, Options(preset="balanced"))
    assert (result.format, result.written_as) == (kind, "JPEG")
    assert output.read_bytes()[:3] == b"\xff\xd8\xff" and len(result.regions) == 1
    assert blurred(frames_of(output)[0], astronaut)


def test_without_the_heic_extra_a_heic_file_says_what_to_install(tmp_path, monkeypatch):
    source = tmp_path / "phone.heic"
    source.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    monkeypatch.setattr(imageio, "HEIF_PROBLEM", "HEIC/HEIF photos need the optional HEIC support: "
                                                 "pip install 'faceguard[heic]'.")
    with pytest.raises(ImageError, match=r"faceguard\[heic\]"):
        imageio.probe(source, 10**8)


def test_a_motion_photo_is_read_and_its_video_left_behind(tmp_path, astronaut, detector):
    ok, jpeg = cv2.imencode(".jpg", astronaut)
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40 + b"\xff\xd9\xff\xda" + bytes(100)
    source, output = tmp_path / "MVIMG_0001.jpg", tmp_path / "out.jpg"
    source.write_bytes(jpeg.tobytes() + video)
    assert jpeg_end(source.read_bytes()) == len(jpeg)
    result = process_image(source, output, detector, Options(preset="balanced"))
    data = output.read_bytes()
    assert len(result.regions) == 1 and b"ftypmp42" not in data
    assert jpeg_end(data) == len(data)


def test_a_cut_off_jpeg_is_refused_even_with_bytes_after_it(tmp_path, astronaut):
    ok, jpeg = cv2.imencode(".jpg", astronaut)
    source = tmp_path / "cut.jpg"
    source.write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    assert jpeg_end(source.read_bytes()) is None
    with pytest.raises(ImageError, match="truncated"):
        imageio.read_image(source, 10**8)


@pytest.mark.parametrize("head,kind", [(b"\xff\xd8\xff\xe0", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"),
                                       (b"GIF89a", "GIF"), (b"RIFF\0\0\0\0WEBPVP8 ", "WEBP"), (b"II*\x00", "TIFF"),
                                       (b"\x00\x00\x00\x1cftypavif", "AVIF"), (b"hello", None), (b"", None)])
def test_files_are_judged_by_their_first_bytes(head, kind):
    assert sniff(head + bytes(32 - len(head) if len(head) < 32 else 0)) == kind


def test_uploads_are_judged_by_content_and_keep_their_format(client, app, astronaut):
    ok, jpeg = cv2.imencode(".jpg", astronaut)
    gif = io.BytesIO()
    rgb(astronaut).save(gif, format="GIF")
    avif = io.BytesIO()
    rgb(astronaut).save(avif, format="AVIF")
    response = post_job(client, [("IMG_0001", jpeg.tobytes()), ("old.jfif", jpeg.tobytes()),
                                 ("party.gif", gif.getvalue()), ("phone.avif", avif.getvalue()),
                                 ("notes", b"just words"), ("fake.jpg", b"not a photo at all")])
    job = finish(app, response)
    states = {f["name"]: (f["state"], f["faces"]) for f in job["files"]}
    assert states == {"IMG_0001": ("done", 1), "old.jfif": ("done", 1), "party.gif": ("done", 1),
                      "phone.jpg": ("done", 1), "notes": ("skipped", 0), "fake.jpg": ("failed", 0)}
    archive = result_zip(client, job["id"])
    assert archive.read("IMG_0001")[:3] == archive.read("old.jfif")[:3] == b"\xff\xd8\xff"
    assert archive.read("party.gif")[:4] == b"GIF8" and archive.read("phone.jpg")[:3] == b"\xff\xd8\xff"
    report = {f["name"]: f for f in json.loads(archive.read("report.json"))["files"]}
    assert (report["phone.jpg"]["format"], report["phone.jpg"]["written_as"]) == ("AVIF", "JPEG")
    assert report["phone.jpg"]["original_name"] == "phone.avif" and "original_name" not in report["old.jfif"]
    assert report["party.gif"]["written_as"] is None and report["party.gif"]["frames"] == 1


@pytest.mark.parametrize("kind, reencode", [("JPEG", True), ("PNG", False), ("TIFF", False)])
def test_a_grey_photo_with_a_grey_profile_is_written_as_rgb_without_that_profile(tmp_path, astronaut, detector,
                                                                                 kind, reencode):
    grey = Image.fromarray(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY), "L")
    profile = grey_icc_profile(1.8)  # not sRGB's curve: a viewer that ignores the profile shows other greys
    source, output = tmp_path / f"grey.{kind.lower()}", tmp_path / f"out.{kind.lower()}"
    grey.save(source, format=kind, icc_profile=profile, quality=95)
    process_image(source, output, detector, Options(preset="balanced", reencode=reencode))
    with Image.open(source) as img:
        was_shown = np.asarray(ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                                                         ImageCms.createProfile("sRGB"), outputMode="RGB"))
    with Image.open(output) as img:
        written = img.info.get("icc_profile")
        assert img.mode == "RGB" and (written is None or written[16:20] == b"RGB ")  # no grey profile on RGB pixels
        shown = np.asarray(img.convert("RGB"))  # untagged RGB is shown as sRGB
    change = shown.astype(int)[300:] - was_shown.astype(int)[300:]  # below the face
    assert np.abs(change).mean() < 3 and np.abs(change.mean(axis=(0, 1))).max() < 1
