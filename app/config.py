"""Every default in one place, overridable from the environment as FACEGUARD_<NAME>."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    # Where jobs live: one directory per job (inputs, outputs, state, result zip).
    "DATA_DIR": str(ROOT / "instance" / "jobs"),
    # Largest request body Flask accepts; larger uploads get a 413.
    "MAX_CONTENT_LENGTH": 2 * 1024**3,
    # Most input files (images, and members of zips) one job may hold; a request's
    # multipart parts are capped just above it (Flask's MAX_FORM_PARTS, set by create_app).
    "MAX_FILES": 5000,
    # Images with more pixels than this fail before they are decoded.
    "MAX_PIXELS": 100_000_000,
    # Zip members: total uncompressed bytes per upload, and the largest
    # uncompressed/compressed ratio a member may reach while it is read.
    "MAX_UNZIPPED_BYTES": 8 * 1024**3,
    "MAX_ZIP_RATIO": 200,
    # Finished jobs (results and all) are deleted this many seconds after they end.
    "RESULT_TTL": 3600,
    # A job started with review on keeps its originals (in its folder's inputs/) so that a
    # person can correct the regions; they are deleted at approval, deletion, cancellation,
    # or this many seconds after the job ended, whichever comes first.
    "REVIEW_TTL": 3600,
    # Workers of the batch service (0: one per CPU), and what they are: "process"
    # (one single-threaded process each; MediaPipe holds the GIL, so only processes run
    # it side by side), "thread" (threads in the server's process) or "dask" (below).
    "WORKERS": 0,
    "EXECUTOR": "process",
    # With EXECUTOR "dask": the address of a running Dask scheduler ("tcp://host:8786"), whose
    # workers get every photo (bytes in, bytes out: they share no disk with the server). Empty:
    # a LocalCluster of WORKERS single-threaded worker processes on this machine.
    "SCHEDULER": "",
    # Detection: the preset a job gets when it names none; the score a face needs
    # (None: each preset's own, measured by benchmarks/recall.py); and how far each
    # box is grown on every side, as a fraction of its size (the top grows 1.5 times
    # as much, to reach the forehead and hair line).
    "DEFAULT_PRESET": "balanced",
    "DETECTION_THRESHOLD": None,
    "BOX_PADDING": 0.2,
    "JPEG_QUALITY": 92,
    # The access token the API asks for (Authorization: Bearer ...). None: none on loopback,
    # and one generated at each start, and printed, when the server is bound to another address.
    "TOKEN": None,
}

# Keys whose None default stands for text rather than a number.
_TEXT = {"TOKEN"}


def _coerce(default: Any, raw: str) -> Any:
    """Turn an environment string into the type of its default."""
    if default is None:
        return float(raw) if raw.strip() else None
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the defaults, then FACEGUARD_* environment values, then overrides."""
    config = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        raw = os.environ.get(f"FACEGUARD_{key}")
        if raw is not None:
            config[key] = (raw.strip() or None) if key in _TEXT else _coerce(default, raw)
    config.update(overrides or {})
    if not config["WORKERS"]:
        config["WORKERS"] = os.cpu_count() or 1
    return config
