"""Face detectors: pixels in, face boxes in image pixels out. MediaPipe types stay here."""
from __future__ import annotations

import ctypes
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from app.pipeline.redact import squeeze


@dataclass(frozen=True)
class FaceBox:
    """A detected face in pixels of the image it was found in."""

    x: float
    y: float
    w: float
    h: float
    score: float
    engine: str
    margin: float = 1.0  # the share of the usual padding this box gets (looser boxes get more)


@dataclass(frozen=True)
class Pass:
    """The boxes one look at the image found, and the scale that look had (pass pixels per image pixel)."""

    scale: float
    boxes: list[FaceBox]


class Detector(Protocol):
    """Anything that finds faces in an upright BGR image."""

    def __call__(self, image: np.ndarray) -> list[FaceBox]: ...


def shrink(image: np.ndarray, longest: int) -> tuple[np.ndarray, int]:
    """Shrink by an integer factor k so the longest side is at most `longest`; return the copy and k.

    The last width % k columns and height % k rows, fewer than k pixels, are left out;
    small pixel (i, j) stands for pixels [i*k, (i+1)*k) x [j*k, (j+1)*k) of the image.
    From k = 4 on, `squeeze` samples a grid twice as fine as the result (the 2x2 pixels at
    the centre of each k/2 block) and averages that: on a 1080p frame this costs a sixth of
    averaging every pixel (0.35 vs 2.3 ms) and differs from it by 0.6 grey levels on average.
    """
    height, width = image.shape[:2]
    k = max(1, -(-max(height, width) // longest))
    if k == 1:
        return image, 1
    return squeeze(image[: height // k * k, : width // k * k], (width // k, height // k), fine=2), k


def rescale(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize by `scale`: bilinear to enlarge or for mild shrinking, block averages below 1/2."""
    if abs(scale - 1) < 1e-3:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR)


class MediaPipeDetector:
    """BlazeFace through `mediapipe.solutions.face_detection`, one pass over the whole frame.

    Not thread-safe: build one per worker thread and keep it for the thread's life.
    """

    engine = "mediapipe"
    # The full-range model looks at 192x192 pixels; handing it a frame of about that
    # size lets cv2.resize (which releases the GIL) do the shrinking instead of
    # MediaPipe's GIL-holding frame copy.
    input_size = 256

    def __init__(self, threshold: float = 0.5, model_selection: int = 1) -> None:
        from mediapipe.python.solutions import face_detection

        self.threshold = threshold
        self._model = face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=threshold)

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        return self.passes(image)[0].boxes

    def passes(self, image: np.ndarray) -> list[Pass]:
        """One look at the whole frame, at the model's 192-px input scale."""
        small, k = shrink(image, self.input_size)
        height, width = small.shape[0] * k, small.shape[1] * k  # the part of the image `small` shows
        results = self._model.process(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        boxes = []
        for detection in results.detections or []:
            # MediaPipe applies its threshold before blending overlapping boxes, and a
            # blended box can score below it (an apple at 0.71 with the bar at 0.75).
            if detection.score[0] < self.threshold:
                continue
            rel = detection.location_data.relative_bounding_box
            boxes.append(FaceBox(rel.xmin * width, rel.ymin * height, rel.width * width,
                                 rel.height * height, float(detection.score[0]), self.engine))
        return [Pass(192 / max(height, width), boxes)]

    def close(self) -> None:
        self._model.close()


# yuface runs each call on every core (OpenMP) and holds the GIL; two calls at once
# only fight over the same cores. One at a time, while other threads decode, encode
# and run MediaPipe, is faster (benchmarks/throughput.py).
_YUNET_TURN = threading.Lock()


def yunet_available() -> bool:
    """Tell whether the YuNet engine (the `yuface` wheel) is installed on this platform."""
    try:
        import yuface  # noqa: F401
    except ImportError:
        return False
    return True


class _LibFaceDetection:
    """libfacedetection's own entry point, called with a result buffer this object keeps.

    yuface's wrapper allocates a fresh 36 KB result buffer on every call and never frees
    it: a worker leaked about 140 KB per photo (four YuNet calls), so memory grew with
    the batch. The wheel ships the C library beside its wrapper; calling it directly with
    one buffer gives the same numbers (columns 0-14 of yuface's rows, compared on our face
    set) and leaks nothing. Where the library or its entry point cannot be found (another
    platform's build), `load` returns None and yuface's wrapper is used.
    """

    SYMBOL = "_Z14facedetect_cnnPhS_iii"  # facedetect_cnn(unsigned char*, unsigned char*, int, int, int)
    BUFFER_BYTES = 0x9000  # the result buffer size libfacedetection's own examples use

    def __init__(self, function) -> None:
        self._function = function
        self._buffer = ctypes.create_string_buffer(self.BUFFER_BYTES)

    @classmethod
    def load(cls) -> _LibFaceDetection | None:
        import yuface

        try:
            library = ctypes.CDLL(str(Path(yuface.__file__).with_name("libfacedetection.so")))
            function = getattr(library, cls.SYMBOL)
        except (OSError, AttributeError):
            return None
        function.restype = ctypes.c_void_p
        function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        return cls(function)

    def __call__(self, frame: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray]:
        """Scores (0-100) and [x, y, w, h] boxes of the faces scoring over `conf` (0-1) in a BGR frame."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        height, width = frame.shape[:2]
        if self._function(self._buffer, frame.ctypes.data, width, height, width * 3) is None:
            raise RuntimeError("libfacedetection returned no result")
        count = int(np.frombuffer(self._buffer, np.int32, 1)[0])
        # Per face 16 shorts: score, x, y, w, h, five landmarks (x, y), one unused.
        rows = np.frombuffer(self._buffer, np.int16, 16 * count, 4).reshape(count, 16)
        rows = rows[rows[:, 0] > conf * 100]
        return rows[:, 0].copy(), rows[:, 1:5].copy()


class YuNetDetector:
    """YuNet (libfacedetection through `yuface`), weights compiled into the wheel.

    The frame is resized so that its longest side is `long_side` (small photos are
    enlarged up to `max_upscale`, which lets YuNet see faces of 10-20 px); with
    `flip`, a mirrored copy is searched too and each copy counts as its own run.
    """

    engine = "yunet"

    def __init__(self, long_side: int = 1024, max_upscale: float = 2.5, flip: bool = False,
                 floor: float = 0.3) -> None:
        import yuface

        direct = _LibFaceDetection.load()
        self._detect = direct if direct is not None else (lambda frame, conf: yuface.detect(frame, conf=conf)[:2])
        self.long_side, self.max_upscale, self.flip, self.floor = long_side, max_upscale, flip, floor

    def passes(self, image: np.ndarray) -> list[Pass]:
        """Detect on the resized frame (and its mirror); one list of boxes per pass."""
        height, width = image.shape[:2]
        scale = min(self.max_upscale, self.long_side / max(height, width))
        frame = np.ascontiguousarray(rescale(image, scale))
        scale = frame.shape[1] / width  # the exact factor after rounding
        out = [Pass(scale, self._boxes(frame, scale, mirror_width=None))]
        if self.flip:
            out.append(Pass(scale, self._boxes(cv2.flip(frame, 1), scale, mirror_width=frame.shape[1])))
        return out

    def _boxes(self, frame: np.ndarray, scale: float, mirror_width: int | None) -> list[FaceBox]:
        with _YUNET_TURN, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # yuface warns about frames over 960 px; measured fine
            scores, boxes = self._detect(frame, self.floor)
        out = []
        for score, (x, y, w, h) in zip(scores, boxes.astype(float)):
            if mirror_width is not None:
                x = mirror_width - x - w
            out.append(FaceBox(x / scale, y / scale, w / scale, h / scale, float(score) / 100, self.engine))
        return out

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        return [box for run in self.passes(image) for box in run.boxes]


def _iou_with(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one [x0, y0, x1, y1] box with each row of `others`."""
    ix = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = ix * iy
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / ((box[2] - box[0]) * (box[3] - box[1]) + areas - inter + 1e-9)


def _corners(box: FaceBox) -> np.ndarray:
    return np.array([box.x, box.y, box.x + box.w, box.y + box.h])


def _iou(a: FaceBox, b: FaceBox) -> float:
    return float(_iou_with(_corners(a), _corners(b)[None])[0])


def fuse(passes: list[Pass], threshold: float, overlap: float = 0.3, min_face: float = 12.0) -> list[FaceBox]:
    """Merge the boxes of several passes by consensus.

    Boxes that overlap (IoU > `overlap`) are one face. Its score is the mean, over the
    passes that could have seen it (where it is at least `min_face` pixels tall at the
    pass's scale), of each pass's best score for it; a pass that missed it counts 0.
    A face one pass saw faintly is dropped; one most passes agree on is kept even if
    each was unsure; a small face only the enlarged pass could see is judged by it alone.
    A crowd photo gives over a thousand faint boxes: each is compared with the faces
    found so far in one numpy step, not one by one.
    """
    ranked = sorted(((box, i) for i, p in enumerate(passes) for box in p.boxes), key=lambda t: -t[0].score)
    if not ranked:
        return []
    corners = np.array([_corners(b) for b, _ in ranked])
    leads: list[int] = []  # indices into `ranked` of each face's best box, best face first
    scores: list[dict[int, float]] = []
    engines: list[set[str]] = []
    for j, (box, index) in enumerate(ranked):
        hits = np.flatnonzero(_iou_with(corners[j], corners[leads]) > overlap) if leads else ()
        if len(hits):
            face = int(hits[0])
            scores[face][index] = max(scores[face].get(index, 0.0), box.score)
            engines[face].add(box.engine)
        else:
            leads.append(j)
            scores.append({index: box.score})
            engines.append({box.engine})
    fused = []
    for j, votes, names in zip(leads, scores, engines):
        lead = ranked[j][0]
        voters = {i for i, p in enumerate(passes) if lead.h * p.scale >= min_face} | set(votes)
        score = sum(votes.values()) / len(voters)
        if score >= threshold:
            fused.append(FaceBox(lead.x, lead.y, lead.w, lead.h, score, "+".join(sorted(names))))
    return fused


@dataclass(frozen=True)
class Crowd:
    """How a photo full of people lowers the bar for the faces among them.

    Where at least `need` faces score `support` or more, the photo is a group or a crowd:
    there, a face between `support` and the threshold is kept, and so is a fainter one
    (down to `floor`) whose height is within `sizes` of the median height of the
    `neighbours` sure faces nearest to it up or down the photo (a crowd's faces shrink
    as it recedes, so faces at the same height in the photo are the fair comparison).
    Those faint boxes are looser, so they get `margin` times the usual padding.
    A photo without people (a dog, a galaxy) gets no such help.
    """

    support: float = 0.5
    need: int = 3
    floor: float = 0.1
    sizes: tuple[float, float] = (0.5, 2.0)
    neighbours: int = 5
    margin: float = 1.5

    def extra(self, candidates: list[FaceBox], threshold: float) -> list[FaceBox]:
        """The candidates below `threshold` that this photo's crowd vouches for."""
        sure = [f for f in candidates if f.score >= self.support]
        if len(sure) < self.need:
            return []
        heights = np.array([f.h for f in sure])
        middles = np.array([f.y + f.h / 2 for f in sure])
        kept = []
        for face in candidates:
            if face.score >= threshold:
                continue
            if face.score >= self.support:
                kept.append(face)
                continue
            nearest = np.argsort(np.abs(middles - (face.y + face.h / 2)))[: self.neighbours]
            typical = float(np.median(heights[nearest]))
            if self.sizes[0] * typical <= face.h <= self.sizes[1] * typical:
                kept.append(replace(face, margin=self.margin))
        return kept


class EnsembleDetector:
    """YuNet passes merged by consensus, plus detectors whose own verdict stands.

    `members` vote together through `fuse`; a face is kept when its consensus score
    reaches `threshold`, or, with `crowd`, when the photo's crowd vouches for it. Each of
    `independent` (MediaPipe) keeps the boxes it is confident of on its own, merged into
    an overlapping face where there is one.
    """

    def __init__(self, members: list, threshold: float, independent: list | None = None,
                 crowd: Crowd | None = None) -> None:
        self.members, self.threshold, self.independent, self.crowd = members, threshold, independent or [], crowd

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        passes = [p for member in self.members for p in member.passes(image)]
        if self.crowd is None:
            faces = fuse(passes, self.threshold)
        else:
            candidates = fuse(passes, min(self.threshold, self.crowd.floor))
            faces = [f for f in candidates if f.score >= self.threshold] + self.crowd.extra(candidates, self.threshold)
        for detector in self.independent:
            for box in detector(image):
                match = next((i for i, face in enumerate(faces) if _iou(face, box) > 0.3), None)
                if match is None:
                    faces.append(box)
                elif box.engine not in faces[match].engine.split("+"):
                    face = faces[match]
                    faces[match] = replace(face, engine="+".join(sorted({*face.engine.split("+"), box.engine})))
        return faces

    def close(self) -> None:
        for member in self.members + self.independent:
            getattr(member, "close", lambda: None)()
