"""report.json is written one file at a time, and reads the same as the whole document dumped at once."""
from __future__ import annotations

import io
import json

import pytest

from app.jobs import FileEntry, FileState, Job, Region
from app.results import write_report_to


@pytest.mark.parametrize("count", [0, 1, 3])
def test_streamed_report_is_the_same_text_as_one_dump(tmp_path, count):
    files = [FileEntry(i, f'合照 "{i}"\n.jpg', None, None, FileState.DONE, None, 640, 480,
                       [Region(10 * k, 20, 30, 40, 0.91, "yunet") for k in range(i + 1)])
             for i in range(count)]
    if count:
        files[-1].state, files[-1].error, files[-1].regions = FileState.FAILED, "Not a readable image.", []
    job = Job("a" * 32, tmp_path, files, {"preset": "balanced", "method": "blur"}, finished=1.5)
    out = io.StringIO()
    write_report_to(job, out)
    assert out.getvalue() == json.dumps(job.report(), ensure_ascii=False, indent=2)
    assert len(json.loads(out.getvalue())["files"]) == count


def test_report_gives_the_original_name_only_where_the_name_was_changed(tmp_path):
    files = [FileEntry(0, "CON_.jpg", None, None, FileState.DONE, original="CON.jpg"),
             FileEntry(1, "a.jpg", None, None, FileState.DONE)]
    job = Job("a" * 32, tmp_path, files, {"preset": "balanced"})
    out = io.StringIO()
    write_report_to(job, out)
    listed = json.loads(out.getvalue())["files"]
    assert (listed[0]["name"], listed[0]["original_name"]) == ("CON_.jpg", "CON.jpg")
    assert "original_name" not in listed[1]
    assert list(listed[0])[:3] == ["name", "original_name", "state"]
