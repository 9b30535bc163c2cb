"""Robustness to domain shift: ours vs VoxelMorph vs the classical solver, clean and shifted test pairs.

Trains (or loads) two models on the same training pairs with the same losses (LNCC + Dice):
ours (UNet features + the implicit solver layer) and VoxelMorph (pip ``voxelmorph``, direct
regression of the warp). Then evaluates them, the classical solver on raw intensities (greedy,
LNCC) and no registration on the same held-out pairs, clean and under each shift preset
(``lightning_reg/data/shifts.py``). Writes JSON, a markdown table and a plot into --out and prints
the Dice drops and their ratios.

    python benchmarks/domain_shift.py --threads 2                       # synthetic 2D, CPU
    python benchmarks/domain_shift.py --data oasis --root /data/OASIS --dims 3 --size 160 192 224 \
        --device cuda --epochs 20 --train-pairs 400 --test-pairs 19
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning as L
import matplotlib
import torch
from measure import fit_and_save, provenance
from voxelmorph_baseline import VoxelMorphBaseline

from lightning_reg.data import SHIFTS, OASISDataModule, SyntheticDataModule
from lightning_reg.evaluation.rows import mean_rows
from lightning_reg.nn import IdentityFeatures, UNet
from lightning_reg.solver import SolverOptions
from lightning_reg.training.module import RegistrationModule

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGETS = ("anisotropy4", "intensity")


def datamodule(args, shift: str | None = None) -> L.LightningDataModule:
    if args.data == "synthetic":
        return SyntheticDataModule(
            shape=args.shape,
            num_labels=args.num_labels,
            train_pairs=args.train_pairs,
            val_pairs=1,
            test_pairs=args.test_pairs,
            shift=shift,
        )
    return OASISDataModule(
        root=args.root,
        dims=args.dims,
        size=args.size,
        train_pairs=args.train_pairs,
        max_test_pairs=args.test_pairs,
        max_val_pairs=1,
        shift=shift,
        num_workers=args.workers,
    )


def train(model: L.LightningModule, args, name: str) -> L.LightningModule:
    return fit_and_save(model, datamodule(args), args.epochs, args.device, args.workdir / f"{name}.ckpt")


def methods(args) -> dict[str, L.LightningModule]:
    """The methods compared, by name; the two learned ones trained here or loaded."""
    args.workdir.mkdir(parents=True, exist_ok=True)
    dims = args.dims
    if args.load_ours:
        ours = RegistrationModule.load_from_checkpoint(args.load_ours, network=UNet(dims=dims), map_location="cpu")
    else:
        solver = SolverOptions(similarity=args.ours_similarity)
        ours = train(RegistrationModule(network=UNet(dims=dims), train_solver=solver, lr=1e-3), args, "ours")
    if args.load_voxelmorph:
        voxelmorph = VoxelMorphBaseline.load_from_checkpoint(args.load_voxelmorph, map_location="cpu")
    else:
        voxelmorph = train(VoxelMorphBaseline(dims=dims), args, "voxelmorph")
    classical = SolverOptions(transform="greedy", similarity="lncc")
    return {
        "no registration": RegistrationModule(
            network=IdentityFeatures(dims=dims), train_solver=SolverOptions(iterations=[0, 0, 0])
        ),
        "classical (greedy, LNCC on intensities)": RegistrationModule(
            network=IdentityFeatures(dims=dims), train_solver=classical
        ),
        "VoxelMorph": voxelmorph,
        "ours (freeform)": ours,
        "ours, greedy at test": RegistrationModule(
            network=ours.network,
            train_solver=ours.train_solver,
            eval_solver=SolverOptions(transform="greedy", similarity=ours.train_solver.similarity),
        ),
    }


def evaluate(models: dict[str, L.LightningModule], args) -> tuple[list[dict], dict]:
    """Rows per method, shift and pair; and one example fixed image per shift."""
    rows, examples = [], {}
    device = torch.device(args.device)
    for model in models.values():
        model.to(device).eval()
    for shift in args.shifts:
        data = datamodule(args, shift)
        data.setup("test")
        for batch in data.test_dataloader():
            batch = {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}
            examples.setdefault(shift, batch["fixed"][0, 0].cpu())
            for name, model in models.items():
                rows += [{"method": name, "shift": shift, **row} for row in model.evaluate(batch)]
        print(f"evaluated {shift}")
    return rows, examples


def summarize(rows: list[dict], args) -> list[dict]:
    summary = []
    for method in dict.fromkeys(row["method"] for row in rows):
        clean = mean_rows([r for r in rows if r["method"] == method and r["shift"] == "clean"])["dice"]
        for shift in args.shifts:
            means = mean_rows([r for r in rows if r["method"] == method and r["shift"] == shift])
            summary.append({"method": method, "shift": shift, **means, "dice_drop": clean - means["dice"]})
    return summary


def ratios(summary: list[dict]) -> dict[str, float]:
    """Our Dice drop / VoxelMorph's, per target shift, and our clean Dice minus VoxelMorph's."""
    lookup = {(row["method"], row["shift"]): row for row in summary}
    result = {}
    for shift in TARGETS:
        if ("VoxelMorph", shift) in lookup:
            ours, theirs = lookup[("ours (freeform)", shift)]["dice_drop"], lookup[("VoxelMorph", shift)]["dice_drop"]
            result[f"drop_ratio_{shift}"] = ours / theirs if theirs > 0 else float("inf")
    result["clean_dice_ours_minus_voxelmorph"] = (
        lookup[("ours (freeform)", "clean")]["dice"] - lookup[("VoxelMorph", "clean")]["dice"]
    )
    return result


def markdown(summary: list[dict], args) -> str:
    lookup = {(row["method"], row["shift"]): row for row in summary}
    methods_ = list(dict.fromkeys(row["method"] for row in summary))
    lines = ["| method | " + " | ".join(args.shifts) + " |", "|---|" + "---|" * len(args.shifts)]
    for method in methods_:
        cells = []
        for shift in args.shifts:
            row = lookup[(method, shift)]
            cells.append(f"{row['dice']:.3f} / {row['hd95']:.2f} / {row['folding_percent']:.2f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: list[dict], examples: dict, args, path: Path) -> None:
    methods_ = list(dict.fromkeys(row["method"] for row in summary))
    lookup = {(row["method"], row["shift"]): row for row in summary}
    figure = plt.figure(figsize=(2.0 * len(args.shifts) + 2, 7))
    axes = figure.add_subplot(2, 1, 1)
    width = 0.8 / len(methods_)
    for index, method in enumerate(methods_):
        values = [lookup[(method, shift)]["dice"] for shift in args.shifts]
        axes.bar([s + index * width for s in range(len(args.shifts))], values, width, label=method)
    axes.set_xticks([s + 0.4 - width / 2 for s in range(len(args.shifts))], args.shifts)
    axes.set_ylabel("mean Dice")
    axes.set_ylim(min(row["dice"] for row in summary) - 0.05, 1.0)
    axes.legend(fontsize=7, ncol=2)
    for index, shift in enumerate(args.shifts):
        image = figure.add_subplot(2, len(args.shifts), len(args.shifts) + index + 1)
        example = examples[shift]
        image.imshow(
            example if example.dim() == 2 else example[..., example.shape[-1] // 2].T, cmap="gray", origin="lower"
        )
        image.set_title(shift, fontsize=8)
        image.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["synthetic", "oasis"], default="synthetic")
    parser.add_argument("--root", type=Path, help="OASIS folder (Learn2Reg or neurite-oasis layout)")
    parser.add_argument("--dims", type=int, default=2)
    parser.add_argument("--shape", type=int, nargs="+", default=[64, 64], help="synthetic image shape")
    parser.add_argument("--num-labels", type=int, default=4, help="synthetic labels")
    parser.add_argument(
        "--size", type=int, nargs="+", help="OASIS: pad/crop to this size (VoxelMorph needs multiples of 16)"
    )
    parser.add_argument("--train-pairs", type=int, default=256, help="training pairs per epoch")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--test-pairs", type=int, default=16)
    parser.add_argument("--shifts", nargs="+", default=list(SHIFTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="data loader workers (OASIS)")
    parser.add_argument("--ours-similarity", default="mse", help="our solver's similarity on the features")
    parser.add_argument("--load-ours", help="a checkpoint of ours instead of training")
    parser.add_argument("--load-voxelmorph", help="a checkpoint of the VoxelMorph baseline instead of training")
    parser.add_argument("--workdir", type=Path, default=Path("runs/domain_shift"), help="checkpoints go here")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "benchmarks" / "results")
    args = parser.parse_args()
    if args.data == "oasis" and args.root is None:
        parser.error("--data oasis needs --root")
    if "clean" not in args.shifts:
        args.shifts.insert(0, "clean")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data == "synthetic":
        args.dims = len(args.shape)

    rows, examples = evaluate(methods(args), args)
    summary = summarize(rows, args)
    record = {
        **provenance(torch.get_num_threads(), args.device),
        "threads": torch.get_num_threads(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "summary": summary,
        "ratios": ratios(summary),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "domain_shift.json").write_text(json.dumps(record, indent=1))
    table = markdown(summary, args)
    (args.out / "domain_shift.md").write_text(
        "Dice / HD95 / folding % per method (rows) and shift (columns)\n\n" + table + "\n"
    )
    plot(summary, examples, args, args.out / "domain_shift.png")
    print(table)
    print("Dice drop (clean - shifted):")
    for row in summary:
        if row["shift"] in TARGETS:
            print(f"  {row['method']:45s} {row['shift']:12s} {row['dice_drop']:+.3f}")
    print(json.dumps(record["ratios"], indent=1))
    print("targets: drop ratio <= 0.5 under", ", ".join(TARGETS), "and clean Dice >= VoxelMorph's")


if __name__ == "__main__":
    main()
