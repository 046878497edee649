"""Detection presets: how hard to look for faces, traded against time."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.pipeline.detect import (
    Crowd,
    Detector,
    EnsembleDetector,
    MediaPipeDetector,
    YuNetDetector,
    yunet_available,
)


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # in plain words, for the page and --help
    build: Callable[[float | None], Detector]
    needs_yunet: bool


def _fast(threshold: float | None) -> Detector:
    return MediaPipeDetector(threshold=0.5 if threshold is None else threshold)


# MediaPipe, the primary engine, runs in every preset; beside YuNet its own verdict
# stands where it is sure (0.75: above its highest score on our face-free photos).
def _mediapipe_vote() -> list[Detector]:
    return [MediaPipeDetector(threshold=0.75)]


# Two YuNet looks, at two sizes, each with its mirror image: a face must convince the
# passes that could see it. Faint boxes are kept (down to `floor`) so that a crowd can
# vouch for its faint faces (Crowd). balanced keeps a face on its own at 0.7; thorough at
# 0.5, and lets a crowd vouch for fainter faces of more varied sizes, padded more.
def _yunet_looks(floor: float) -> list[Detector]:
    return [YuNetDetector(long_side=1024, max_upscale=2.5, flip=True, floor=floor),
            YuNetDetector(long_side=640, max_upscale=2.0, flip=True, floor=floor)]


def _balanced(threshold: float | None) -> Detector:
    return EnsembleDetector(_yunet_looks(0.1), threshold=0.7 if threshold is None else threshold,
                            independent=_mediapipe_vote(), crowd=Crowd())


def _thorough(threshold: float | None) -> Detector:
    return EnsembleDetector(_yunet_looks(0.05), threshold=0.5 if threshold is None else threshold,
                            independent=_mediapipe_vote(),
                            crowd=Crowd(floor=0.05, sizes=(0.4, 2.5), margin=2.0))


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("fast", "Fast: one quick look. Fine for portraits and close-ups; misses small faces.",
           _fast, needs_yunet=False),
    Preset("balanced", "Balanced: finds small faces in group photos and crowds.",
           _balanced, needs_yunet=True),
    Preset("thorough", "Thorough: also blurs faces it is less sure of; misses least, "
           "but may blur a few things that are not faces.",
           _thorough, needs_yunet=True),
)}
DEFAULT_PRESET = "balanced"


def resolve(name: str) -> tuple[Preset, str | None]:
    """The preset that will really run for `name`, and a note if it had to fall back."""
    preset = PRESETS[name]
    if preset.needs_yunet and not yunet_available():
        return PRESETS["fast"], (f"The '{name}' preset needs the YuNet engine (package yuface), "
                                 "which is not installed on this platform; the 'fast' preset ran instead.")
    return preset, None


def engines(name: str) -> list[str]:
    """The detection engines a preset runs on this machine."""
    preset, _ = resolve(name)
    return ["mediapipe", "yunet"] if preset.needs_yunet else ["mediapipe"]


def build_detector(name: str, threshold: float | None = None) -> Detector:
    """Build the detector for a preset (one per worker thread)."""
    preset, _ = resolve(name)
    return preset.build(threshold)
