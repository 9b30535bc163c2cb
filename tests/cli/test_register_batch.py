"""`lightning-reg register --pairs CSV`: many pairs in one process, each as register writes one; and
`--metrics quick`."""

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from lightning_reg.cli import main

QUICK = ["--scales", "2", "1", "--iterations", "6", "3", "--threads", "1", "--quiet"]


def _pairs_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows(rows)
    return path


def _warp(folder):
    return np.asarray(nib.load(folder / "warp.nii.gz").dataobj)


def test_a_batch_writes_each_pair_as_register_does(pair, tmp_path):
    folder = pair["fixed"].parent
    pairs = _pairs_csv(
        folder / "pairs.csv",  # relative paths: from the CSV's folder
        [
            ["name", "fixed", "moving", "fixed_seg", "moving_seg"],
            ["forward", "fixed.nii.gz", "moving.nii.gz", "fixed_seg.nii.gz", "moving_seg.nii.gz"],
            ["backward", "moving.nii.gz", "fixed.nii.gz", "", ""],
        ],
    )
    assert main(["register", "--pairs", str(pairs), "--out", str(tmp_path / "batch"), *QUICK]) == 0
    single = tmp_path / "single"
    arguments = ["--fixed", pair["fixed"], "--moving", pair["moving"]]
    arguments += ["--fixed-seg", pair["fixed_seg"], "--moving-seg", pair["moving_seg"]]
    assert main(["register", *map(str, arguments), "--out", str(single), *QUICK]) == 0
    assert np.array_equal(_warp(tmp_path / "batch" / "forward"), _warp(single))
    forward = json.loads((tmp_path / "batch" / "forward" / "metrics.json").read_text())
    assert forward["dice"] == json.loads((single / "metrics.json").read_text())["dice"]
    assert "dice" not in json.loads((tmp_path / "batch" / "backward" / "metrics.json").read_text())
    with open(tmp_path / "batch" / "registrations.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["name"], row["status"]) for row in rows] == [("forward", "ok"), ("backward", "ok")]
    assert float(rows[0]["dice"]) == pytest.approx(forward["dice"])


def test_a_failed_pair_is_reported_and_the_others_are_written(pair, tmp_path, capsys):
    pairs = _pairs_csv(
        tmp_path / "pairs.csv",
        [["fixed", "moving"], [pair["fixed"], tmp_path / "missing.nii.gz"], [pair["fixed"], pair["moving"]]],
    )
    assert main(["register", "--pairs", str(pairs), "--out", str(tmp_path / "batch"), *QUICK]) == 2
    error = capsys.readouterr().err
    assert "missing.nii.gz" in error and "1 of 2 pairs failed" in error
    with open(tmp_path / "batch" / "registrations.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["name"] == "pair-0001" and rows[0]["status"].startswith("error: file not found")
    assert rows[1]["status"] == "ok" and (tmp_path / "batch" / "pair-0002" / "warp.nii.gz").is_file()
    assert not (tmp_path / "batch" / "pair-0001").exists()


@pytest.mark.parametrize(
    "rows, extra, says",
    [
        ([["fixed", "moving", "labels"], ["a", "b", "c"]], [], "unknown: labels"),
        ([["fixed"], ["a"]], [], "must name the columns fixed and moving"),
        ([["name", "fixed", "moving"], ["x", "a", "b"], ["x", "c", "d"]], [], "'x' is used twice"),
        ([["name", "fixed", "moving"], ["../up", "a", "b"]], [], "plain folder name"),
        ([["fixed", "moving"], ["a", ""]], [], "line 2: no moving image"),
        ([["fixed", "moving"]], [], "no pairs"),
        ([["fixed", "moving"], ["a", "b"]], ["--fixed-seg", "x.nii.gz"], "leave out --fixed-seg"),
    ],
)
def test_a_bad_pairs_file_is_refused_before_any_work(tmp_path, capsys, rows, extra, says):
    pairs = _pairs_csv(tmp_path / "pairs.csv", rows)
    assert main(["register", "--pairs", str(pairs), "--out", str(tmp_path / "out"), *extra]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_register_without_images_or_pairs_says_what_to_give(tmp_path, capsys):
    assert main(["register", "--out", str(tmp_path / "out")]) == 2
    assert "give --fixed and --moving (or --pairs CSV" in capsys.readouterr().err


def test_quick_metrics_leave_out_hd95_and_keep_dice(pair, tmp_path):
    arguments = ["--fixed", pair["fixed"], "--moving", pair["moving"]]
    arguments += ["--fixed-seg", pair["fixed_seg"], "--moving-seg", pair["moving_seg"], *QUICK]
    reports = {}
    for metrics in ("all", "quick"):
        out = tmp_path / metrics
        assert main(["register", *map(str, arguments), "--metrics", metrics, "--out", str(out)]) == 0
        reports[metrics] = json.loads((out / "metrics.json").read_text())
    assert reports["quick"]["dice"] == reports["all"]["dice"] > reports["all"]["dice_before"]
    assert reports["quick"]["hd95"] is None and reports["all"]["hd95"] > 0
    assert reports["quick"]["ndv_percent"] is None and reports["all"]["ndv_percent"] is not None
