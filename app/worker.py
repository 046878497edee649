"""What runs inside a worker (a thread or a process): one image per call, detectors kept for the worker's life.

The batch service hands `redact` to its executor: bytes in, bytes out, nothing touches a disk
or a registry, so the same call works in a thread pool, a process pool and a Dask cluster.
"""
from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable

import numpy as np

from app.outcomes import ImageResult, Region
from app.pipeline.detect import Detector
from app.pipeline.presets import build_detector
from app.pipeline.process import Options, redact_bytes

DetectorFactory = Callable[[Options], Detector]
log = logging.getLogger(__name__)

# A worker's own detectors, built on first use and kept. Thread-local: a worker
# thread never shares one (MediaPipe graphs are not thread-safe); a worker process
# has one thread running tasks, so this is that process's set.
_detectors = threading.local()


def default_detector(options: Options) -> Detector:
    """Build the detector a job's options ask for."""
    return build_detector(options.preset, options.threshold)


def detector(options: Options, factory: DetectorFactory | None = None) -> Detector:
    """This worker's detector for these options, built on first use."""
    cache = getattr(_detectors, "cache", None)
    if cache is None:
        cache = _detectors.cache = {}
    key = (factory, options.preset, options.threshold)
    if key not in cache:
        cache[key] = (factory or default_detector)(options)
    return cache[key]


def redact(data: bytes, options: Options, factory: DetectorFactory | None = None,
           given: list[Region] | None = None) -> tuple[bytes, ImageResult]:
    """Redact one photo's bytes (see `redact_bytes`) with this worker's detector, or exactly the `given` regions."""
    return redact_bytes(data, detector(options, factory) if given is None else None, options, given)


def _exit_with(parent: int) -> None:
    """End this worker process once the process that started it is gone (killed, not shut down)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _keep_freed_memory() -> None:
    """Let glibc keep freed memory for the next image instead of returning it to the system.

    Every image allocates buffers of several megabytes; by default glibc maps them fresh
    and unmaps them when freed, so each image pays thousands of page faults. Measured in
    worker processes on 1080p JPEGs: 1.4x the images per second for `fast`, 1.9x for
    `balanced` (with YuNet then; its engine allocated large buffers on every call). The cost is that a
    worker keeps up to 128 MB it no longer uses; buffers over 64 MB (photos over ~20
    megapixels) are still mapped and unmapped each time.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl): leave the allocator alone
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 64 << 20)
    libc.mallopt(m_trim_threshold, 128 << 20)


def _pin(counter) -> None:
    """Keep this worker process on one CPU of its own (worker i on the i-th CPU, cycling)."""
    if counter is None or not hasattr(os, "sched_setaffinity"):
        return
    with counter.get_lock():
        index, counter.value = counter.value, counter.value + 1
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[index % len(cpus)]})


def start(options: Options | None, single_core: bool, counter=None) -> None:
    """Prepare a new worker: settle a process on one core, build and try the detector it will need first.

    In a worker process (`single_core`), OpenMP and OpenCV are held to one thread (ONNX
    Runtime's sessions are built with one thread each)
    and the process to one CPU (`counter` numbers the workers): the pool runs one process
    per core, so threads inside a call, or a process wandering between cores, only get in
    the other workers' way (measured: 2 workers ran 1.94x one worker pinned, 1.75x not).
    The OpenMP variable must be set before a library that reads it loads. A worker process also
    watches its parent and ends when the server is killed.
    """
    if single_core:
        os.environ["OMP_NUM_THREADS"] = "1"
        import cv2

        cv2.setNumThreads(1)
        _keep_freed_memory()
        _pin(counter)
        parent = multiprocessing.parent_process()  # its pid, even if it died while this one started
        threading.Thread(target=_exit_with, args=(parent.pid if parent else os.getppid(),),
                         name="faceguard-orphan-watch", daemon=True).start()
    if options is not None:
        try:
            detector(options)(np.zeros((64, 64, 3), np.uint8))  # first inference allocates; do it now
        except Exception:  # a worker that cannot warm up still starts; each file then says why it failed
            log.exception("worker could not build its detector in advance")
