"""A training file damaged after the data module checked it (a real `lightning-reg fit` process)."""

from __future__ import annotations

from helpers import lightning_reg


def _last_line(done) -> str:
    return done.stderr.strip().splitlines()[-1]


def test_a_training_image_damaged_after_the_module_was_built_is_skipped(tmp_path, neurite_tree):
    """The data module checks headers when it is built; the image data are read mid-epoch. A file cut
    short is then skipped with a warning naming it, and above the set fraction training stops."""
    damaged = neurite_tree / "OASIS_OAS1_0002_MR1" / "slice_norm.nii.gz"
    content = damaged.read_bytes()
    damaged.write_bytes(content[: len(content) // 2])  # truncated gzip: the header still reads
    data = [
        "--data",
        "lightning_reg.data.OASISDataModule",
        "--data.root",
        neurite_tree,
        "--data.dims",
        "2",
        "--data.val_subjects",
        "2",
        "--data.test_subjects",
        "2",
        "--data.train_pairs",
        "6",
    ]
    tiny = [
        "--trainer.max_epochs",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--model.train_solver.iterations",
        "[3,3,3]",
    ]
    (tmp_path / "a").mkdir()
    done = lightning_reg(["fit", *data, *tiny, "--data.max_unreadable_fraction", "0.9"], tmp_path / "a")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skipped a training pair: cannot load" in done.stderr and str(damaged) in done.stderr
    assert (next((tmp_path / "a" / "runs" / "lightning-reg").iterdir()) / "checkpoints" / "last.ckpt").is_file()

    (tmp_path / "b").mkdir()
    done = lightning_reg(["fit", *data, *tiny, "--data.max_unreadable_fraction", "0"], tmp_path / "b")
    assert done.returncode == 2, done.stderr[-3000:]
    last = _last_line(done)
    assert "training pairs could not be read" in last and str(damaged) in last and "Traceback" not in done.stderr
