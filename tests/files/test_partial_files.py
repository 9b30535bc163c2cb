"""Temporary files that a writer killed with ``kill -9`` left (``.partial-*``) are removed by the next
successful write into their folder; a live writer's are kept."""

from __future__ import annotations

import errno
import fcntl

from helpers import killed_writer_of, stopped_writer_of

from lightning_reg.files.output_folder import atomic_path


def test_a_killed_writers_partial_file_goes_and_a_live_ones_stays(tmp_path):
    killed_writer_of(tmp_path / "last.ckpt")
    live = stopped_writer_of(tmp_path / "moved.nii.gz")
    left = {path.name: path for path in tmp_path.glob(".partial-*")}
    assert len(left) == 2
    try:
        with atomic_path(tmp_path / "metrics.json") as temporary:
            temporary.write_text("{}")
        kept = sorted(path.name for path in tmp_path.glob(".partial-*"))
        assert kept == [name for name in left if name.endswith("moved.nii.gz")]
        assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".")) == ["metrics.json"]
    finally:
        live.kill()
        live.wait(timeout=60)


def test_a_file_system_without_locks_still_writes_and_removes_nothing_it_cannot_judge(tmp_path, monkeypatch):
    """Some cluster file systems are mounted without flock (ENOLCK): results and checkpoints are still
    written, and no one's temporary file is taken for abandoned."""
    killed_writer_of(tmp_path / "last.ckpt")

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with atomic_path(tmp_path / "last.ckpt") as temporary:
        temporary.write_bytes(b"a checkpoint")
    assert (tmp_path / "last.ckpt").read_bytes() == b"a checkpoint"
    assert len(list(tmp_path.glob(".partial-*"))) == 1  # no lock to tell a dead writer from a live one: kept
