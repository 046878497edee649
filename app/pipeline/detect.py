"""Face detectors: pixels in, face boxes in image pixels out. MediaPipe types stay here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A detected face in pixels of the image it was found in."""

    x: float
    y: float
    w: float
    h: float
    score: float
    engine: str


class Detector(Protocol):
    """Anything that finds faces in an upright BGR image."""

    def __call__(self, image: np.ndarray) -> list[FaceBox]: ...


def shrink(image: np.ndarray, longest: int) -> tuple[np.ndarray, float]:
    """Return a copy no longer than `longest` on its longest side, and the scale applied."""
    height, width = image.shape[:2]
    scale = min(1.0, longest / max(height, width))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


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

        self._model = face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=threshold)

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        height, width = image.shape[:2]
        small, _ = shrink(image, self.input_size)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        results = self._model.process(rgb)
        boxes = []
        for detection in results.detections or []:
            rel = detection.location_data.relative_bounding_box
            boxes.append(FaceBox(rel.xmin * width, rel.ymin * height, rel.width * width,
                                 rel.height * height, float(detection.score[0]), self.engine))
        return boxes

    def close(self) -> None:
        self._model.close()
