"""The registry records each file once and tells which file was a job's last."""
from __future__ import annotations

from app.jobs import FileEntry, FileState, Job, JobRegistry, Region


def make_job(tmp_path, states: list[FileState]) -> Job:
    files = [FileEntry(i, f"{i}.jpg", tmp_path / f"{i}.jpg", tmp_path / "out" / f"{i}.jpg", state)
             for i, state in enumerate(states)]
    return Job("j" * 32, tmp_path, files, {"preset": "fast"})


def test_only_the_last_pending_file_ends_the_job(tmp_path):
    registry = JobRegistry()
    registry.add(make_job(tmp_path, [FileState.PENDING, FileState.SKIPPED, FileState.PENDING,
                                     FileState.FAILED, FileState.PENDING]))
    region = Region(1, 2, 3, 4, 0.9, "mediapipe")
    assert registry.finish_file("j" * 32, 2, width=8, height=8, regions=[region])[1] is False
    assert registry.finish_file("j" * 32, 2, error="twice") == (None, False)  # recorded once only
    assert registry.finish_file("j" * 32, 1, error="skipped files are not processed") == (None, False)
    assert registry.finish_file("j" * 32, 0, error="Not a readable image.")[1] is False
    entry, last = registry.finish_file("j" * 32, 4, width=8, height=8)
    assert last is True and entry.state is FileState.DONE
    snapshot = registry.snapshot("j" * 32)
    assert (snapshot["processed"], snapshot["failed"], snapshot["skipped"], snapshot["faces"]) == (4, 2, 1, 1)


def test_a_job_added_again_counts_its_files_afresh(tmp_path):
    registry = JobRegistry()
    registry.add(make_job(tmp_path, [FileState.PENDING, FileState.PENDING]))
    registry.finish_file("j" * 32, 0, width=8, height=8)
    registry.remove("j" * 32)
    assert registry.finish_file("j" * 32, 1, width=8, height=8) == (None, False)
    registry.add(make_job(tmp_path, [FileState.DONE, FileState.PENDING]))  # as a restart restores it
    assert registry.finish_file("j" * 32, 1, width=8, height=8)[1] is True
