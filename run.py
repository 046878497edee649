"""Serve Face Privacy Guard on this machine: python run.py [--host 127.0.0.1] [--port 5000] [--debug]."""
from __future__ import annotations

import sys

from app.server import main

if __name__ == "__main__":
    sys.exit(main(prog="run.py"))
