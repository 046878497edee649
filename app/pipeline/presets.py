"""Detection presets: how hard to look for faces, traded against time.

Every preset runs the same engines on every platform the product installs on. Where an
engine cannot be loaded, the presets that need it are refused with the reason: never a
silent fall back to a weaker look.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from app.pipeline.detect import Crowd, Detector, EnsembleDetector, Tilted, Turns
from app.pipeline.engines import (
    CenterFaceDetector,
    CenterFaceScan,
    CloseUpLook,
    GroupLook,
    MediaPipeDetector,
    OwnSizeLook,
    centerface_problem,
)


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # in plain words, for the page and --help
    smallest_face: str  # the smallest face it promises to find, in plain words
    build: Callable[[float | None], Detector]
    engines: tuple[str, ...]
    sees: int | None = None  # the longest side its looks need (a JPEG is decoded smaller for them); None: all


def _mediapipe_problem() -> str | None:
    try:
        from mediapipe.python.solutions import face_detection  # noqa: F401
    except Exception as exc:  # an import of a native library can fail in many ways
        return f"MediaPipe cannot be loaded ({type(exc).__name__}: {exc})."
    return None


_PROBLEMS: dict[str, Callable[[], str | None]] = {"mediapipe": _mediapipe_problem, "centerface": centerface_problem}


@cache
def engine_problem(engine: str) -> str | None:
    """Why an engine cannot run on this machine (None: it can). Asked once per process."""
    return _PROBLEMS[engine]()


def problem(name: str) -> str | None:
    """Why a preset cannot run on this machine, in plain words; None when it can."""
    for engine in PRESETS[name].engines:
        reason = engine_problem(engine)
        if reason:
            return f"The '{name}' preset cannot run on this machine: {reason}"
    return None


# MediaPipe runs beside CenterFace in every preset; its own verdict stands where it
# is sure (0.75: above its highest score on our face-free photos) and CenterFace saw
# something there too, however faint: tilted 45 degrees, a building's entrance it was
# sure of (0.77) was the one place on the recall photos CenterFace saw nothing at all.
def _mediapipe_vote() -> list[Detector]:
    return [MediaPipeDetector(threshold=0.75)]


def _fast(threshold: float | None) -> Detector:
    """One small CenterFace look (320 px) and BlazeFace's, on the photo and on each quarter turn of it.

    Close-ups (faces at least 1/8 of the photo, 40 px and more at 320) are what CenterFace's
    small look finds; BlazeFace alone missed 19 % of them (benchmarks/recall.py closeup-all).
    A photo smaller than 320 px is enlarged for the look (a 51-px face in a 168-px crop scored
    0.57 at 320 px and was missed at its own size). Where at least 3 faces are sure (0.5), a box
    down to 0.2 the size of the sure faces near it is kept too (half-hidden faces in a group);
    fainter boxes are left to `balanced`: one small look cannot tell them from hands and knees.
    MediaPipe's verdict counts where it is sure, as in the other presets: at 0.5 it found no
    close-up CenterFace missed and put 6 regions on the 19 face-free photos (2 at 0.75).
    Close-ups tilted about 45 degrees get the tilted look (`Tilted`) of their faint boxes down to
    0.05, for the 4 best boxes at least 1/12 of the photo's shorter side: on the clear close-ups
    tilted 45 degrees it found 115 of 118 faces, against 106 without it (the 118 the recall benchmark
    chose before it named clear faces by their boxes; 119 of its 123 now).
    A group photo (3 faces sure at 320 px) is looked at again at 640 px (`GroupLook`): on the clear
    close-ups it found 120 of 123 faces instead of 119, and 403 instead of 368 of the 509 faces of
    20 px and more in the upright photos, for 22 % and 14 % more time (more for the bar: 0.4 found
    120 and 394; a group of 2: 120 and 396, 45 % more time on close-ups).
    A photo the 320-px look enlarges (a close-up crop, a thumbnail) is also looked at at its own size
    (`OwnSizeLook`): 121 instead of 120 of the clear close-ups at every quarter turn, 114 instead of 112
    grainy and 115 instead of 113 out of focus, the same upright photos and face-free regions, for
    about 15 % more time on close-ups.
    A face filling the photo is looked for at 160 px too (`CloseUpLook`): 108 instead of 107 of the
    111 clear faces cut to fill 0.6-0.9 of a 1200-px crop (benchmarks/recall.py closeup-tight).
    """
    crowd = Crowd(support=0.5, floor=0.2, lone=15)
    tilted = Tilted(CenterFaceDetector(floor=0.2, recent=0), most=4, share=1 / 12)
    model = CenterFaceDetector(floor=tilted.low)
    small = CenterFaceScan(model, coarse=320, fine=320, min_face=float("inf"), max_upscale=2.5)
    bar = 0.3 if threshold is None else threshold
    looks = EnsembleDetector([small], bar, seconded=_mediapipe_vote(),
                             independent=[GroupLook(small, bar), OwnSizeLook(small, bar), CloseUpLook(small, bar, side=160)],
                             crowd=crowd, tilted=tilted)
    return Turns(looks, always=True, side=640)


def _deep(threshold: float, crowd: Crowd, min_face: float, coarse: int, check_side: int,
          smallest_bar: float = 0.0) -> Detector:
    """CenterFace at a coarse size and at the size `min_face` needs, voting together; turns checked.

    The photo as it is is checked on the coarse look itself, which so costs nothing more.
    The close-up looks at 320 and 160 px keep faces from `threshold`, the 160-px one from
    `smallest_bar` where that is higher.
    """
    model = CenterFaceDetector(floor=min(0.1, crowd.floor))
    scan = CenterFaceScan(model, coarse=coarse, min_face=min_face)
    close = [CloseUpLook(scan, threshold, side=320), CloseUpLook(scan, max(threshold, smallest_bar), side=160)]
    looks = EnsembleDetector([scan], threshold, seconded=_mediapipe_vote(), independent=close, crowd=crowd,
                             tilted=Tilted(CenterFaceDetector(floor=0.2, recent=0)))
    return Turns(looks, check=model, check_side=check_side, as_is_side=coarse)


def _balanced(threshold: float | None) -> Detector:
    """`_deep` for faces from 20 px. Its 160-px close-up look keeps a face from 0.47: the faces only
    that look found scored 0.49 and more (scikit-image's LFW faces at 1200 px, the recall benchmark's
    faces filling a crop), and textures filling a face-free photo 0.44 (a board tilted 30 degrees,
    a temple at half size: the recall benchmark's face-free regions from this look)."""
    return _deep(0.4 if threshold is None else threshold, Crowd(support=0.35, floor=0.03, lone=15),
                 min_face=20, coarse=640, check_side=480, smallest_bar=0.47)


def _thorough(threshold: float | None) -> Detector:
    return _deep(0.3 if threshold is None else threshold,
                 Crowd(support=0.4, floor=0.02, sizes=(0.4, 2.5), margin=2.0),
                 min_face=10, coarse=640, check_side=640)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("fast", "Fast: a quick look at each quarter turn, a closer one at groups. "
           "For portraits and close-ups; misses small faces.",
           "faces at least 1/8 of the photo's height", _fast, ("centerface", "mediapipe"), sees=640),
    Preset("balanced", "Balanced: finds small faces in group photos and crowds, in any orientation.",
           "faces from 20 px, in photos of any size", _balanced, ("centerface", "mediapipe")),
    Preset("thorough", "Thorough: also blurs faces it is less sure of, down to 10 px; misses least, "
           "but may blur a few things that are not faces.",
           "faces from 10 px, in photos of any size", _thorough, ("centerface", "mediapipe")),
)}
DEFAULT_PRESET = "balanced"


def build_detector(name: str, threshold: float | None = None) -> Detector:
    """Build the detector for a preset (one per worker thread); refuse a preset that cannot run here."""
    reason = problem(name)
    if reason:
        raise RuntimeError(reason)
    return PRESETS[name].build(threshold)
