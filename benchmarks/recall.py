"""Recall of every preset, through the product's own pipeline, on photos with ground-truth faces.

    python -m benchmarks.recall ../shared/data/faces [--presets fast,balanced,thorough] [--transforms upright,turn90,...]

FOLDER holds gt/ (images and annotations.json: {file: [[x, y, w, h], ...]}) and, optionally,
nofaces/ (photos without faces: every region there is a false positive, but for a region over one of
the faces FACES_IN_NOFACES lists, which is counted apart). Subsets are the
file-name prefixes before the first '_' (wider, wider416, dlib, ...).

Every photo is measured as it is and under each transform of benchmarks/transforms.py (turned
with no EXIF, grey, dark, grainy, faded, overexposed, colour-cast, sepia, soft, half size, JPEG
quality 30, packed into 48 MP canvases and 12000x1700 panoramas, or turned a quarter turn more each
and packed into 12 MP collages), and close-ups cut around the larger faces (turned or tilted too:
closeup90, closeup45, ...): `closeup` around the clear ones
(WIDER's attributes: not invalid, not heavily blurred or occluded; every dlib face), `closeup-all`
around every face of 40 px or more, `closeup-tight` around the clear ones filling 0.6 to 0.9 of the
crop's height, enlarged to 1200 px (a passport photo, a close selfie); `closeup+bright`, `closeup90+noisy`, ... change the crops'
pixels too. The summary prints, per transform and preset, recall of faces >= 20 px, of crowd
(wider_) faces >= 10 px, of close-up faces, regions on face-free photos, area redacted outside
faces and ms per image.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2

from app.config import load_config
from app.pipeline.formats import is_image_name
from app.pipeline.presets import PRESETS, build_detector
from app.pipeline.process import Options, process_image
from benchmarks.coverage import (
    BANDS,
    face_coverage,
    outside_share,
    recall_by_band,
    union_mask,
)
from benchmarks.transforms import TRANSFORMS, Set, close_ups, tight_close_ups, tilted

# Faces in the face-free photos all the same, found on looking at every region the presets redact there.
# A region over one is counted apart, not as a false positive; they are not counted for recall either.
FACES_IN_NOFACES = {
    "nofaces/dlib_dogs.jpg": [[64, 455, 42, 37]],  # a woman's portrait on a DVD case, lying on its side
}


def known_faces(transform: str, samples: Set, derived: Set) -> dict[str, list]:
    """FACES_IN_NOFACES, moved as `transform` moved the photos into `derived` (only those photos are transformed
    again; none where `derived` no longer holds them: close-ups and canvases)."""
    listed = {name: (samples[name][0], boxes) for name, boxes in FACES_IN_NOFACES.items() if name in derived}
    return {name: boxes for name, (_, boxes) in TRANSFORMS[transform](listed).items()} if listed else {}


def load(folder: Path) -> tuple[Set, list[str]]:
    """The ground-truth photos and the face-free ones (empty box lists), and the names of the latter."""
    gt_dir = folder / "gt"
    truth = json.loads((gt_dir / "annotations.json").read_text())
    samples: Set = {name: (cv2.imread(str(gt_dir / name), cv2.IMREAD_COLOR), boxes) for name, boxes in truth.items()}
    nofaces = sorted(p for p in (folder / "nofaces").glob("*") if is_image_name(p.name))
    for path in nofaces:
        samples["nofaces/" + path.name] = cv2.imread(str(path), cv2.IMREAD_COLOR), []
    return samples, ["nofaces/" + p.name for p in nofaces]


def clear_faces(folder: Path) -> set[tuple[str, int]] | None:
    """The faces a person would call clear: WIDER's attributes say not invalid, not heavily blurred or occluded."""
    path = folder / "gt" / "annotations_detailed.json"
    if not path.is_file():
        return None
    detail = json.loads(path.read_text())
    truth = json.loads((folder / "gt" / "annotations.json").read_text())
    clear = set()
    for name, entry in detail.items():
        boxes = truth.get(name, [])
        for face in entry.get("faces", []):
            if face.get("invalid") or face.get("blur", 0) >= 2 or face.get("occlusion", 0) >= 2:
                continue
            # The detailed file also lists the degenerate boxes annotations.json leaves out, so its
            # order is not annotations.json's: a face is named by the index of its own box there.
            clear |= {(name, i) for i, box in enumerate(boxes) if same_box(box, face["box"])}
    return clear


