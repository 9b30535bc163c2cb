"""Side by side: this solver's greedy registration vs FireANTs' GreedyRegistration, on the CPU or one GPU.

Same synthetic brain-like 3D pairs (labels, known warps), same scales, iterations, LNCC window,
step size and smoothing sigmas, same number of threads, one process. Prints Dice and seconds for
each and their ratios; writes JSON, a markdown table and a PNG into --out.

    pip install -e ".[bench]"
    python benchmarks/solver_vs_fireants.py --pairs 3 --threads 2 [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from measure import provenance

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.evaluation.metrics import dice_per_label
from lightning_reg.solver import register
from lightning_reg.solver.geometry.labels import label_values, one_hot


def mean_dice(fixed_seg: torch.Tensor, warped_seg: torch.Tensor) -> float:
    scores = dice_per_label(fixed_seg, warped_seg)
    return sum(scores.values()) / len(scores)


def _clock(device: str) -> float:
    """Seconds, after the device has finished what it was given."""
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def run_ours(pair: dict, scales, iterations, window: int, device: str = "cpu") -> tuple[float, float]:
    fixed, moving = pair["fixed"].to(device), pair["moving"].to(device)
    start = _clock(device)
    result = register(
        fixed,
        moving,
        transform="greedy",
        similarity="lncc",
        scales=scales,
        iterations=iterations,
        similarity_options={"window": window},
    )
    seconds = _clock(device) - start
    warped = result.warp_labels(pair["moving_seg"].to(device), mode="linear").cpu()
    return mean_dice(pair["fixed_seg"], warped), seconds


def run_fireants(pair: dict, scales, iterations, window: int, device: str = "cpu") -> tuple[float, float]:
    import SimpleITK as sitk
    from fireants.io.image import BatchedImages, Image
    from fireants.registration.greedy import GreedyRegistration

    def batched(tensor):
        return BatchedImages([Image(sitk.GetImageFromArray(tensor[0, 0].numpy()), device=device)])

    fixed, moving = batched(pair["fixed"]), batched(pair["moving"])
    start = _clock(device)
    # optimizer_lr 0.5 in FireANTs is a step of 0.5 half-voxels: our default of 0.25 voxels
    registration = GreedyRegistration(
        scales=list(scales),
        iterations=list(iterations),
        fixed_images=fixed,
        moving_images=moving,
        loss_type="cc",
        cc_kernel_size=window,
        optimizer="Adam",
        optimizer_lr=0.5,
        smooth_warp_sigma=0.5,
        smooth_grad_sigma=1.0,
        progress_bar=False,
    )
    registration.optimize()
    seconds = _clock(device) - start
    values = label_values(pair["moving_seg"], background=False)
    warped = registration.evaluate(pair["fixed"].to(device), one_hot(pair["moving_seg"], values).to(device))
    return mean_dice(pair["fixed_seg"], values[warped.argmax(1, keepdim=True).cpu()]), seconds


def write_outputs(out: Path, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "solver_vs_fireants.json").write_text(json.dumps(record, indent=2))
    rows = [
        "| pair | Dice before | Dice ours | Dice FireANTs | s ours | s FireANTs | time ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in record["pairs"]:
        rows.append(
            f"| {row['seed']} | {row['dice_before']:.4f} | {row['dice_ours']:.4f} | "
            f"{row['dice_fireants']:.4f} | {row['seconds_ours']:.1f} | {row['seconds_fireants']:.1f} | "
            f"{row['seconds_ours'] / row['seconds_fireants']:.2f} |"
        )
    summary = record["summary"]
    rows.append(
        f"| **mean** | {summary['dice_before']:.4f} | **{summary['dice_ours']:.4f}** | "
        f"**{summary['dice_fireants']:.4f}** | {summary['seconds_ours']:.1f} | "
        f"{summary['seconds_fireants']:.1f} | **{summary['time_ratio']:.2f}** |"
    )
    (out / "solver_vs_fireants.md").write_text("\n".join(rows) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    seeds = [str(row["seed"]) for row in record["pairs"]]
    positions = np.arange(len(seeds))
    for axis, key, label in ((left, "dice", "mean Dice"), (right, "seconds", "seconds per pair")):
        axis.bar(positions - 0.2, [row[f"{key}_ours"] for row in record["pairs"]], 0.4, label="lightning_reg")
        axis.bar(positions + 0.2, [row[f"{key}_fireants"] for row in record["pairs"]], 0.4, label="FireANTs")
        axis.set_xticks(positions, seeds)
        axis.set_xlabel("pair (seed)")
        axis.set_ylabel(label)
    left.set_ylim(min(row["dice_before"] for row in record["pairs"]) - 0.05, 1.0)
    left.legend(loc="lower right")
    where = "one GPU" if record.get("device") == "cuda" else f"{record['threads']} CPU threads"
    figure.suptitle(f"greedy LNCC, {record['shape']}, {where}")
    figure.tight_layout()
    figure.savefig(out / "solver_vs_fireants.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 112, 96])
    parser.add_argument("--magnitude", type=float, default=3.0, help="RMS of the true warp, voxels")
    parser.add_argument("--scales", type=float, nargs="+", default=[4, 2, 1])
    parser.add_argument("--iterations", type=int, nargs="+", default=[200, 100, 50])
    parser.add_argument("--window", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    rows = []
    for seed in range(args.pairs):
        pair = warped_pair(tuple(args.shape), magnitude=args.magnitude, num_labels=12, seed=seed)
        dice_ours, seconds_ours = run_ours(pair, args.scales, args.iterations, args.window, args.device)
        dice_fireants, seconds_fireants = run_fireants(pair, args.scales, args.iterations, args.window, args.device)
        rows.append(
            {
                "seed": seed,
                "dice_before": mean_dice(pair["fixed_seg"], pair["moving_seg"]),
                "dice_ours": dice_ours,
                "dice_fireants": dice_fireants,
                "seconds_ours": seconds_ours,
                "seconds_fireants": seconds_fireants,
            }
        )
        print(
            f"pair {seed}: Dice ours {dice_ours:.4f} FireANTs {dice_fireants:.4f} | "
            f"seconds ours {seconds_ours:.1f} FireANTs {seconds_fireants:.1f} "
            f"ratio {seconds_ours / seconds_fireants:.2f}",
            flush=True,
        )
    mean = {
        key: float(np.mean([row[key] for row in rows]))
        for key in ("dice_before", "dice_ours", "dice_fireants", "seconds_ours", "seconds_fireants")
    }
    mean["time_ratio"] = mean["seconds_ours"] / mean["seconds_fireants"]
    mean["dice_difference"] = mean["dice_ours"] - mean["dice_fireants"]
    import fireants

    record = {
        "shape": args.shape,
        "scales": args.scales,
        "iterations": args.iterations,
        "threads": args.threads,
        "device": args.device,
        "magnitude": args.magnitude,
        **provenance(torch.get_num_threads(), args.device),
        "fireants": getattr(fireants, "__version__", "unknown"),
        "pairs": rows,
        "summary": mean,
    }
    write_outputs(args.out, record)
    print(
        f"mean Dice ours {mean['dice_ours']:.4f} FireANTs {mean['dice_fireants']:.4f} "
        f"(difference {mean['dice_difference']:+.4f}); seconds ours {mean['seconds_ours']:.1f} "
        f"FireANTs {mean['seconds_fireants']:.1f}; time ratio ours/FireANTs {mean['time_ratio']:.2f}"
    )


if __name__ == "__main__":
    main()
