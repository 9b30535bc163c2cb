"""Temporary files that a writer killed with ``kill -9`` left (``.partial-*``) are removed by the next
successful write into their folder; a live writer's are kept."""

from __future__ import annotations

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
