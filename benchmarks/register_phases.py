"""Where ``lightning-reg register``'s time goes: the wall clock of the whole command against the
registration seconds it reports, with ``seconds_per_phase`` from its ``metrics.json``. The pair: two
training donors' label maps (never the held-out subjects) rendered with the fixed T1-like recipe,
96x112x96 at 2 mm, 82 labels, written as NIfTI beside the outputs.

    python -m lightning_reg.anatomy brains        # once
    python benchmarks/register_phases.py --brains brains --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from measure import provenance
from real_brains import render_donor

DONORS = ("9861", "12876")  # training donors: fixed, moving


def write_pair(brains: Path, folder: Path) -> dict[str, Path]:
    """The two donors rendered T1-like, with their label maps; paths by role."""
    paths = {}
    for role, donor in zip(("fixed", "moving"), DONORS):
        image, labels, affine = render_donor(brains, donor)
        paths[role], paths[f"{role}_seg"] = folder / f"{donor}.nii.gz", folder / f"{donor}_seg.nii.gz"
        nib.save(nib.Nifti1Image(image, affine), paths[role])
        nib.save(nib.Nifti1Image(labels.astype(np.int16), affine), paths[f"{role}_seg"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/register_phases"))
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results"), help="where the record goes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    paths = write_pair(args.brains, args.out)
    command = ["lightning-reg", "register", "--out", str(args.out / "registered"), "--overwrite"]
    for role, path in paths.items():
        command += [f"--{role.replace('_', '-')}", str(path)]
    environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    report = json.loads((args.out / "registered" / "metrics.json").read_text())
    phases = report["seconds_per_phase"]
    record = {
        **provenance(args.threads),
        "summary": {
            "whole command (wall)": {"seconds": wall},
            **{f"phase: {name}": {"seconds": seconds} for name, seconds in phases.items()},
        },
        "ratios": {"wall / registration": wall / phases["registration"]},
        "dice": report["dice"],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "register_phases.json").write_text(json.dumps(record, indent=2))
    print(
        f"{record['machine']}: wall {wall:.1f} s, registration {phases['registration']:.1f} s, "
        f"ratio {wall / phases['registration']:.2f}x; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items())
        + f"; Dice {report['dice']:.4f}"
    )


if __name__ == "__main__":
    main()
