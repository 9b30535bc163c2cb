"""Names read from a user's data become paths only inside their folder, and no two pairs share a
name: a ``subjects.txt`` line ``../..`` is refused before anything is read or written, and pairs of
files with one stem (``a/img``, ``c/img``) get distinct rows and prediction folders."""

import csv

import pytest
from helpers import lightning_reg
from trees import SHAPE, write_scan

from lightning_reg.data.datasets import distinct_ids
from lightning_reg.data.pairs_datamodule import short_names
from lightning_reg.errors import InputError
from lightning_reg.files.names import confined, file_name

SLICE = (SHAPE[0], SHAPE[1], 1)
TINY = ["--trainer.enable_progress_bar", "false", "--model.eval_solver.iterations", "[3,3,3]"]


def test_predict_refuses_a_subject_list_that_leads_out_of_the_data_folder(tmp_path, neurite_tree, trained_run):
    escape = tmp_path / "escape"
    write_scan(escape / "slice_norm.nii.gz", escape / "slice_seg24.nii.gz", seed=9, shape=SLICE)
    names = (neurite_tree / "subjects.txt").read_text().split()
    (neurite_tree / "subjects.txt").write_text("\n".join([*names[:5], "../escape", names[5]]) + "\n")
    data = ["--data", "lightning_reg.data.OASISDataModule", "--data.root", neurite_tree, "--data.dims", "2"]
    data += ["--data.val_subjects", "2", "--data.test_subjects", "2"]
    work = tmp_path / "work"
    work.mkdir()
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    done = lightning_reg(["predict", "--ckpt_path", checkpoint, *data, *TINY], work)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "subjects.txt, line 6: '../escape' is not a folder or file name" in done.stderr.strip().splitlines()[-1]
    assert sorted(path.name for path in escape.iterdir()) == ["slice_norm.nii.gz", "slice_seg24.nii.gz"]
    assert not list(tmp_path.rglob("warped.nii.gz"))


def test_pairs_of_files_with_one_name_get_their_own_rows_and_folders(tmp_path, trained_run):
    data_folder = tmp_path / "mine"
    for seed, name in enumerate("abcd"):
        write_scan(data_folder / name / "img.nii.gz", data_folder / name / "seg.nii.gz", seed=seed, shape=SLICE)
    rows = ["fixed,moving,fixed_seg,moving_seg"]
    rows += [f"{f}/img.nii.gz,{m}/img.nii.gz,{f}/seg.nii.gz,{m}/seg.nii.gz" for f, m in ("ab", "cd")]
    (data_folder / "pairs.csv").write_text("\n".join(rows) + "\n")
    data = ["--data", "lightning_reg.data.PairsDataModule", "--data.manifest", data_folder / "pairs.csv"]
    data += ["--data.dims", "2"]
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    for command in ("test", "predict"):
        done = lightning_reg([command, "--ckpt_path", checkpoint, *data, *TINY], tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    (table,) = tmp_path.glob("runs/lightning-reg/*/test_metrics.csv")
    with open(table) as handle:
        assert [row["id"] for row in csv.DictReader(handle)] == ["a-img_b-img", "c-img_d-img"]
    folders = sorted(path.name for path in tmp_path.glob("runs/lightning-reg/*/predictions/*") if path.is_dir())
    assert folders == ["a-img_b-img", "c-img_d-img"]


def test_names_are_confined_and_ids_distinct(tmp_path):
    assert confined(tmp_path, "imagesTr/x.nii.gz", "list") == tmp_path / "imagesTr" / "x.nii.gz"
    for name in ("../x", "a/../../x", "/etc/passwd", "..", "", "a\\..\\..\\x"):
        with pytest.raises(InputError, match="inside"):
            confined(tmp_path, name, "list")
    with pytest.raises(InputError, match="a folder or file name"):
        confined(tmp_path, "a/b", "subjects.txt, line 1", single=True)
    assert [file_name(text) for text in ("../../x", "a/b", ".hidden", "", "ok_1")] == [
        "_.._x",
        "a_b",
        "hidden",
        "_",
        "ok_1",
    ]
    assert distinct_ids(["a_b", "a_b", "c_d", "a_b"]) == ["a_b", "a_b-2", "c_d", "a_b-3"]
    paths = [tmp_path / "x" / "a" / "img.nii.gz", tmp_path / "y" / "a" / "img.nii.gz", tmp_path / "b.nii"]
    assert short_names(paths) == {paths[0]: "x-a-img", paths[1]: "y-a-img", paths[2]: "b"}
