"""The real server under a big job: peak memory at two batch sizes, and single-photo latency.

    python -m benchmarks.server ../shared/data/faces [--sizes 100,1000] [--preset balanced]

For each size, starts `run.py` on a free loopback port with a fresh data folder, uploads one zip
of that many 1080p JPEGs (derived as in benchmarks.throughput), polls until the job is done and
reports the peak RSS (VmHWM) of the server process and of its worker processes. Then, on the warm server, times single-photo jobs from
upload to result ready.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import requests

from benchmarks.throughput import prepare

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    """The processes `pid` started (its worker processes), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _peaks_mb(pid: int) -> tuple[float, float]:
    """Peak RSS of the server process, and the sum of its worker processes' peaks (an upper bound
    of what they held at any one moment)."""
    workers = 0.0
    for child in _children(pid):
        try:
            workers += _peak_rss_mb(child)
        except OSError:
            continue
    return _peak_rss_mb(pid), workers


def _run_job(base: str, path: Path, preset: str, timeout: float = 3600) -> tuple[dict, float]:
    start = time.perf_counter()
    with open(path, "rb") as handle:
        response = requests.post(f"{base}/api/jobs", files={"images": (path.name, handle)},
                                 data={"preset": preset}, timeout=timeout)
    response.raise_for_status()
    job = response.json()
    while time.perf_counter() - start < timeout:
        snap = requests.get(base + job["status_url"], timeout=30).json()
        if snap["state"] in ("done", "failed"):
            return snap, time.perf_counter() - start
        time.sleep(0.02)
    raise TimeoutError(job)


def serve(data: Path):
    port = _free_port()
    env = {**os.environ, "FACEGUARD_DATA_DIR": str(data)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            requests.get(base + "/", timeout=1)
            return proc, base
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--singles", type=int, default=10)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "faceguard-1080p")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    frames = prepare(args.folder, max(sizes), args.cache)
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            archive = Path(tmp) / f"{size}.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
                for i, frame in enumerate(frames[:size]):
                    zf.write(frame, f"batch/{i:04d}.jpg")
            proc, base = serve(Path(tmp) / f"data-{size}")
            try:
                snap, elapsed = _run_job(base, archive, args.preset)
                server, workers = _peaks_mb(proc.pid)
                peaks[size] = server + workers
                print(f"{size:5d} images ({archive.stat().st_size / 1e6:.0f} MB zip), preset {args.preset}: "
                      f"{snap['state']}, {snap['processed']} processed, {snap['failed']} failed, "
                      f"{elapsed:.1f} s ({size / elapsed:.1f} img/s); peak RSS: server {server:.0f} MB "
                      f"+ worker processes {workers:.0f} MB = {peaks[size]:.0f} MB", flush=True)
                if size == sizes[-1]:
                    times = [_run_job(base, frames[i], args.preset)[1] for i in range(args.singles)]
                    print(f"single 1080p photo on the warm server, upload to result ready: median "
                          f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
                          f"over {len(times)} jobs")
            finally:
                proc.terminate()
                proc.wait(30)
            archive.unlink()
    if len(peaks) > 1:
        small, large = peaks[sizes[0]], peaks[sizes[-1]]
        print(f"peak RSS (server + workers) {sizes[-1]} vs {sizes[0]} images: {large / small:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
