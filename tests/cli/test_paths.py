"""One path, resolved once where it is parsed, used for every check, read, hash and write: ``~`` is
the home folder also when no shell expanded it; a symbolic link as ``--out`` is refused by name; an
absurd ``--threads`` is one line, not a crash."""

from __future__ import annotations

import hashlib
import json
import shutil

import nibabel as nib
from helpers import in_process

FAST = ["--scales", "2", "1", "--iterations", "5", "3", "--quiet", "--no-qc"]


def test_a_tilde_path_is_the_home_folder_for_every_step(tmp_path, pair, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    (work / "~").mkdir(parents=True)
    home.mkdir()
    shutil.copy(pair["fixed"], home / "f.nii.gz")
    shutil.copy(pair["moving"], work / "~" / "f.nii.gz")  # another image under the literal name
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    arguments = ["register", "--fixed", "~/f.nii.gz", "--moving", pair["moving"], "--out", "~/registered", *FAST]
    done = in_process(arguments)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((home / "registered" / "metrics.json").read_text())
    read = report["inputs"]["fixed"]
    assert read["path"] == str(home / "f.nii.gz")
    assert read["sha256"] == hashlib.sha256((home / "f.nii.gz").read_bytes()).hexdigest()
    assert not (work / "~" / "registered").exists()

    arguments = ["apply", "--reference", "~/f.nii.gz", "--input", pair["moving"], "--transforms", "~/registered"]
    done = in_process([*arguments, "--out", "~/moved.nii.gz"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert nib.load(home / "moved.nii.gz").shape == nib.load(pair["fixed"]).shape
    assert not list(home.glob(".partial-*")) and not (work / "~" / "moved.nii.gz").exists()


def test_a_symbolic_link_as_out_is_refused_before_the_work_and_its_target_kept(tmp_path, pair, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["register", "--fixed", pair["fixed"], "--moving", pair["moving"], *FAST]
    done = in_process([*base, "--out", "real"])
    assert done.returncode == 0, done.stderr[-3000:]
    kept = sorted(path.name for path in (tmp_path / "real").iterdir())
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for extra in ([], ["--overwrite"]):
        done = in_process([*base, "--out", "link", *extra])
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "--out" in done.stderr and "is a symbolic link" in done.stderr
        assert (tmp_path / "link").is_symlink() and sorted(p.name for p in (tmp_path / "real").iterdir()) == kept


def test_absurd_thread_counts_are_refused_where_they_are_parsed(tmp_path, pair, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for threads in ("100000", "0", "many"):
        arguments = ["register", "--fixed", pair["fixed"], "--moving", pair["moving"], "--out", "o"]
        done = in_process([*arguments, "--threads", threads])
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "--threads" in done.stderr
    assert not (tmp_path / "o").exists()