def same_box(a: list[float], b: list[float]) -> bool:
    return all(abs(p - q) < 0.5 for p, q in zip(a, b, strict=True))


def run_preset(preset: str, samples: Set, config: dict, work: Path) -> tuple[dict[str, list], float]:
    """Redact every sample with the preset through process_image; return the regions per sample and ms per image."""
    detector = build_detector(preset, config["DETECTION_THRESHOLD"])
    options = Options.from_config(config, method="blur", boxes=False, preset=preset)
    regions, elapsed = {}, 0.0
    for i, (name, (image, _)) in enumerate(samples.items()):
        source = work / f"{i}.png"
        cv2.imwrite(str(source), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        started = time.perf_counter()
        result = process_image(source, work / f"{i}-out.png", detector, options)
        elapsed += time.perf_counter() - started
        regions[name] = [r.box() for r in result.regions]
    getattr(detector, "close", lambda: None)()
    return regions, 1000 * elapsed / max(len(samples), 1)


def score(regions: dict[str, list], samples: Set, nofaces: set[str], known: dict[str, list] | None = None) -> dict:
    """Coverage recall per subset and band, false positives, area redacted outside faces.

    `known`: the faces in face-free photos (FACES_IN_NOFACES, moved as the photos were): a region
    whose centre lies on one is counted in `known_regions`, not as a false positive.
    """
    coverages, outside = defaultdict(list), defaultdict(list)
    for name, (image, faces) in samples.items():
        if name in nofaces:
            continue
        mask = union_mask(image.shape[:2], regions[name])
        subset = name.split("_")[0]
        for key in (subset, "all"):
            coverages[key] += face_coverage(mask, faces)
            outside[key].append(outside_share(mask, faces))
    present = [n for n in nofaces if n in samples]
    false = {n: [r for r in regions[n] if not on_a_face(r, (known or {}).get(n, []))] for n in present}
    return {"recall": {k: recall_by_band(v) for k, v in coverages.items()},
            "outside": {k: sum(v) / len(v) for k, v in outside.items()},
            "fp_regions": sum(len(v) for v in false.values()), "fp_photos": sum(bool(v) for v in false.values()),
            "known_regions": sum(len(regions[n]) - len(false[n]) for n in present), "nofaces": len(present)}


def on_a_face(region: list[float], faces: list[list[float]]) -> bool:
    """Whether the region's centre lies on one of these faces."""
    cx, cy = region[0] + region[2] / 2, region[1] + region[3] / 2
    return any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in faces)


def cell(pair: tuple[int, int]) -> str:
    hit, total = pair
    return f"{100 * hit / total:5.1f}% {hit:4d}/{total:<4d}" if total else f"{'-':>15s}"


def print_table(preset: str, result: dict, ms: float) -> None:
    bands = [label for label, _, _ in BANDS]
    print(f"\n== preset {preset}: {ms:.0f} ms per image (decode + detect + redact + encode, one thread)")
    print(f"{'subset':10s} " + " ".join(f"{b:>15s}" for b in bands) + f" {'outside':>8s}")
    for subset in sorted(result["recall"], key=lambda s: (s == "all", s)):
        cells = [cell(result["recall"][subset][band]) for band in bands]
        print(f"{subset:10s} " + " ".join(f"{c:>15s}" for c in cells) + f" {100 * result['outside'][subset]:7.2f}%")
    print(f"no-face photos: {result['fp_regions']} regions on {result['fp_photos']} of {result['nofaces']} photos "
          f"({10 * result['fp_regions'] / max(result['nofaces'], 1):.1f} per 10 photos), "
          f"and {result['known_regions']} over the faces FACES_IN_NOFACES lists")


