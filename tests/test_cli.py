"""The faceguard command on folders and zips: same pipeline, same names, same report."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2

from app.cli import main
from tests.helpers import encode, make_zip


def test_cli_on_a_folder(tmp_path, astronaut, capsys):
    src = tmp_path / "in"
    (src / "trip").mkdir(parents=True)
    cv2.imwrite(str(src / "trip" / "合照.jpg"), astronaut)
    cv2.imwrite(str(src / "portrait.png"), astronaut)
    (src / "notes.txt").write_text("not a photo")
    (tmp_path / "more.zip").write_bytes(make_zip({"z/inside.jpg": encode(astronaut)}))
    out = tmp_path / "out"
    assert main([str(src), str(tmp_path / "more.zip"), "-o", str(out), "--method", "pixelate", "--workers", "2"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        ["portrait.png", "report.json", "trip/合照.jpg", "z/inside.jpg"]
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "pixelate"
    assert {f["name"]: f["faces"] for f in report["files"] if f["state"] == "done"} == \
        {"portrait.png": 1, "trip/合照.jpg": 1, "z/inside.jpg": 1}
    err = capsys.readouterr().err
    assert "3 of 3 photos redacted, 3 faces, 0 failed, 1 skipped" in err and "3/3" in err


def test_cli_exit_code_and_no_output_for_a_failed_file(tmp_path, astronaut):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "good.jpg"), astronaut)
    (src / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "app.cli", str(src), "-o", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "1 of 2 photos redacted, 1 faces, 1 failed" in result.stderr
    assert (out / "good.jpg").is_file() and not (out / "bad.jpg").exists()
    states = {f["name"]: f["state"] for f in json.loads((out / "report.json").read_text())["files"]}
    assert states == {"good.jpg": "done", "bad.jpg": "failed"}


def test_cli_missing_input(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "-o", str(tmp_path / "out")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
