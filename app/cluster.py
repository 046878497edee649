"""Dask as the batch service's executor: a running cluster at an address, or a LocalCluster started here.

Needs the `cluster` extra (`pip install 'faceguard[cluster]'`). Every worker must have the
product installed (the tasks are `app.worker.redact`, sent by reference); they share no disk
with the server: a task carries the photo's bytes in and the redacted bytes out.
"""
from __future__ import annotations

import logging
from concurrent.futures import Executor

from app.errors import FaceGuardError
from app.pipeline.process import Options

try:
    from distributed import Client, LocalCluster, WorkerPlugin
except ImportError:  # the extra is not installed
    Client = LocalCluster = None
    WorkerPlugin = object


class Warm(WorkerPlugin):
    """Build each worker's detector once, as the worker starts, on the thread that will run its tasks.

    A worker process with one task thread (`dask worker --nthreads 1`, as the README says) also
    gets what a local worker process gets: OpenCV on one thread and freed memory kept for the next
    photo (see `app.worker.start`); without them it ran `balanced` at 0.88x a local worker process.
    """

    name = "faceguard-warm"

    def __init__(self, options: Options | None) -> None:
        self.options = options

    def setup(self, worker) -> None:
        import cv2

        from app import worker as faceguard_worker

        if worker.state.nthreads == 1:
            cv2.setNumThreads(1)
            faceguard_worker._keep_freed_memory()
        for _ in range(worker.state.nthreads):  # one warm-up per task thread: detectors are per thread
            worker.executors["default"].submit(faceguard_worker.start, self.options, False)


class Cluster:
    """A Dask client for the batch service: `scheduler` ("tcp://host:8786"), or None for a LocalCluster."""

    def __init__(self, scheduler: str | None, workers: int, warm: Options | None) -> None:
        if Client is None:
            raise FaceGuardError("The dask executor needs the cluster extra: pip install 'faceguard[cluster]'.")
        self._local = None
        if scheduler:
            self.client = Client(scheduler, set_as_default=False, timeout="30s")
        else:
            self._local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.WARNING)
            self.client = Client(self._local, set_as_default=False)
        self.client.register_plugin(Warm(warm))

    def workers(self) -> int:
        """Task threads across the cluster's workers now (at least 1).

        Also called on the client's own thread (a task's done callback), where scheduler_info()
        returns the client's cached copy, refreshed every 2 s with the totals and no worker list.
        """
        info = self.client.scheduler_info(n_workers=0)  # the totals are enough
        threads = info.get("total_threads") or sum(w.get("nthreads", 1) for w in info.get("workers", {}).values())
        return max(1, threads)

    def executor(self) -> Executor:
        """A concurrent.futures executor on the cluster; `pure=False`: identical photos are separate tasks."""
        return self.client.get_executor(pure=False)

    def close(self) -> None:
        self.client.close()
        if self._local is not None:
            self._local.close()
