"""One trained model, every transformation representation at test time, and label prompts.

Trains (or loads, --ckpt) one model: UNet features + the implicit layer, free-form training solver.
Then evaluates, on the same held-out pairs and without retraining, every representation the solver
has (rigid, affine, freeform, greedy, svf, bspline, syn, and affine followed by each deformable one):
Dice, HD95, folding %, NDV %, SDlogJ, the inverse map's consistency (mm) and seconds per pair.
Expected from the method: the diffeomorphic representations (greedy, svf, syn) fold nothing and lose
at most 0.015 Dice against freeform.
Second table: each structure k prompted (a label-fidelity term on k at test time) against no prompt:
k's Dice and the mean Dice of the other structures.

    python benchmarks/transform_switch.py --threads 2                       # synthetic 2D, CPU
    python benchmarks/transform_switch.py --ckpt runs/lightning-reg/<id>/checkpoints/last.ckpt \
        --data oasis --root /data/OASIS --dims 3 --size 160 192 224 --device cuda
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning as L
import matplotlib
import torch
from measure import fit_and_save, provenance

from lightning_reg.data import OASISDataModule, SyntheticDataModule
from lightning_reg.evaluation.rows import mean_rows
from lightning_reg.nn import UNet
from lightning_reg.solver import SolverOptions
from lightning_reg.training.module import RegistrationModule

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPRESENTATIONS = {
    name: {"transform": name}
    for name in (
        "rigid",
        "affine",
        "freeform",
        "greedy",
        "svf",
        "bspline",
        "syn",
        "affine+freeform",
        "affine+greedy",
        "affine+svf",
        "affine+bspline",
        "affine+syn",
    )
}
# the B-spline default knot spacing (5 px) suits 3D brains; on 64² features wider knots and shorter steps fold less
REPRESENTATIONS["bspline, knots 8 px, step 0.1"] = {
    "transform": "bspline",
    "transform_options": {"control_spacing": 8.0, "learning_rate": 0.1},
}
DIFFEOMORPHIC = ("greedy", "svf", "syn", "affine+greedy", "affine+svf", "affine+syn")
TOLERANCE = 0.015


def datamodule(args) -> L.LightningDataModule:
    if args.data == "synthetic":
        return SyntheticDataModule(
            shape=args.shape, train_pairs=args.train_pairs, val_pairs=1, test_pairs=args.test_pairs
        )
    return OASISDataModule(
        root=args.root,
        dims=args.dims,
        size=args.size,
        train_pairs=args.train_pairs,
        max_test_pairs=args.test_pairs,
        max_val_pairs=1,
        num_workers=args.workers,
    )


def trained(args) -> RegistrationModule:
    if args.ckpt:
        return RegistrationModule.load_from_checkpoint(args.ckpt, map_location="cpu")
    path = args.workdir / "model.ckpt"
    if path.is_file() and not args.retrain:
        print(f"using {path} (--retrain to train again)")
        # our own file; checkpoints written before settings were stored as plain dicts need weights_only=False
        return RegistrationModule.load_from_checkpoint(
            path, network=UNet(dims=args.dims), map_location="cpu", weights_only=False
        )
    model = RegistrationModule(
        network=UNet(dims=args.dims), train_solver=SolverOptions(similarity=args.similarity), lr=1e-3
    )
    return fit_and_save(model, datamodule(args), args.epochs, args.device, path)


def test_batches(args) -> list[dict]:
    data = datamodule(args)
    data.setup("test")
    device = torch.device(args.device)
    return [
        {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}
        for batch in data.test_dataloader()
    ]


def evaluate(model: RegistrationModule, batches: list[dict], inverse: bool = False) -> list[dict]:
    return [row for batch in batches for row in model.evaluate(batch, inverse)]


def switch(model: RegistrationModule, batches: list[dict]) -> list[dict]:
    summary = []
    for name, settings in REPRESENTATIONS.items():
        rows = evaluate(model.with_eval_solver(**settings), batches, inverse=True)
        summary.append({"transform": name, **mean_rows(rows)})
        print(f"{name:16s} " + "  ".join(f"{k} {v:.4g}" for k, v in summary[-1].items() if k != "transform"))
    return summary


def prompting(model: RegistrationModule, batches: list[dict], weight: float) -> list[dict]:
    """Per structure k: k's Dice and the others' mean Dice, without and with a prompt on k."""
    blind = evaluate(model, batches)
    labels = sorted(int(key[5:]) for key in blind[0] if key.startswith("dice_"))
    table = []
    for label in labels:
        prompted = evaluate(model.with_eval_solver(prompt_labels=[label], prompt_weight=weight), batches)
        others = [f"dice_{other}" for other in labels if other != label]
        row = {
            "label": label,
            "dice_k": mean_rows(blind, [f"dice_{label}"])[f"dice_{label}"],
            "dice_k_prompted": mean_rows(prompted, [f"dice_{label}"])[f"dice_{label}"],
            "dice_others": sum(mean_rows(blind, others).values()) / len(others),
            "dice_others_prompted": sum(mean_rows(prompted, others).values()) / len(others),
        }
        table.append(row)
        print(
            f"prompt {label}: Dice {row['dice_k']:.3f} -> {row['dice_k_prompted']:.3f}, others "
            f"{row['dice_others']:.3f} -> {row['dice_others_prompted']:.3f}"
        )
    return table


def checks(summary: list[dict]) -> dict:
    lookup = {row["transform"]: row for row in summary}
    freeform = lookup["freeform"]["dice"]
    return {
        name: {
            "folding_percent": lookup[name]["folding_percent"],
            "dice_minus_freeform": lookup[name]["dice"] - freeform,
            "holds": lookup[name]["folding_percent"] == 0 and lookup[name]["dice"] >= freeform - TOLERANCE,
        }
        for name in DIFFEOMORPHIC
    }


def markdown(summary: list[dict], prompts: list[dict]) -> str:
    lines = [
        "| transform | Dice | HD95 | folding % | NDV % | SDlogJ | inverse consistency mm | s/pair |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['transform']} | {r['dice']:.3f} | {r['hd95']:.2f} | {r['folding_percent']:.3f} | "
        f"{r.get('ndv_percent', float('nan')):.3f} | {r['sdlogj']:.3f} | "
        f"{r.get('inverse_consistency_mm', float('nan')):.3f} | {r['seconds']:.3f} |"
        for r in summary
    ]
    lines += [
        "",
        "| prompted structure k | Dice of k | Dice of k, prompted | others | others, prompted |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['label']} | {r['dice_k']:.3f} | {r['dice_k_prompted']:.3f} | {r['dice_others']:.3f} | "
        f"{r['dice_others_prompted']:.3f} |"
        for r in prompts
    ]
    return "\n".join(lines)


def plot(summary: list[dict], prompts: list[dict], path: Path) -> None:
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [3, 3, 2]})
    names = [row["transform"] for row in summary]
    colors = ["tab:green" if name in DIFFEOMORPHIC else "tab:blue" for name in names]
    axes[0].bar(names, [row["dice"] for row in summary], color=colors)
    axes[0].set_ylim(min(row["dice"] for row in summary) - 0.05, 1.0)
    axes[0].set_ylabel("mean Dice (green: diffeomorphic)")
    axes[1].bar(names, [row["folding_percent"] for row in summary], color=colors)
    axes[1].set_ylabel("folding % (det J <= 0)")
    for axis in axes[:2]:
        axis.tick_params(axis="x", rotation=60, labelsize=8)
    positions = range(len(prompts))
    bars = [
        ("k, no prompt", "dice_k", -0.3, "tab:blue"),
        ("k, prompted", "dice_k_prompted", -0.1, "tab:orange"),
        ("others, no prompt", "dice_others", 0.1, "lightsteelblue"),
        ("others, prompted", "dice_others_prompted", 0.3, "navajowhite"),
    ]
    for label, key, offset, color in bars:
        axes[2].bar([p + offset for p in positions], [r[key] for r in prompts], 0.2, label=label, color=color)
    axes[2].set_xticks(list(positions), [str(row["label"]) for row in prompts])
    axes[2].set_xlabel("prompted structure k")
    axes[2].set_ylabel("mean Dice")
    axes[2].set_ylim(min(r[key] for r in prompts for _, key, _, _ in bars) - 0.1, 1.12)
    axes[2].legend(fontsize=7, loc="upper center", ncol=2)
    figure.suptitle("one checkpoint: test-time representations (left, middle) and label prompts (right)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="a trained lightning-reg checkpoint (default: train one here)")
    parser.add_argument("--data", choices=["synthetic", "oasis"], default="synthetic")
    parser.add_argument("--root", type=Path, help="OASIS folder (Learn2Reg or neurite-oasis layout)")
    parser.add_argument("--dims", type=int, default=2)
    parser.add_argument("--shape", type=int, nargs="+", default=[64, 64], help="synthetic image shape")
    parser.add_argument("--size", type=int, nargs="+", help="OASIS: pad/crop to this size")
    parser.add_argument("--train-pairs", type=int, default=256, help="training pairs per epoch")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--similarity", default="lncc", help="the solver's similarity on the features")
    parser.add_argument("--test-pairs", type=int, default=16)
    parser.add_argument("--prompt-weight", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="data loader workers (OASIS)")
    parser.add_argument("--workdir", type=Path, default=Path("runs/transform_switch"), help="the checkpoint")
    parser.add_argument("--retrain", action="store_true", help="train even if --workdir has a checkpoint")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "benchmarks" / "results")
    args = parser.parse_args()
    if args.data == "oasis" and args.root is None:
        parser.error("--data oasis needs --root")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data == "synthetic":
        args.dims = len(args.shape)

    model = trained(args).to(torch.device(args.device)).eval()
    batches = test_batches(args)
    summary = switch(model, batches)
    prompts = prompting(model, batches, args.prompt_weight)
    record = {
        **provenance(torch.get_num_threads(), args.device),
        "threads": torch.get_num_threads(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_solver": vars(model.train_solver),
        "summary": summary,
        "checks": checks(summary),
        "prompting": prompts,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transform_switch.json").write_text(json.dumps(record, indent=1))
    table = markdown(summary, prompts)
    (args.out / "transform_switch.md").write_text(table + "\n")
    plot(summary, prompts, args.out / "transform_switch.png")
    print(table)
    for name, check in record["checks"].items():
        print(
            f"{name:14s} folding {check['folding_percent']:.3f} %, Dice - freeform "
            f"{check['dice_minus_freeform']:+.4f} -> {'holds' if check['holds'] else 'MISSED'} "
            f"(0 % folding, within {TOLERANCE})"
        )


if __name__ == "__main__":
    main()
