"""The registry records each file once, takes only allowed steps, and serialises a file one way for all."""
from __future__ import annotations

from app.jobs import FileEntry, FileState, Job, JobRegistry, JobState
from app.outcomes import FileError, ImageResult, Region

JOB = "j" * 32


def make_job(tmp_path, states: list[FileState]) -> Job:
    files = [FileEntry(i, f"{i}.jpg", tmp_path / f"{i}.jpg", tmp_path / "out" / f"{i}.jpg", state)
             for i, state in enumerate(states)]
    return Job(JOB, tmp_path, files, {"preset": "fast"})


def test_only_the_last_pending_file_ends_the_job(tmp_path):
    registry = JobRegistry()
    registry.add(make_job(tmp_path, [FileState.PENDING, FileState.SKIPPED, FileState.PENDING,
                                     FileState.FAILED, FileState.PENDING]))
    region = Region(1, 2, 3, 4, 0.9, "mediapipe")
    assert registry.finish_file(JOB, 2, ImageResult(8, 8, [region]))[1] is False
    assert registry.finish_file(JOB, 2, FileError("unexpected", "twice")) == (None, False)  # recorded once only
    assert registry.finish_file(JOB, 1, FileError("unexpected", "skipped files are not processed")) == (None, False)
    entry, last = registry.finish_file(JOB, 0, FileError("unreadable", "Not a readable image."))
    assert last is False and (entry.state, entry.code) == (FileState.FAILED, "unreadable")
    entry, last = registry.finish_file(JOB, 4, ImageResult(8, 8))
    assert last is True and entry.state is FileState.DONE
    snapshot = registry.snapshot(JOB)
    assert (snapshot["processed"], snapshot["failed"], snapshot["skipped"], snapshot["faces"]) == (4, 2, 1, 1)
    assert snapshot["files"][0] == {"name": "0.jpg", "state": "failed", "faces": 0,
                                    "error": "Not a readable image.", "code": "unreadable"}


def test_a_job_added_again_counts_its_files_afresh(tmp_path):
    registry = JobRegistry()
    registry.add(make_job(tmp_path, [FileState.PENDING, FileState.PENDING]))
    registry.finish_file(JOB, 0, ImageResult(8, 8))
    registry.remove(JOB)
    assert registry.finish_file(JOB, 1, ImageResult(8, 8)) == (None, False)
    registry.add(make_job(tmp_path, [FileState.DONE, FileState.PENDING]))  # as a restart restores it
    assert registry.finish_file(JOB, 1, ImageResult(8, 8))[1] is True


def test_a_job_steps_from_queued_to_running_to_an_end_and_no_other_way(tmp_path):
    registry = JobRegistry()
    registry.add(make_job(tmp_path, [FileState.PENDING]))
    assert registry.snapshot(JOB)["state"] == "queued"
    assert registry.start(JOB) is True and registry.start(JOB) is False  # running once
    assert registry.finish(JOB, 5.0) is True
    assert registry.fail(JOB, "too late") is False and registry.start(JOB) is False  # an end is final
    job = registry.copy(JOB)
    assert (job.state, job.finished, job.error) == (JobState.DONE, 5.0, None)


def test_the_journal_the_api_and_the_report_share_one_serialisation(tmp_path):
    entry = FileEntry(3, "a.gif", tmp_path / "in", tmp_path / "out", original="a .gif")
    entry.end(ImageResult(40, 30, [Region(1, 2, 3, 4, 0.87654, "centerface", 0), Region(5, 6, 7, 8, 0.5, "mp", 1)],
                          frames=2, format="GIF"))
    state = entry.to_state()
    assert {k: state[k] for k in ("index", "source", "output")} == {"index": 3, "source": str(tmp_path / "in"),
                                                                   "output": str(tmp_path / "out")}
    assert {k: v for k, v in state.items() if k not in ("index", "source", "output")} == entry.report()
    assert entry.summary().items() <= entry.report().items()
    back = FileEntry.from_state(state)
    assert back.report() == entry.report() and back.original == "a .gif"
    assert entry.report()["regions_per_frame"] == [[[1, 2, 3, 4]], [[5, 6, 7, 8]]]