def print_summary(figures: dict) -> None:
    """One line per transform and preset: the goals' figures side by side."""
    print(f"\n{'transform':10s} {'preset':9s} {'all >=20':>15s} {'crowd >=10':>15s} {'close-ups':>15s} "
          f"{'no-face regions':>16s} {'outside':>8s} {'ms/img':>7s}")
    for key, result in figures.items():
        transform, preset = key.split("/")
        recall = result["recall"]
        closeup = recall.get("all", {}).get(">=10", (0, 0)) if transform.startswith("closeup") else (0, 0)
        nofaces = (f"{result['fp_regions']} on {result['nofaces']} +{result['known_regions']}"
                   if result["nofaces"] else "-")
        print(f"{transform:10s} {preset:9s} {cell(recall.get('all', {}).get('>=20', (0, 0))):>15s} "
              f"{cell(recall.get('wider', {}).get('>=10', (0, 0))):>15s} {cell(closeup):>15s} {nofaces:>16s} "
              f"{100 * result['outside'].get('all', 0):7.2f}% {result['ms_per_image']:7.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="folder with gt/annotations.json (and nofaces/)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets to measure")
    parser.add_argument("--transforms", default=",".join(TRANSFORMS),
                        help=f"comma-separated, of: {', '.join(TRANSFORMS)}, closeup, closeup90, closeup180, "
                             "closeup270, closeup45, closeup-45 (clear faces; a suffix not a quarter turn tilts them), "
                             "closeup-all, closeup-all90, ... (every face >= 40 px), closeup-tight, closeup-tight90, "
                             "... (clear faces filling 0.6-0.9 of crops enlarged to 1200 px); a close-up name + a transform "
                             "changes the crops too: closeup+noisy, closeup90+cast")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--tables", action="store_true", help="print the full table of each run, not only the summary")
    args = parser.parse_args(argv)
    samples, nofaces = load(args.folder)
    config = load_config()
    print(f"{len(samples) - len(nofaces)} photos with {sum(len(b) for _, b in samples.values())} faces, "
          f"{len(nofaces)} without faces; a face is covered when >= 70% of its box is redacted; no-face regions: "
          f"false positives on the photos without faces, + those over the faces found in them on inspection")
    figures = {}
    for transform in args.transforms.split(","):
        if transform.startswith("closeup"):
            turning, _, tone = transform.partition("+")
            kind = next(k for k in ("closeup-all", "closeup-tight", "closeup") if turning.startswith(k))
            cut = tight_close_ups if kind == "closeup-tight" else close_ups
            derived = cut({n: s for n, s in samples.items() if n not in nofaces},
                          only=None if kind == "closeup-all" else clear_faces(args.folder))
            degrees = int(turning[len(kind):] or 0)
            if degrees % 90:
                derived = tilted(degrees)(derived)
            elif degrees:
                derived = TRANSFORMS["turn" + str(degrees % 360)](derived)
            if tone:
                derived = TRANSFORMS[tone](derived)
        else:
            derived = TRANSFORMS[transform](samples)
        known = known_faces(transform, samples, derived)
        for preset in args.presets.split(","):
            with tempfile.TemporaryDirectory() as work:
                regions, ms = run_preset(preset, derived, config, Path(work))
            result = {**score(regions, derived, set(nofaces), known), "ms_per_image": ms}
            figures[f"{transform}/{preset}"] = result
            if args.tables:
                print(f"\n#### {transform}", end="")
                print_table(preset, result, ms)
            print_summary({f"{transform}/{preset}": result})
            sys.stdout.flush()
    print_summary(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
