"""Whole commands as a user meets them: each registration a fresh process that reads the NIfTI files,
registers, writes its outputs and (where the method does) reslices the label map; the wall clock of
the process against the solve seconds it reports. Ours: ``lightning-reg register`` with its default
outputs at each iteration budget, ``--preset fast``, the lean path (``--preset fast --inverse-warp skip
--no-qc --metrics quick``, alone and as one ``--pairs`` process over all pairs) and the bundled
``brain3d`` model. PICSL Greedy as its users run it: read, NCC 2x2x2 at the same budgets, write the
warp, reslice the labels (``-ri LABEL 0.2vox``). Dice of every method from its warped label map
against the fixed one (82 DK labels). Held-out 3D pairs at 2 mm: reported, never tuned on.

    python -m lightning_reg.anatomy brains        # once
    pip install -e ".[bench]"
    python benchmarks/whole_command.py --brains brains --threads 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from measure import provenance

from lightning_reg.data.brains.datamodule import held_out_pairs
from lightning_reg.evaluation.metrics import dice_per_label

#: iterations per scale (4/2/1); 100x50x10 is Greedy's brain quick start, 50x25x10 our fast preset
#: and 200x100x50 our default
BUDGETS = ("25x12x5", "50x25x10", "100x50x10", "200x100x50")
FAST, DEFAULT = "ours 50x25x10", "ours 200x100x50"
LEAN = ["--preset", "fast", "--inverse-warp", "skip", "--no-qc", "--metrics", "quick"]
#: PICSL Greedy in a process of its own, as a user runs it; prints its solve seconds
GREEDY = r"""
import sys, time
from picsl_greedy import Greedy3D
fixed, moving, moving_seg, out, iterations, threads = sys.argv[1:7]
greedy = Greedy3D()
start = time.perf_counter()
greedy.execute(f"-d 3 -V 0 -threads {threads} -i {fixed} {moving} -m NCC 2x2x2 -n {iterations} -o {out}/warp.nii.gz")
print(time.perf_counter() - start)
reslice = f"-rf {fixed} -ri LABEL 0.2vox -rm {moving_seg} {out}/warped_seg.nii.gz -r {out}/warp.nii.gz"
greedy.execute(f"-d 3 -V 0 -threads {threads} {reslice}")
"""


def pair_files(brains: Path, count: int) -> list[dict]:
    """The first ``count`` held-out pairs as the builder wrote them: T1-like images and DK label maps."""
    return [
        {
            "id": f"{fixed}-{moving}",
            "fixed": brains / "images" / f"{fixed}_t1like.nii.gz",
            "moving": brains / "images" / f"{moving}_t1like.nii.gz",
            "fixed_seg": brains / "labels" / f"{fixed}.nii.gz",
            "moving_seg": brains / "labels" / f"{moving}.nii.gz",
        }
        for fixed, moving in held_out_pairs()[:count]
    ]


def timed(command: list[str], threads: int) -> tuple[float, str]:
    """Run ``command`` pinned to the first ``threads`` cores; its wall seconds and stdout."""
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads), ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=str(threads))
    pinned = ["taskset", "-c", f"0-{threads - 1}"] if shutil.which("taskset") else []
    start = time.perf_counter()
    done = subprocess.run([*pinned, *command], capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
    return wall, done.stdout


def dice(fixed_seg: Path, warped_seg: Path) -> float:
    """Mean Dice over the fixed map's labels."""
    fixed, warped = (
        torch.as_tensor(np.asarray(nib.load(path).dataobj), dtype=torch.long) for path in (fixed_seg, warped_seg)
    )
    scores = dice_per_label(fixed[None, None], warped.reshape(fixed.shape)[None, None])
    return sum(scores.values()) / len(scores)


def ours(pair: dict, out: Path, options: list[str], threads: int) -> dict:
    command = ["lightning-reg", "register", "--quiet", "--threads", str(threads), "--out", str(out)]
    for role in ("fixed", "moving", "fixed_seg", "moving_seg"):
        command += [f"--{role.replace('_', '-')}", str(pair[role])]
    wall, _ = timed([*command, *options], threads)
    report = json.loads((out / "metrics.json").read_text())
    return {"wall": wall, "solve": report["seconds"], "dice": dice(pair["fixed_seg"], out / "warped_seg.nii.gz")}


def greedy(pair: dict, out: Path, budget: str, threads: int) -> dict:
    out.mkdir(parents=True)
    arguments = [pair["fixed"], pair["moving"], pair["moving_seg"], out, budget, threads]
    wall, printed = timed([sys.executable, "-c", GREEDY, *map(str, arguments)], threads)
    return {
        "wall": wall,
        "solve": float(printed.split()[0]),
        "dice": dice(pair["fixed_seg"], out / "warped_seg.nii.gz"),
    }


