"""One image through the pipeline: read -> detect -> redact -> write -> ImageResult."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ImageError
from app.folder import write_atomic
from app.outcomes import ImageResult, Region
from app.pipeline import encoding, imageio, lossless, presets, redact, resample
from app.pipeline.detect import Detector
from app.pipeline.formats import sniff


@dataclass(frozen=True)
class Options:
    """Everything a worker needs to process an image, frozen once per job."""

    method: str = "blur"
    boxes: bool = False
    preset: str = "fast"
    threshold: float | None = None
    padding: float = 0.2
    jpeg_quality: int = 92
    max_pixels: int = 100_000_000
    reencode: bool = False  # JPEGs too are decoded and encoded again (no lossless path)

    @classmethod
    def from_config(cls, config: dict[str, Any], *, method: str, boxes: bool, preset: str,
                    reencode: bool = False) -> Options:
        """Combine a person's choices for one job with the server's settings."""
        return cls(method=method, boxes=boxes, preset=preset, threshold=config["DETECTION_THRESHOLD"],
                   padding=config["BOX_PADDING"], jpeg_quality=config["JPEG_QUALITY"],
                   max_pixels=config["MAX_PIXELS"], reencode=reencode)

    def describe(self) -> dict[str, Any]:
        """What the job records of its options: the preset and the engines it runs."""
        return {"method": self.method, "boxes": self.boxes, "preset": self.preset,
                "engines": list(presets.PRESETS[self.preset].engines), **({"reencode": True} if self.reencode else {})}


# Faces a crowd vouched for (faint on their own) are added only while the photo stays at most
# this share redacted: a crowd's faint boxes never blur most of a photo. Faces sure on their
# own are always redacted, however much of the photo they fill (a close-up).
MOST_VOUCHED = 0.5


def process_image(source: Path, output: Path, detector: Detector, options: Options) -> ImageResult:
    """Redact a file into `output` (see `redact_bytes`); nothing is written if anything fails."""
    data, result = redact_bytes(source.read_bytes(), detector, options)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, data)
    return result


def redact_bytes(data: bytes, detector: Detector | None, options: Options,
                 given: list[Region] | None = None) -> tuple[bytes, ImageResult]:
    """Redact every face found in every frame of a photo's bytes; return the new file's bytes.

    With `given` (a review's regions, in output pixels), those exact rectangles are redacted
    instead, and nothing is detected. A JPEG is redacted in its DCT blocks where it can be
    (`lossless`), else decoded and encoded again (`mode_reason` in the result says why). Fail
    closed: any error raises, and no bytes exist for an image that could not be redacted in
    every one of its frames.
    """
    reason, coding = "re-encoding was asked for" if options.reencode else None, False
    if reason is None and sniff(data[:32]) == "JPEG":
        try:
            return _lossless(data, detector, options, given)
        except lossless.Fallback as fallback:  # what was found is redacted without looking again
            reason, coding = fallback.reason, fallback.coding
            given = given if fallback.regions is None else fallback.regions
    try:
        return _reencode(data, detector, options, given, reason)
    except ImageError as exc:
        if not coding or exc.code != "unreadable":
            raise
        raise ImageError(f"This JPEG cannot be processed: the lossless path does not take its {reason}, "
                         "and it cannot be decoded to be written again.", "unsupported") from exc


def _lossless(data: bytes, detector: Detector | None, options: Options,
              given: list[Region] | None) -> tuple[bytes, ImageResult]:
    """Redact a JPEG in its DCT blocks, detecting on a smaller decode where the preset allows it."""
    source = lossless.open_source(data, options.max_pixels)
    pixels = None
    if given is None:
        pixels = source.preview(presets.PRESETS[options.preset].sees)
        found = find_regions(pixels, detector, options, size=source.size)
    else:
        found = given_in(given, 0, *source.size)
    whole = pixels if pixels is not None and pixels.shape[1::-1] == source.size else None
    try:  # the detector is done with the pixels: a full-size decode is redacted in place
        out, note = lossless.write(source, found, options.method, options.boxes, whole)
    except lossless.Fallback as fallback:
        fallback.regions = found
        raise
    return out, ImageResult(*source.size, found, 1, "JPEG", None, "lossless", note)


def given_in(given: list[Region], frame: int, width: int, height: int) -> list[Region]:
    """The given regions of one frame, clipped to its width x height pixels.

    A region grown past the photo's edge keeps the part inside it; one wholly outside cannot
    be what its author meant (another photo's, or in other pixels), so the photo fails.
    """
    regions = []
    for r in (r for r in given if r.frame == frame):
        inside = redact.clip(tuple(r.box()), width, height)
        if inside is None:
            raise ImageError(f"The region {r.box()} given for this photo lies outside its {width}x{height} pixels.",
                             "regions")
        regions.append(replace(r, **dict(zip("xywh", inside))))
    return regions


def _reencode(data: bytes, detector: Detector | None, options: Options, given: list[Region] | None,
              reason: str | None) -> tuple[bytes, ImageResult]:
    """Decode every frame, redact its pixels and encode it again (JPEGs at `jpeg_quality`)."""
    picture = imageio.read_image(data, options.max_pixels)
    regions: list[Region] = []
    redacted = []
    for index, pixels in enumerate(picture.frames):
        if given is None:
            found = find_regions(pixels, detector, options, index)
        else:
            found = given_in(given, index, pixels.shape[1], pixels.shape[0])
        # The decoded pixels belong to this call alone; the detector is done with them.
        redacted.append(redact.redact_in_place(pixels, [r.box() for r in found], options.method, options.boxes))
        regions += found
    out = encoding.encode(picture, redacted, options.jpeg_quality)
    written = imageio.written_format(picture.info)
    height, width = picture.frames[0].shape[:2]
    jpeg = written in ("JPEG", "MPO")
    if jpeg and reason is None:
        reason = f"converted from {picture.info.format}"
    return out, ImageResult(width, height, regions, len(picture.frames), picture.info.format,
                            written if written != picture.info.format else None,
                            "reencoded" if jpeg else None, reason if jpeg else None)


def find_regions(pixels: np.ndarray, detector: Detector, options: Options, frame: int = 0,
                 size: tuple[int, int] | None = None) -> list[Region]:
    """The rectangles to redact in one frame: every face found, grown by the padding, within the budget.

    `size`: the frame's width and height where `pixels` is a smaller copy of it (boxes are scaled up).
    """
    height, width = pixels.shape[:2]
    sx, sy = (size[0] / width, size[1] / height) if size else (1.0, 1.0)
    width, height = size or (width, height)
    try:
        faces = detector(resample.for_detection(pixels))
    except Exception as exc:  # a detector fault must fail the file, never skip redaction
        raise ImageError(f"Face detection failed on this image ({type(exc).__name__}).", "detection") from exc
    regions = []
    budget = redact.Budget(width, height, MOST_VOUCHED)
    for face in sorted(faces, key=lambda f: (f.vouched, -f.score)):  # sure faces first, then the crowd's
        box = (face.x * sx, face.y * sy, face.w * sx, face.h * sy)
        rect = redact.expand(box, options.padding * face.margin, width, height)
        if rect is None or (face.vouched and not budget.fits(rect)):
            continue
        budget.add(rect)
        regions.append(Region(*rect, score=face.score, engine=face.engine, frame=frame))
    return regions
