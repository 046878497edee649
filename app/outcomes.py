"""How one file ends: an ImageResult (its regions) or a FileError (a stable code and a plain message)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Region:
    """One redacted rectangle in output pixels, and what found it."""

    x: int
    y: int
    w: int
    h: int
    score: float
    engine: str
    frame: int = 0  # which frame or page of the file (0 for most photos)
    source: str = "auto"  # "auto": found by the detector; "manual": drawn by a person in the review

    def box(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    def describe(self) -> dict:
        """The region as the API and report.json give it."""
        return {"box": self.box(), "engine": self.engine, "score": round(self.score, 3), "frame": self.frame,
                "source": self.source}

    @classmethod
    def from_description(cls, d: dict) -> Region:
        return cls(*d["box"], d["score"], d["engine"], d.get("frame", 0), d.get("source", "auto"))


@dataclass(frozen=True)
class ImageResult:
    """A photo redacted: its size, every region of every frame, and the formats read and written."""

    width: int
    height: int
    regions: list[Region] = field(default_factory=list)
    frames: int = 1
    format: str | None = None  # as read
    written_as: str | None = None  # as written, where it differs (HEIC and AVIF become JPEG)


@dataclass(frozen=True)
class FileError:
    """A file that could not be processed: `code` for programs and the page, `message` for people.

    Codes: those of `ImageError` (unreadable, truncated, too_large, needs_heic, unsupported,
    detection), and worker_died, disk_full, write_failed, clash, unexpected.
    """

    code: str
    message: str


Outcome = ImageResult | FileError
