"""Serve Face Privacy Guard on this machine: python run.py [--host 127.0.0.1] [--port 5000]."""
from __future__ import annotations

import argparse
import signal
import sys

from app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Face Privacy Guard web app.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    args = parser.parse_args()
    app = create_app()
    # A plain `kill` shuts down like Ctrl-C: worker processes stop, unfinished files stay queued on disk.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Face Privacy Guard: open http://{args.host}:{args.port}/ in your browser", flush=True)
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
