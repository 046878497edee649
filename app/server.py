"""Serving the web app: waitress (Werkzeug's development server with --debug), one server per data folder."""
from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
from pathlib import Path

from flask import Flask

from app import create_app
from app.config import load_config
from app.lock import FolderInUse, FolderLock
from app.web.security import Access, is_loopback, is_wildcard, protect

log = logging.getLogger(__name__)

# Waitress reads each request whole (spooling large bodies to a temporary file) before a thread
# sees it, so a thread is busy only while Flask stores an upload or answers a poll or a preview;
# detection runs in the worker processes. Eight threads let a few uploads be stored while the
# pages of other people keep polling.
THREADS = 8
# Waitress answers 413 itself, in plain text, for bodies over its own limit: set it a little above
# MAX_CONTENT_LENGTH, so that Flask answers first with the JSON message naming the limit.
BODY_MARGIN = 16 * 1024**2


def _parse(argv: list[str] | None, prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog, description="Serve the Face Privacy Guard web app.",
        epilog="Bound to any address but this machine's own (127.0.0.1, ::1, localhost), the API asks "
               "for an access token: FACEGUARD_TOKEN if set (then on every address), else one made up "
               "at start-up and printed in the address to open. One server per data folder "
               "(FACEGUARD_DATA_DIR).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine "
                                                           "only; 0.0.0.0: every network, with a token)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    parser.add_argument("--debug", action="store_true",
                        help="serve with Werkzeug's development server and Flask's debugger (this machine only)")
    args = parser.parse_args(argv)
    if args.debug and not is_loopback(args.host):
        parser.error("--debug runs Python typed into an error page: it serves on this machine only "
                     "(--host 127.0.0.1)")
    return args


def _token(configured: str | None, host: str) -> str | None:
    """The token the API asks for: the configured one, or a new one off loopback, or none."""
    if configured is not None:
        if not (configured.isascii() and configured.isprintable() and " " not in configured):
            raise SystemExit("Face Privacy Guard: FACEGUARD_TOKEN must be printable ASCII without spaces "
                             "(browsers send it in a header).")
        return configured
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def _address(host: str, port: int, token: str | None, generated: bool) -> str:
    """Say where to open the page; a token made up here goes in the address's #fragment."""
    name = f"[{host}]" if ":" in host else host
    url = f"http://{name}:{port}/" + (f"#token={token}" if generated else "")
    line = f"Face Privacy Guard: open {url} in your browser"
    if token and not generated:
        line += " (it asks for the token in FACEGUARD_TOKEN)"
    if is_wildcard(host):
        line += "\n  (from other machines, put this machine's network address in place of " + name + ")"
    return line


def _serve(app: Flask, host: str, port: int, debug: bool, address: str) -> int:
    """Bind and serve until Ctrl-C or SIGTERM; return the exit code."""
    try:
        if debug:
            print(address, flush=True)
            app.run(host=host, port=port, debug=True, threaded=True, use_reloader=False)
            return 0
        from waitress import create_server

        server = create_server(app, host=host, port=port, threads=THREADS,
                               max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + BODY_MARGIN)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(f"Face Privacy Guard: cannot serve on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    server.print_listen("Serving with waitress on http://{}:{}")
    print(address, flush=True)
    server.run()  # returns on Ctrl-C or SystemExit, its threads stopped
    return 0


def main(argv: list[str] | None = None, prog: str = "run.py") -> int:
    """Serve the app until stopped; return the exit code."""
    args = _parse(argv, prog)
    config = load_config()
    lock = FolderLock(Path(config["DATA_DIR"]))
    try:
        lock.acquire()  # before the app resumes any job, and before binding
    except FolderInUse as exc:
        print(f"Face Privacy Guard: {exc}", file=sys.stderr)
        return 1
    app = None
    # A plain `kill` shuts down like Ctrl-C: worker processes stop, unfinished files stay queued on disk.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        token = _token(config["TOKEN"], args.host)
        generated = config["TOKEN"] is None and token is not None
        app = create_app()
        protect(app, Access.for_bind(args.host, args.port, token))
        return _serve(app, args.host, args.port, args.debug, _address(args.host, args.port, token, generated))
    finally:
        if app is not None:
            app.extensions["faceguard"].shutdown()
            log.info("stopped; unfinished files stay queued in %s for the next start", lock.folder)
        lock.release()
