"""One image through the pipeline: read -> detect -> redact -> write -> ImageResult."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ImageError
from app.folder import write_atomic
from app.outcomes import ImageResult, Region
from app.pipeline import encoding, imageio, presets, redact, resample
from app.pipeline.detect import Detector


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

    @classmethod
    def from_config(cls, config: dict[str, Any], *, method: str, boxes: bool, preset: str) -> Options:
        """Combine a person's choices for one job with the server's settings."""
        return cls(method=method, boxes=boxes, preset=preset, threshold=config["DETECTION_THRESHOLD"],
                   padding=config["BOX_PADDING"], jpeg_quality=config["JPEG_QUALITY"],
                   max_pixels=config["MAX_PIXELS"])

    def describe(self) -> dict[str, Any]:
        """What the job records of its options: the preset and the engines it runs."""
        return {"method": self.method, "boxes": self.boxes, "preset": self.preset,
                "engines": list(presets.PRESETS[self.preset].engines)}


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
    instead, and nothing is detected. Fail closed: any error raises, and no bytes exist for
    an image that could not be redacted in every one of its frames.
    """
    picture = imageio.read_image(data, options.max_pixels)
    regions: list[Region] = []
    redacted = []
    for index, pixels in enumerate(picture.frames):
        if given is None:
            found = find_regions(pixels, detector, options, index)
        else:
            found = [r for r in given if r.frame == index]
        # The decoded pixels belong to this call alone; the detector is done with them.
        redacted.append(redact.redact_in_place(pixels, [r.box() for r in found], options.method, options.boxes))
        regions += found
    out = encoding.encode(picture, redacted, options.jpeg_quality)
    written = imageio.written_format(picture.info)
    height, width = picture.frames[0].shape[:2]
    return out, ImageResult(width, height, regions, len(picture.frames), picture.info.format,
                            written if written != picture.info.format else None)


def find_regions(pixels: np.ndarray, detector: Detector, options: Options, frame: int = 0) -> list[Region]:
    """The rectangles to redact in one frame: every face found, grown by the padding, within the budget."""
    height, width = pixels.shape[:2]
    try:
        faces = detector(resample.for_detection(pixels))
    except Exception as exc:  # a detector fault must fail the file, never skip redaction
        raise ImageError(f"Face detection failed on this image ({type(exc).__name__}).", "detection") from exc
    regions = []
    budget = redact.Budget(width, height, MOST_VOUCHED)
    for face in sorted(faces, key=lambda f: (f.margin > 1, -f.score)):  # sure faces first, then the crowd's
        rect = redact.expand((face.x, face.y, face.w, face.h), options.padding * face.margin, width, height)
        if rect is None or (face.margin > 1 and not budget.fits(rect)):
            continue
        budget.add(rect)
        regions.append(Region(*rect, score=face.score, engine=face.engine, frame=frame))
    return regions
