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
