"""Redaction is pure, covers exactly its rectangles, and leaves nothing recognisable."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.pipeline.redact import expand, redact


def detail(region: np.ndarray) -> float:
    """Variance of the Laplacian: how much fine detail a region holds."""
    gray = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def test_expand_grows_more_at_the_top_and_clips_to_the_image():
    assert expand((100, 100, 100, 100), 0.2, 1000, 1000) == (80, 70, 140, 150)
    assert expand((-10, -10, 50, 50), 0.2, 30, 30) == (0, 0, 30, 30)
    assert expand((500, 500, 10, 10), 0.2, 100, 100) is None


@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
def test_redact_changes_only_the_rectangles_and_not_its_input(astronaut, method):
    before = astronaut.copy()
    rect = (170, 40, 120, 150)
    out = redact(astronaut, [rect], method)
    assert np.array_equal(astronaut, before), "the input must not change"
    x, y, w, h = rect
    outside = np.ones(out.shape[:2], bool)
    outside[y:y + h, x:x + w] = False
    assert np.array_equal(out[outside], astronaut[outside])
    assert np.abs(out[y:y + h, x:x + w].astype(int) - astronaut[y:y + h, x:x + w]).mean() > 10


@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
def test_a_rectangle_past_the_images_edge_redacts_the_part_inside_it(astronaut, method):
    out = redact(astronaut, [(-30, -20, 300, 230), (400, 490, 300, 300), (600, 0, 10, 10)], method)
    inside = np.zeros(out.shape[:2], bool)
    inside[:210, :270] = inside[490:, 400:] = True
    assert np.array_equal(out[~inside], astronaut[~inside])
    assert np.abs(out[:210, :270].astype(int) - astronaut[:210, :270]).mean() > 10  # not a wrapped, empty slice
    assert method == "pixelate" or detail(out[:210, :270]) < 0.1 * detail(astronaut[:210, :270])


@pytest.mark.parametrize("size", [40, 160, 900])
def test_blur_leaves_no_detail_at_any_face_size(size):
    rng = np.random.default_rng(size)
    face = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)  # worst case: all detail
    out = redact(face, [(0, 0, size, size)], "blur")
    assert detail(out) < 0.02 * detail(face)


def squeezed_exactly(roi: np.ndarray) -> np.ndarray:
    """The blur with every pixel of each cell averaged (what the sampling in `redact` stands in for)."""
    h, w = roi.shape[:2]
    size = (max(1, round(6 * w / max(w, h))), max(1, round(6 * h / max(w, h))))
    small = cv2.GaussianBlur(cv2.resize(roi, size, interpolation=cv2.INTER_AREA), (3, 3), 0,
                             borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@pytest.mark.parametrize("scale", [1, 4])
def test_blur_of_a_large_face_is_the_blob_of_its_average(astronaut, scale):
    face = cv2.resize(astronaut[40:200, 150:310], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    out = redact(face, [(0, 0, face.shape[1], face.shape[0])], "blur")
    gap = np.abs(out.astype(int) - squeezed_exactly(face))
    assert gap.mean() < 2.5 and gap.max() <= 12


def test_pixelate_makes_blocks_and_fill_is_black(astronaut):
    rect = (160, 40, 128, 128)
    pix = redact(astronaut, [rect], "pixelate")[40:168, 160:288]
    assert len(np.unique(pix.reshape(-1, 3), axis=0)) <= 64  # about 8 x 8 blocks
    fill = redact(astronaut, [rect], "fill")[40:168, 160:288]
    assert not fill.any()


def test_outline_is_drawn_on_the_region_border(astronaut):
    out = redact(astronaut, [(100, 100, 200, 200)], "blur", outline=True)
    assert tuple(out[100, 150]) == (0, 200, 255)
    assert tuple(out[299, 150]) == (0, 200, 255)


def test_alpha_survives_fill():
    rgba = np.full((50, 50, 4), 200, np.uint8)
    rgba[:, :, 3] = 77
    out = redact(rgba, [(10, 10, 20, 20)], "fill")
    assert (out[10:30, 10:30, :3] == 0).all() and (out[:, :, 3] == 77).all()
