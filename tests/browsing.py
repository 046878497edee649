"""What the browser tests share: Debian's Chromium through Playwright (fixtures `browser`, `server` in conftest).

Importing this module skips the importing test module where Playwright or Chromium is missing.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' installs playwright")
if not Path(CHROMIUM).exists():
    pytest.skip("no Chromium: install it with `apt-get install -y chromium` to run the browser tests "
                "(.ci/run does)", allow_module_level=True)

ARTIFACTS = ROOT / "test-artifacts"