def batch(pairs: list[dict], out: Path, threads: int) -> tuple[dict, dict]:
    """The lean path over every pair in one ``--pairs`` process: per pair, the process's wall over the
    pairs (its start-up shared by these few), and each pair's own wall from ``registrations.csv`` (the
    cost in a long batch, whose start-up is spread thin)."""
    out.mkdir(parents=True)
    with open(out / "pairs.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "fixed", "moving", "fixed_seg", "moving_seg"])
        for pair in pairs:
            writer.writerow([pair["id"], pair["fixed"], pair["moving"], pair["fixed_seg"], pair["moving_seg"]])
    command = ["lightning-reg", "register", "--quiet", "--threads", str(threads), "--pairs", str(out / "pairs.csv")]
    wall, _ = timed([*command, "--out", str(out / "registered"), *LEAN], threads)
    with open(out / "registered" / "registrations.csv") as handle:
        rows = list(csv.DictReader(handle))
    solve = float(np.mean([float(row["seconds"]) for row in rows]))
    score = float(np.mean([dice(p["fixed_seg"], out / "registered" / p["id"] / "warped_seg.nii.gz") for p in pairs]))
    each = float(np.mean([float(row["wall_seconds"]) for row in rows]))
    return {"wall": wall / len(pairs), "solve": solve, "dice": score}, {"wall": each, "solve": solve, "dice": score}


def summary(rows: dict[str, list[dict]]) -> dict[str, dict]:
    return {
        key: {name: float(np.mean([row[name] for row in found])) for name in ("wall", "solve", "dice")}
        | {"pairs": len(found)}
        for key, found in rows.items()
    }


def ratios(points: dict[str, dict]) -> dict[str, float]:
    """The issue's comparisons: wall over PICSL Greedy's whole quick run, and the model over the classical command."""
    greedy_quick = points["picsl-greedy 100x50x10"]["wall"]
    found = {
        f"{key} / picsl-greedy 100x50x10": points[key]["wall"] / greedy_quick
        for key in (FAST, "ours lean", "ours lean --pairs", "ours lean --pairs, after start-up")
        if key in points
    }
    if "ours brain3d" in points and DEFAULT in points:
        found[f"ours brain3d / {DEFAULT}"] = points["ours brain3d"]["wall"] / points[DEFAULT]["wall"]
    return found


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for method, color in (("ours", "tab:blue"), ("picsl-greedy", "tab:orange")):
        keys = [f"{method} {budget}" for budget in BUDGETS if f"{method} {budget}" in record["summary"]]
        points = [record["summary"][key] for key in keys]
        name = "lightning-reg register" if method == "ours" else "PICSL Greedy"
        axis.plot([p["wall"] for p in points], [p["dice"] for p in points], "o-", color=color, label=f"{name}, whole")
        axis.plot(
            [p["solve"] for p in points],
            [p["dice"] for p in points],
            "o--",
            color=color,
            alpha=0.5,
            label=f"{name}, solve only",
        )
        for key, point in zip(keys, points):
            axis.annotate(
                key.split(" ")[1],
                (point["wall"], point["dice"]),
                fontsize=7,
                xytext=(3, -10),
                textcoords="offset points",
            )
    for key, marker in (("ours lean", "s"), ("ours lean --pairs", "D"), ("ours brain3d", "^")):
        if key in record["summary"]:
            point = record["summary"][key]
            axis.plot(
                point["wall"], point["dice"], marker, color="tab:green", label=key.replace("ours ", "lightning-reg ")
            )
    axis.set_xscale("log")
    axis.set_xlabel(f"seconds per pair ({record['threads']} thread{'s' if record['threads'] > 1 else ''}, pinned)")
    axis.set_ylabel("mean Dice, 82 DK labels")
    axis.set_title(f"whole commands, 3D held-out pairs ({record['pair_count']})", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", type=Path, required=True, help="the folder python -m lightning_reg.anatomy wrote")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budgets", nargs="+", default=list(BUDGETS), choices=BUDGETS)
    parser.add_argument("--no-model", action="store_true", help="leave out register --checkpoint brain3d")
    parser.add_argument("--scratch", type=Path, default=Path("benchmarks/out/whole_command"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if not (args.brains / "dk_labels.csv").is_file():
        parser.error(f"{args.brains} is not a built real-anatomy folder: python -m lightning_reg.anatomy {args.brains}")
    shutil.rmtree(args.scratch, ignore_errors=True)
    pairs = pair_files(args.brains, args.pairs)
    runs = {f"ours {budget}": ["--iterations", *budget.split("x")] for budget in args.budgets}
    runs["ours lean"] = LEAN
    if not args.no_model:
        runs["ours brain3d"] = ["--checkpoint", "brain3d"]
    rows: dict[str, list[dict]] = {key: [] for key in [*runs, *(f"picsl-greedy {b}" for b in args.budgets)]}
    for pair in pairs:
        for key, options in runs.items():
            rows[key].append(ours(pair, args.scratch / pair["id"] / key.replace(" ", "_"), options, args.threads))
            print(f"{pair['id']:>16} {key:>24}: {rows[key][-1]}", flush=True)
        for budget in args.budgets:
            key = f"picsl-greedy {budget}"
            rows[key].append(greedy(pair, args.scratch / pair["id"] / key.replace(" ", "_"), budget, args.threads))
            print(f"{pair['id']:>16} {key:>24}: {rows[key][-1]}", flush=True)
    shared, each = batch(pairs, args.scratch / "batch", args.threads)
    rows["ours lean --pairs"], rows["ours lean --pairs, after start-up"] = [shared], [each]
    points = summary(rows)
    for key in ("ours lean --pairs", "ours lean --pairs, after start-up"):
        points[key]["pairs"] = len(pairs)
    record = {
        **provenance(args.threads, pinned=True),
        "threads": args.threads,
        "pair_count": len(pairs),
        "summary": points,
        "ratios": ratios(points),
        "pairs": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "whole_command_3d.json").write_text(json.dumps(record, indent=2))
    plot(record, args.out / "whole_command_3d.png")
    for key, point in points.items():
        print(f"{key:>26}: wall {point['wall']:.1f} s, solve {point['solve']:.1f} s, Dice {point['dice']:.3f}")
    for key, value in record["ratios"].items():
        print(f"{key}: {value:.2f}x")


if __name__ == "__main__":
    main()
